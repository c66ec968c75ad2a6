//! Pure parser tests for the parser-observable assertions of §11 of
//! `/work/shared/spec/eventsource.md` (numbers in test names), and the §6.1–§6.3 examples.
//! Every input runs whole, under all 1-cut and 2-cut chunkings, and dripped byte by byte.

mod parser_util;

use parser_util::*;

const NONE: [&str; 0] = [];

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

fn datas(input: &[u8]) -> Vec<String> {
    items(input)
        .into_iter()
        .map(|o| match o {
            Out::Msg { data, .. } => data,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn ids(input: &[u8]) -> Vec<String> {
    items(input)
        .into_iter()
        .filter_map(|o| match o {
            Out::Msg { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

fn types(input: &[u8]) -> Vec<String> {
    items(input)
        .into_iter()
        .filter_map(|o| match o {
            Out::Msg { ty, .. } => Some(ty),
            _ => None,
        })
        .collect()
}

// ---- §11 25: BOM per connection ----

#[test]
fn s11_25_bom_stripped_on_every_stream() {
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    for n in 0..3 {
        let body = format!("\u{FEFF}data: {n}\n\n");
        let run = feed_stream(&mut p, &[body.as_bytes()]);
        assert_eq!(run.items, vec![msg("message", &n.to_string(), "")]);
    }
    // Split BOM on the second stream.
    let run = feed_stream(&mut p, &[b"\xEF", b"\xBB", b"\xBFdata:x\n\n"]);
    assert_eq!(run.items, vec![msg("message", "x", "")]);
}

// ---- §11 27–31: retry ----

#[test]
fn s11_27_retry_leading_zeros_not_octal() {
    assert_eq!(items(b"retry: 01500\n"), vec![Out::Retry(1500)]);
    assert_eq!(items(b"retry:0\n"), vec![Out::Retry(0)]);
}

#[test]
fn s11_28_retry_invalid_values_ignored() {
    for v in ["100x", "-100", "0.1", "+100", " 100", "", "1 ", "１"] {
        let input = format!("retry: {v}\ndata: a\n\n");
        assert_eq!(items(input.as_bytes()), vec![msg("message", "a", "")], "retry: {v:?}");
    }
    assert_eq!(items(b"retry\n"), vec![]);
}

#[test]
fn s11_29_retry_field_name_case_sensitive() {
    assert_eq!(items(b"Retry: 100\nRETRY: 100\nretry : 100\n\n"), vec![]);
}

#[test]
fn s11_31_retry_takes_effect_without_dispatch() {
    // Emitted at once, in stream order, even if the event is never dispatched.
    assert_eq!(items(b"retry: 100\n"), vec![Out::Retry(100)]);
    assert_eq!(
        items(b"data: a\n\nretry: 200\ndata: b\nretry: 300\n\n"),
        vec![msg("message", "a", ""), Out::Retry(200), Out::Retry(300), msg("message", "b", "")]
    );
}

#[test]
fn retry_huge_values_are_clamped() {
    use eventsource_core::parser::MAX_RETRY_MS;
    assert_eq!(items(b"retry: 86400000\n"), vec![Out::Retry(MAX_RETRY_MS)]);
    assert_eq!(items(b"retry: 86400001\n"), vec![Out::Retry(MAX_RETRY_MS)]);
    assert_eq!(
        items(b"retry: 99999999999999999999999999999999999999\n"),
        vec![Out::Retry(MAX_RETRY_MS)]
    );
}

// ---- §11 32–41: id ----

#[test]
fn s11_32_id_persists_across_streams() {
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    let r1 = feed_stream(&mut p, &[b"id: 42\ndata: a\n\n"]);
    assert_eq!(r1.items, vec![msg("message", "a", "42")]);
    assert_eq!(r1.last_event_id, "42");
    let r2 = feed_stream(&mut p, &[b"data: b\n\n"]);
    assert_eq!(r2.items, vec![msg("message", "b", "42")]);
    // `id: 42` then a blank line and EOF, without data.
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    assert_eq!(feed_stream(&mut p, &[b"id: 42\n\n"]).last_event_id, "42");
    assert_eq!(feed_stream(&mut p, &[b"data: b\n\n"]).items, vec![msg("message", "b", "42")]);
}

#[test]
fn s11_33_id_unicode() {
    let run = run_all_chunkings(1 << 20, "id: …é😀\n\n".as_bytes());
    assert_eq!(run.last_event_id, "…é😀");
}

#[test]
fn s11_34_id_persists_to_next_event() {
    assert_eq!(ids(b"id: 1\ndata: a\n\ndata: b\n\n"), vec!["1", "1"]);
}

#[test]
fn s11_35_ids_change() {
    assert_eq!(ids(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\ndata: c\n\n"), vec!["1", "2", "2"]);
}

#[test]
fn s11_36_empty_id_resets() {
    let run = run_all_chunkings(1 << 20, b"id: 1\ndata: a\n\nid:\ndata: b\n\ndata: c\n\n");
    assert_eq!(
        run.items,
        vec![msg("message", "a", "1"), msg("message", "b", ""), msg("message", "c", "")]
    );
    assert_eq!(run.last_event_id, "");
}

#[test]
fn s11_37_bare_id_resets() {
    let run = run_all_chunkings(1 << 20, b"id: 1\ndata: a\n\nid\ndata: b\n\n");
    assert_eq!(run.items, vec![msg("message", "a", "1"), msg("message", "b", "")]);
    assert_eq!(run.last_event_id, "");
}

#[test]
fn s11_38_id_with_nul_ignored() {
    let run = run_all_chunkings(1 << 20, b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n");
    assert_eq!(run.items, vec![msg("message", "a", "1"), msg("message", "b", "1")]);
    assert_eq!(run.last_event_id, "1");
    // NUL anywhere, even alone.
    assert_eq!(run_all_chunkings(1 << 20, b"id:\x00\n\n").last_event_id, "");
    // At either end of ids of 16 bytes (searched inline) and longer ones.
    for id in
        ["\0bcdefghijklmnop", "abcdefghijklmno\0", "\0bcdefghijklmnopqrst", "abcdefghijklmnopqrs\0"]
    {
        let input = format!("id: 7\ndata: a\n\nid: {id}\ndata: b\n\n");
        let run = run_all_chunkings(1 << 20, input.as_bytes());
        assert_eq!(run.last_event_id, "7", "{id:?}");
    }
}

#[test]
fn s11_39_id_without_data_updates_last_event_id() {
    let run = run_all_chunkings(1 << 20, b"id: 5\n\n");
    assert_eq!(run.items, vec![]);
    assert_eq!(run.last_event_id, "5");
    assert_eq!(ids(b"id: 5\n\ndata: x\n\n"), vec!["5"]);
}

#[test]
fn s11_40_id_of_unfinished_event_never_used() {
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    let r1 = feed_stream(&mut p, &[b"data: a\nid: test\n"]);
    assert_eq!(r1.items, vec![]);
    assert_eq!(r1.last_event_id, "");
    let r2 = feed_stream(&mut p, &[b"data: b\n\n"]);
    assert_eq!(r2.items, vec![msg("message", "b", "")]);
    assert_eq!(r2.last_event_id, "");
    // Also with an earlier id: the unfinished one never replaces it.
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    feed_stream(&mut p, &[b"id: 1\n\nid: 2\ndata: x"]);
    assert_eq!(p.last_event_id(), "1");
    assert_eq!(feed_stream(&mut p, &[b"data: y\n\n"]).items, vec![msg("message", "y", "1")]);
}

#[test]
fn s11_41_id_one_space_removed() {
    assert_eq!(run_all_chunkings(1 << 20, b"id:  x \n\n").last_event_id, " x ");
}

#[test]
fn set_last_event_id_seeds_the_buffer() {
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    p.set_last_event_id(eventsource_core::Text::from("start"));
    let r = feed_stream(&mut p, &[b"data: a\n\n"]);
    assert_eq!(r.items, vec![msg("message", "a", "start")]);
}

// ---- §11 42–45: data ----

#[test]
fn s11_42_multi_line_data() {
    assert_eq!(datas(b"data: a\ndata: b\ndata: c\n\n"), vec!["a\nb\nc"]);
}

#[test]
fn s11_43_empty_data_variants() {
    assert_eq!(datas(b"data:\n\n"), vec![""]);
    assert_eq!(datas(b"data\ndata\n\n"), vec!["\n"]);
    assert_eq!(datas(b"data: \n\n"), vec![""]);
    assert_eq!(datas(b"data\n\n"), vec![""]);
    assert_eq!(datas(b"data:\ndata:\ndata:\n\n"), vec!["\n\n"]);
}

#[test]
fn s11_44_value_whitespace() {
    assert_eq!(
        datas(b"data:no space\n\ndata:  two\n\ndata: a \n\ndata:\tx\n\n"),
        vec!["no space", " two", "a ", "\tx"]
    );
}

#[test]
fn s11_45_colons_in_value() {
    assert_eq!(datas(b"data: a:b: c\n\ndata::\n\n"), vec!["a:b: c", ":"]);
}

// ---- §11 46–51: event types ----

#[test]
fn s11_46_event_types() {
    assert_eq!(
        types(b"event: add\ndata: 1\n\nevent: remove\ndata: 2\n\ndata: 3\n\n"),
        vec!["add", "remove", "message"]
    );
}

#[test]
fn s11_47_empty_event_is_message() {
    assert_eq!(
        types(b"event:\ndata: 1\n\nevent: \ndata: 2\n\nevent\ndata: 3\n\n"),
        vec!["message", "message", "message"]
    );
    // An empty event: field resets an earlier one in the same block.
    assert_eq!(types(b"event: x\nevent:\ndata: 1\n\n"), vec!["message"]);
}

#[test]
fn s11_48_type_reset_without_data() {
    assert_eq!(types(b"event: x\n\ndata: 2\n\n"), vec!["message"]);
}

#[test]
fn s11_49_type_reset_after_dispatch() {
    assert_eq!(types(b"event: x\ndata: 1\n\ndata: 2\n\n"), vec!["x", "message"]);
    // The cached type is reused when repeated, and still reset after each dispatch.
    assert_eq!(
        types(b"event: x\ndata: 1\n\nevent: x\ndata: 2\n\ndata: 3\n\nevent: y\ndata: 4\n\n"),
        vec!["x", "x", "message", "y"]
    );
}

#[test]
fn s11_50_event_type_case_sensitive() {
    assert_eq!(types(b"event: Add\ndata: 1\n\n"), vec!["Add"]);
}

#[test]
fn s11_51_event_named_error() {
    assert_eq!(items(b"event: error\ndata: e\n\n"), vec![msg("error", "e", "")]);
}

// ---- §11 52–55: comments, unknown fields, blank lines ----

#[test]
fn s11_52_wpt_comment_stream() {
    let long = "x".repeat(2048);
    let input =
        format!("data:1\r:\0\n:\r\ndata:2\n:{long}\rdata:3\n:data:fail\r:{long}\ndata:4\n\n");
    // Too long for every 2-cut chunking: 1-cut, fixed chunk sizes and drip.
    let bytes = input.as_bytes();
    let whole = run(bytes);
    assert_eq!(whole.items, vec![msg("message", "1\n2\n3\n4", "")]);
    for i in 0..=bytes.len() {
        assert_eq!(run_chunks(1 << 20, &[&bytes[..i], &bytes[i..]]), whole);
    }
    for size in [1, 2, 3, 7, 64, 1000] {
        let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
        assert_eq!(run_chunks(1 << 20, &chunks), whole);
    }
}

#[test]
fn s11_53_comments_only() {
    assert_eq!(items(b":\n\n: ping\n\n"), vec![]);
    assert_eq!(items(b": a\r\n:b\r:c\n\n"), vec![]);
}

#[test]
fn s11_54_unknown_fields_ignored() {
    assert_eq!(items(b"foo:\nDATA: x\nData: x\ndata : x\nevent\nretry\nfoo\n\n"), vec![]);
    assert_eq!(datas(b"foo: 1\ndata: a\nDATA: x\nbar\n\n"), vec!["a"]);
    // Only the bare `event` is known (empty type), the rest is unknown.
    assert_eq!(types(b"event: x\nevent\ndata: a\n\n"), vec!["message"]);
    assert_eq!(types(b"event: x\neventx\ndata: a\n\n"), vec!["x"]);
    assert_eq!(types(b"event: x\nevent x\ndata: a\n\n"), vec!["x"]);
}

#[test]
fn s11_55_leading_blank_lines() {
    assert_eq!(items(b"\n\n\r\n\r\r\n\rdata: a\n\n"), vec![msg("message", "a", "")]);
    assert_eq!(items(b"\r\n\r\n\n\r"), vec![]);
}

// ---- §11 56–58: BOM ----

#[test]
fn s11_56_bom_only_at_start() {
    assert_eq!(datas("\u{FEFF}data:1\n\n\u{FEFF}data:2\n\ndata:3\n\n".as_bytes()), vec!["1", "3"]);
}

#[test]
fn s11_57_only_one_bom_stripped() {
    assert_eq!(datas("\u{FEFF}\u{FEFF}data:1\n\ndata:2\n\ndata:3\n\n".as_bytes()), vec!["2", "3"]);
}

#[test]
fn s11_58_feff_inside_value_kept() {
    assert_eq!(
        datas("data: a\u{FEFF}b\n\ndata:\u{FEFF}\n\n".as_bytes()),
        vec!["a\u{FEFF}b", "\u{FEFF}"]
    );
}

#[test]
fn s6_2_partial_bom_is_content() {
    // EF BB then not BF: the two bytes are an invalid sequence at the start of the first line.
    assert_eq!(datas(b"\xEF\xBBdata:1\n\ndata:2\n\n"), vec!["2"]);
    assert_eq!(datas(b"\xEF\xBB\n\xEFdata:2\n\ndata:3\n\n"), vec!["3"]);
    assert_eq!(datas(b"\xEFdata:1\n\n"), NONE);
    // A partial BOM as the whole start of a line that is blank: the line is not blank.
    assert_eq!(datas(b"data:0\n\xEF\n"), NONE);
    // BOM alone, and a BOM in a value when the stream starts with one.
    assert_eq!(items(b"\xEF\xBB\xBF"), vec![]);
    assert_eq!(datas(b"\xEF\xBB\xBF\n"), NONE);
    assert_eq!(datas("\u{FEFF}data:\u{FEFF}\n\n".as_bytes()), vec!["\u{FEFF}"]);
    // Two BOMs: the second is part of the first field name (`\u{FEFF}data`), ignored.
    assert_eq!(datas(b"\xEF\xBB\xBF\xEF\xBB\xBFdata:1\n\n"), NONE);
}

// ---- §11 59–62: line endings ----

#[test]
fn s11_59_line_endings_equivalent() {
    let lf = b"id: 1\nevent: e\ndata: a\ndata: b\n\n: c\ndata: z\n\n".to_vec();
    let crlf: Vec<u8> = String::from_utf8(lf.clone()).unwrap().replace('\n', "\r\n").into_bytes();
    let cr: Vec<u8> = String::from_utf8(lf.clone()).unwrap().replace('\n', "\r").into_bytes();
    let mixed = b"id: 1\r\nevent: e\rdata: a\ndata: b\r\r\n: c\r\ndata: z\r\n\n".to_vec();
    let expect = vec![msg("e", "a\nb", "1"), msg("message", "z", "1")];
    for input in [lf, crlf, cr, mixed] {
        assert_eq!(items(&input), expect, "{:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn s11_60_lf_cr_is_two_endings() {
    assert_eq!(datas(b"data:1\n\rdata:2\n\n"), vec!["1", "2"]);
}

#[test]
fn s11_61_crlf_split_across_chunks() {
    let run = run_chunks(1 << 20, &[b"data:1\r", b"\ndata:2\r\n\r\n"]);
    assert_eq!(run.items, vec![msg("message", "1\n2", "")]);
    // With empty chunks in between (a pause).
    let run = run_chunks(1 << 20, &[b"data:1\r", b"", b"", b"\ndata:2\r\n\r\n"]);
    assert_eq!(run.items, vec![msg("message", "1\n2", "")]);
    assert_eq!(datas(b"data:1\r\ndata:2\r\n\r\n"), vec!["1\n2"]);
}

#[test]
fn s11_62_cr_cr_is_two_endings() {
    let run = run_chunks(1 << 20, &[b"data:1\r", b"\rdata:2\n\n"]);
    assert_eq!(run.items, vec![msg("message", "1", ""), msg("message", "2", "")]);
    assert_eq!(datas(b"data:1\r\rdata:2\n\n"), vec!["1", "2"]);
}

#[test]
fn s6_3_incomplete_last_line_discarded() {
    // §11 23 at the parser level.
    assert_eq!(items(b"data: a\n\ndata: b"), vec![msg("message", "a", "")]);
    assert_eq!(items(b"data: a\n\ndata: b\n"), vec![msg("message", "a", "")]);
    // A new stream starts clean.
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    feed_stream(&mut p, &[b"event: x\ndata: b\r"]);
    let r = feed_stream(&mut p, &[b"\ndata: c\n\n"]);
    // The LF is an empty line of the new stream (no pending CR), dispatching nothing.
    assert_eq!(r.items, vec![msg("message", "c", "")]);
}

// ---- §11 63–65: UTF-8 ----

#[test]
fn s11_63_multibyte_dripped() {
    assert_eq!(datas("data: é😀…\n\n".as_bytes()), vec!["é😀…"]);
}

/// UTF-8 is checked once per chunk and once more only for a line cut by a chunk boundary:
/// long lines (past any short-line path) with characters and invalid bytes at every cut, on
/// either side of a chunk boundary, in one-line and multi-line events, ids and types.
#[test]
fn s11_63_utf8_of_long_lines_at_every_cut() {
    let mut input = Vec::new();
    input.extend_from_slice("data: ".as_bytes());
    input.extend_from_slice("é".repeat(40).as_bytes());
    input.extend_from_slice(b"\xFF");
    input.extend_from_slice("😀".repeat(8).as_bytes());
    input.extend_from_slice(b"\n\n");
    input.extend_from_slice("id: ü-".as_bytes());
    input.extend_from_slice(&b"x".repeat(30));
    input.extend_from_slice(b"\nevent: \xF0\x9F\x98 long type name, ");
    input.extend_from_slice("€".repeat(10).as_bytes());
    input.extend_from_slice(b"\ndata: ");
    input.extend_from_slice(&b"a".repeat(70));
    input.extend_from_slice("é\ndata: ok€\n\n".as_bytes());
    input.extend_from_slice(b"data: \xC3");
    input.extend_from_slice(&b"b".repeat(80));
    input.extend_from_slice(b"\n\n");
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let ty = lossy(&[b"\xF0\x9F\x98 long type name, ", "€".repeat(10).as_bytes()].concat());
    let id = format!("ü-{}", "x".repeat(30));
    assert_eq!(
        items(&input),
        vec![
            msg("message", &format!("{}\u{FFFD}{}", "é".repeat(40), "😀".repeat(8)), ""),
            msg(&ty, &format!("{}é\nok€", "a".repeat(70)), &id),
            msg("message", &format!("\u{FFFD}{}", "b".repeat(80)), &id),
        ]
    );
}

#[test]
fn s6_1_utf8_examples() {
    let cases: [(&[u8], &str); 6] = [
        (b"\x61\xFF\x62", "a\u{FFFD}b"),
        (b"\xC3\x28", "\u{FFFD}("),
        (b"\xED\xA0\x80", "\u{FFFD}\u{FFFD}\u{FFFD}"),
        (b"\xF0\x9F\x98", "\u{FFFD}"),
        (b"\xC0\xAF", "\u{FFFD}\u{FFFD}"),
        (b"\xF0\x9F\x98\x80\xF0\x9F", "😀\u{FFFD}"),
    ];
    for (bytes, want) in cases {
        let mut input = b"data: ".to_vec();
        input.extend_from_slice(bytes);
        input.extend_from_slice(b"\n\n");
        assert_eq!(datas(&input), vec![want], "{bytes:?}");
        // Across lines of one event: the LF ends the bad sequence.
        let mut input = b"data: ".to_vec();
        input.extend_from_slice(bytes);
        input.extend_from_slice(b"\ndata: ");
        input.extend_from_slice(bytes);
        input.extend_from_slice(b"\n\n");
        assert_eq!(datas(&input), vec![format!("{want}\n{want}")], "{bytes:?}");
    }
}

#[test]
fn s11_64_invalid_utf8_in_id_and_event() {
    let run = run_all_chunkings(1 << 20, b"id: \xF0\x9F\x98\nevent: a\xFFb\ndata: \xC3\x28\n\n");
    assert_eq!(run.items, vec![msg("a\u{FFFD}b", "\u{FFFD}(", "\u{FFFD}")]);
    assert_eq!(run.last_event_id, "\u{FFFD}");
}

#[test]
fn s11_65_nul_in_data() {
    assert_eq!(datas(b"data:\0\n\n"), vec!["\0"]);
    assert_eq!(types(b"event:\0\ndata: x\n\n"), vec!["\0"]);
}

// ---- §11 66–67: sizes and counts ----

#[test]
fn s11_66_big_line_and_big_comment() {
    let mut input = b"data: ".to_vec();
    let big: String = (0..(1 << 20)).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    input.extend_from_slice(big.as_bytes());
    input.extend_from_slice(b"\n\n:");
    input.extend(std::iter::repeat_n(b'c', 256 << 10));
    input.extend_from_slice(b"\ndata: after\n\n");
    let want = vec![msg("message", &big, ""), msg("message", "after", "")];
    for size in [1000, 4096, 65536, 1 << 20, input.len()] {
        let chunks: Vec<&[u8]> = input.chunks(size).collect();
        assert_eq!(run_chunks(16 << 20, &chunks).items, want, "chunks of {size}");
    }
}

#[test]
fn s11_67_five_hundred_events_in_one_write() {
    let input: String = (0..500).map(|i| format!("id: {i}\ndata: event {i}\n\n")).collect();
    let run = run(input.as_bytes());
    let want: Vec<Out> =
        (0..500).map(|i| msg("message", &format!("event {i}"), &i.to_string())).collect();
    assert_eq!(run.items, want);
    assert_eq!(run_chunks(1 << 20, &input.as_bytes().chunks(7).collect::<Vec<_>>()), run);
}

// ---- origin ----

#[test]
fn origin_is_the_streams() {
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    p.begin_stream(eventsource_core::Text::from("http://a.example"));
    let mut got = Vec::new();
    p.feed(bytes::Bytes::from_static(b"data: 1\n\n"), &mut |i| got.push(i)).unwrap();
    p.begin_stream(eventsource_core::Text::from("http://b.example:81"));
    p.feed(bytes::Bytes::from_static(b"data: 2\n\n"), &mut |i| got.push(i)).unwrap();
    let origins: Vec<String> = got
        .into_iter()
        .map(|i| match i {
            eventsource_core::parser::Item::Message(m) => m.origin.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(origins, vec!["http://a.example", "http://b.example:81"]);
}

#[test]
fn standalone_parser_without_begin_stream() {
    let mut p = eventsource_core::parser::Parser::new(1 << 20);
    let mut got = Vec::new();
    p.feed_slice(b"\xEF\xBB\xBFdata: 1\n\n", &mut |i| got.push(to_out(i))).unwrap();
    assert_eq!(
        got,
        vec![Out::Msg { ty: "message".into(), data: "1".into(), id: "".into(), origin: "".into() }]
    );
}
