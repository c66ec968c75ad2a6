//! Replays the fuzz corpus checked in under `fuzz/corpus/<target>/` through the checks the fuzz
//! targets run (`fuzz_checks`): the short form of `make fuzz`, with no fuzzer and no nightly.

mod fuzz_checks;
mod parser_util;

use std::path::PathBuf;

/// Runs `check` on every file of the target's corpus; panics naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{}: only {} inputs", dir.display(), files.len());
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("the fuzz check {target} fails on {}", f.display());
        }
    }
}

#[test]
fn parser_diff_corpus() {
    replay("parser_diff", fuzz_checks::parser_diff);
}

#[test]
fn http1_decoder_corpus() {
    replay("http1_decoder", fuzz_checks::http1_decoder);
}

#[test]
fn scan_corpus() {
    replay("scan", fuzz_checks::scan);
}
