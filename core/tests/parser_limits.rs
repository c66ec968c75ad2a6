//! `max_event_size`: long known-field lines and long events fail with `EventTooLarge` (for any
//! chunking), long comments and unknown fields are skipped without buffering.

mod parser_util;

use bytes::Bytes;
use eventsource_core::ErrorKind;
use eventsource_core::parser::Parser;
use parser_util::*;

const MAX: usize = 64;

fn line(prefix: &str, total_len: usize) -> String {
    let mut s = prefix.to_string();
    while s.len() < total_len {
        s.push('x');
    }
    s
}

#[test]
fn line_at_the_limit_is_fine() {
    let input = format!("{}\n\n", line("data: ", MAX));
    let run = run_all_chunkings(MAX, input.as_bytes());
    assert_eq!(run.items, vec![msg("message", &line("", MAX - 6), "")]);
}

#[test]
fn long_data_line_fails() {
    let input = format!("data: ok\n\n{}\n\ndata: never\n\n", line("data: ", MAX + 1));
    let run = run_all_chunkings(MAX, input.as_bytes());
    assert_eq!(run.items, vec![msg("message", "ok", ""), Out::Error(ErrorKind::EventTooLarge)]);
    // Even without its line ending (the stream stalls mid-line).
    let input = format!("data: ok\n\n{}", line("data: ", MAX + 1));
    let run = run_all_chunkings(MAX, input.as_bytes());
    assert_eq!(run.items, vec![msg("message", "ok", ""), Out::Error(ErrorKind::EventTooLarge)]);
}

#[test]
fn long_id_event_retry_lines_fail() {
    for prefix in ["id: ", "event: ", "retry: ", "id:", "data:"] {
        let input = format!("{}\n\n", line(prefix, MAX + 1));
        let run = run_all_chunkings(MAX, input.as_bytes());
        assert_eq!(run.items, vec![Out::Error(ErrorKind::EventTooLarge)], "{prefix}");
    }
}

#[test]
fn long_multi_line_event_fails() {
    // Each line is short; the event's data (31 + 1 + 31 = 63) fits, a third line does not.
    let l = line("data:", 36);
    let ok = format!("{l}\n{l}\n\n");
    let run = run_all_chunkings(MAX, ok.as_bytes());
    assert_eq!(run.items.len(), 1);
    let bad = format!("{l}\n{l}\n\n{l}\n{l}\n{l}\n\n");
    let run = run_all_chunkings(MAX, bad.as_bytes());
    assert_eq!(run.items.len(), 2);
    assert_eq!(run.items[1], Out::Error(ErrorKind::EventTooLarge));
    // Many empty data lines add up too.
    let empties = "data\n".repeat(MAX + 2) + "\n";
    let run = run_all_chunkings(MAX, empties.as_bytes());
    assert_eq!(run.items, vec![Out::Error(ErrorKind::EventTooLarge)]);
}

#[test]
fn long_comments_and_unknown_fields_are_skipped() {
    let big = 1 << 20;
    for prefix in
        [":", ": ping ", "foo: ", "datax", "Data: ", "data ", "\u{FEFF}data: ", "eventsource"]
    {
        let input = format!("data: a\n\n{}\r\ndata: b\n\n", line(prefix, big));
        let want = vec![msg("message", "a", ""), msg("message", "b", "")];
        for size in [1, 7, 100, 4096, big + 100] {
            if size == 1 && prefix.len() > 2 {
                continue; // the drip of 1 MiB is slow in debug builds; ":" covers it
            }
            let mut p = Parser::new(MAX);
            let chunks: Vec<&[u8]> = input.as_bytes().chunks(size).collect();
            let run = feed_stream_watching(&mut p, &chunks);
            assert_eq!(run, want, "{prefix:?} in chunks of {size}");
        }
    }
}

/// Feeds chunk by chunk, asserting the parser's buffers stay bounded by the limit.
fn feed_stream_watching(p: &mut Parser, chunks: &[&[u8]]) -> Vec<Out> {
    p.begin_stream(eventsource_core::Text::from(ORIGIN));
    let mut items = Vec::new();
    for c in chunks {
        if let Err(e) = p.feed(Bytes::copy_from_slice(c), &mut |i| items.push(to_out(i))) {
            items.push(Out::Error(e.kind()));
            break;
        }
        // The carry holds at most MAX + 1 bytes, the data buffer at most MAX (with the
        // allocator's rounding of capacities).
        assert!(p.buffer_capacity() <= 4 * MAX, "buffered {}", p.buffer_capacity());
    }
    items
}

#[test]
fn buffers_bounded_on_a_long_data_line() {
    let input = line("data: ", 1 << 20);
    let mut p = Parser::new(MAX);
    let chunks: Vec<&[u8]> = input.as_bytes().chunks(1000).collect();
    let items = feed_stream_watching(&mut p, &chunks);
    assert_eq!(items, vec![Out::Error(ErrorKind::EventTooLarge)]);
}

#[test]
fn error_names_the_limit_and_sticks_until_next_stream() {
    let mut p = Parser::new(MAX);
    let input = format!("{}\n", line("data: ", 100));
    let err = p.feed(Bytes::from(input), &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EventTooLarge);
    assert!(err.message().contains("64"), "{}", err.message());
    assert!(err.message().contains("max_event_size"), "{}", err.message());
    assert!(err.is_fatal());
    // Dead until the next stream.
    let again = p.feed(Bytes::from_static(b"data: a\n\n"), &mut |_| panic!("no items"));
    assert_eq!(again.unwrap_err().kind(), ErrorKind::EventTooLarge);
    let run = feed_stream(&mut p, &[b"data: a\n\n"]);
    assert_eq!(run.items, vec![msg("message", "a", "")]);
}

#[test]
fn tiny_limits() {
    // Limits below the longest field name still skip unknown fields and comments.
    let input = b"retry: 1\nfoobar\n:x\n\ndata:1\n\n";
    let run = run_all_chunkings(3, input);
    assert_eq!(run.items, vec![Out::Error(ErrorKind::EventTooLarge)]);
    let run = run_all_chunkings(6, b"foobarbaz: 1\n:comment\ndata:1\n\n");
    assert_eq!(run.items, vec![msg("message", "1", "")]);
    let run = run_all_chunkings(0, b"\n\n:x\nfoobar\n");
    assert_eq!(run.items, vec![]);
}

#[test]
fn limits_near_usize_max_behave_as_no_limit() {
    // A line cut by a read must be carried whole, whatever the limit: before the limit was
    // clamped, `usize::MAX` overflowed the carry's bound, the first half of the line was dropped,
    // and its tail (`id: forged`) was parsed as a field of its own.
    let input = b"data: xid: forged\n\nid: 1\ndata: y\n\n";
    for max in
        [usize::MAX, usize::MAX - 1, usize::MAX - 5, Parser::MAX_LIMIT + 1, Parser::MAX_LIMIT]
    {
        let run = run_all_chunkings(max, input);
        assert_eq!(run.items, vec![msg("message", "xid: forged", ""), msg("message", "y", "1")]);
        assert_eq!(run.last_event_id, "1");
        assert_eq!(Parser::new(max).max_event_size(), Parser::MAX_LIMIT.min(max));
    }
}
