//! The checked-in `include/eventsource.h` must be exactly what the pinned cbindgen generates
//! from this crate. `ES_UPDATE_HEADER=1 cargo test -p eventsource-ffi --test header`
//! (`make -C ffi-c header`) rewrites it.

use std::path::PathBuf;

#[test]
fn header_is_up_to_date() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = crate_dir.join("../include/eventsource.h");
    if std::env::var_os("ES_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/eventsource.h");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "include/eventsource.h is stale: run `make -C ffi-c header` and commit the result"
    );
}

#[test]
fn header_version_macros_match_cargo_toml() {
    let h =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../include/eventsource.h"))
            .expect("include/eventsource.h");
    for (name, value) in [
        ("ES_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("ES_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("ES_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define {name} {value}\n");
        assert!(h.contains(&line), "header lacks `{}`", line.trim());
    }
    let (ma, mi, pa): (u32, u32, u32) = (
        env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap(),
        env!("CARGO_PKG_VERSION_MINOR").parse().unwrap(),
        env!("CARGO_PKG_VERSION_PATCH").parse().unwrap(),
    );
    let number = format!("#define ES_VERSION_NUMBER {}\n", ma * 10000 + mi * 100 + pa);
    assert!(h.contains(&number) || h.contains("#define ES_VERSION_NUMBER ("), "ES_VERSION_NUMBER");
    assert!(h.contains("#define ES_ABI_VERSION "), "ES_ABI_VERSION");
}
