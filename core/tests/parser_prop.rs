//! Property tests: random streams built from tricky pieces, fed under random chunkings, give
//! exactly what a straightforward reference implementation of the spec gives.

mod parser_util;

use eventsource_core::parser::Parser;
use parser_util::reference::Reference;
use parser_util::*;
use proptest::prelude::*;
use proptest::sample::Index;

const PIECES: &[&[u8]] = &[
    b"data",
    b"data:",
    b"data: ",
    b"event",
    b"event:",
    b"event: ",
    b"id",
    b"id:",
    b"id: ",
    b"retry:",
    b"retry: ",
    b"Data:",
    b":",
    b": ",
    b" ",
    b"  ",
    b"x",
    b"abc",
    b"a:b",
    b"123",
    b"007",
    b"99999999999999999999999",
    b"-1",
    "é".as_bytes(),
    "😀".as_bytes(),
    "…".as_bytes(),
    b"\xEF\xBB\xBF",
    b"\xEF\xBB",
    b"\xFF",
    b"\xC3",
    b"\xC0\xAF",
    b"\xF0\x9F\x98",
    b"\xED\xA0\x80",
    b"\0",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\r\r",
    b"\n\r",
    b"data: tok\n\n",
    b"event: up\ndata: 1\n\n",
    b"id: 5\n",
    // Values longer than a `Text` holds inline (slices of the chunk that share it), with
    // characters across the validator's 32- and 64-byte blocks.
    b"data: {\"choices\":[{\"delta\":{\"content\":\" word\"}}]}\n\n",
    "data: àéîõü…😀 ひらがな — ünïcödé over a block boundary 😀😀😀 ok\n\n".as_bytes(),
    b"id: 0123456789abcdef0123456789abcdef\n",
    b"event: a-custom-event-type-name-that-is-long\n",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(PIECES), 0..48).prop_map(|ps| ps.concat())
}

/// A body and the cut points of its chunking.
fn chunked_body() -> impl Strategy<Value = (Vec<u8>, Vec<Index>)> {
    (body(), prop::collection::vec(any::<Index>(), 0..10))
}

fn chunks<'a>(body: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in at {
        out.push(&body[prev..c]);
        prev = c;
    }
    out.push(&body[prev..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Two streams on one parser (the last event ID carries over) match the reference.
    #[test]
    fn matches_reference((b1, c1) in chunked_body(), (b2, c2) in chunked_body()) {
        let mut reference = Reference { last_event_id: String::new() };
        let mut p = Parser::new(1 << 20);
        for (b, c) in [(&b1, &c1), (&b2, &c2)] {
            let want = reference.stream(b);
            let got = feed_stream(&mut p, &chunks(b, c));
            prop_assert_eq!(got, want, "body {:?}", String::from_utf8_lossy(b));
        }
    }

    /// One-byte drip matches the reference.
    #[test]
    fn drip_matches_reference(b in body()) {
        let mut reference = Reference { last_event_id: String::new() };
        let want = reference.stream(&b);
        let drip: Vec<&[u8]> = b.chunks(1).collect();
        prop_assert_eq!(run_chunks(1 << 20, &drip), want);
    }

    /// With a small limit (errors happen), every chunking gives what the whole body gives.
    #[test]
    fn small_limit_is_chunking_independent((b, c) in chunked_body(), max in 0usize..24) {
        let whole = run_chunks(max, &[&b]);
        prop_assert_eq!(run_chunks(max, &chunks(&b, &c)), whole.clone());
        let drip: Vec<&[u8]> = b.chunks(1).collect();
        prop_assert_eq!(run_chunks(max, &drip), whole.clone());
        // And, without an error, it is the reference.
        if !whole.items.iter().any(|i| matches!(i, Out::Error(_))) {
            let mut reference = Reference { last_event_id: String::new() };
            prop_assert_eq!(whole, reference.stream(&b));
        }
    }
}
