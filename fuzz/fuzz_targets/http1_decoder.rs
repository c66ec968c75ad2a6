//! The HTTP/1.1 response head parser and body decoder: no panic, bounded, the same for any
//! chunking. See `http1_decoder` in `core/tests/fuzz_checks/mod.rs`.
#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;
#[path = "../../core/tests/parser_util/mod.rs"]
mod parser_util;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::http1_decoder(data));
