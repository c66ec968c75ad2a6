//! Pure parser tests for the parser-observable assertions of §11 of
//! `/work/shared/spec/eventsource.md` (numbers in test names), and the §6.1–§6.3 examples.
//! Every input runs whole, under all 1-cut and 2-cut chunkings, and dripped byte by byte.

mod parser_util;

use parser_util::*;

#[test]
fn s11_07_simple_message() {
    assert_eq!(items(b"data: hello\n\n"), vec![msg("message", "hello", "")]);
}

#[test]
fn s11_68_tricky_stream() {
    let input = "\u{FEFF}data: α…\r\ndata: 😀\rid: 7\r\r: comment\nevent: x\ndata\n\n";
    let run = run_all_chunkings(1 << 20, input.as_bytes());
    assert_eq!(run.items, vec![msg("message", "α…\n😀", "7"), msg("x", "", "7")]);
    assert_eq!(run.last_event_id, "7");
}
