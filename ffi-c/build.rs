// The shared library's SONAME is libeventsource.so.MAJOR, so that a program linked against one
// release loads any later one of the same major version. `make -C ffi-c install` lays out
// libeventsource.so.MAJOR.MINOR.PATCH with the two usual symlinks; in target/, `make -C ffi-c
// build` adds the libeventsource.so.MAJOR link that programs linked there look for.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // ELF platforms; macOS (install name) and Windows (DLL name) have their own conventions.
    if !matches!(os.as_str(), "macos" | "ios" | "windows") {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libeventsource.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
