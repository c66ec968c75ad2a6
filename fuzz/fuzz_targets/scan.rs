//! The UTF-8 validator and the line-ending searches against the standard library: see `scan` in
//! `core/tests/fuzz_checks/mod.rs`.
#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;
#[path = "../../core/tests/parser_util/mod.rs"]
mod parser_util;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::scan(data));
