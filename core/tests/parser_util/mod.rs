//! Helpers shared by the parser tests: run a parser over a chunked input and compare the
//! outputs of every chunking.
#![allow(dead_code)]

pub mod reference;

use bytes::Bytes;
use eventsource_core::parser::{Item, Parser};
use eventsource_core::{ErrorKind, Text};

/// The origin every pure parser test uses.
pub const ORIGIN: &str = "http://127.0.0.1:8080";

/// One output item, in plain strings for easy comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Msg { ty: String, data: String, id: String, origin: String },
    Retry(u64),
    Error(ErrorKind),
}

pub fn msg(ty: &str, data: &str, id: &str) -> Out {
    Out::Msg { ty: ty.into(), data: data.into(), id: id.into(), origin: ORIGIN.into() }
}

pub fn to_out(item: Item) -> Out {
    match item {
        Item::Message(m) => Out::Msg {
            ty: m.event_type.to_string(),
            data: m.data.to_string(),
            id: m.last_event_id.to_string(),
            origin: m.origin.to_string(),
        },
        Item::Retry(ms) => Out::Retry(ms),
    }
}

/// The result of one stream: the items and the last event ID string afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub items: Vec<Out>,
    pub last_event_id: String,
}

/// Feeds `chunks` as one stream to `p` (after `begin_stream`), stopping at the first error.
pub fn feed_stream(p: &mut Parser, chunks: &[&[u8]]) -> Run {
    p.begin_stream(Text::from(ORIGIN));
    let mut items = Vec::new();
    for c in chunks {
        let r = p.feed(Bytes::copy_from_slice(c), &mut |i| items.push(to_out(i)));
        if let Err(e) = r {
            items.push(Out::Error(e.kind()));
            break;
        }
    }
    Run { items, last_event_id: p.last_event_id().to_string() }
}

pub fn run_chunks(max: usize, chunks: &[&[u8]]) -> Run {
    let mut p = Parser::new(max);
    feed_stream(&mut p, chunks)
}

/// Whole input in one chunk, with a 1 MiB limit.
pub fn run(input: &[u8]) -> Run {
    run_chunks(1 << 20, &[input])
}

/// Runs `input` whole, then under every 1-cut and 2-cut chunking and a one-byte drip, and
/// asserts the same output each time. Returns the output.
pub fn run_all_chunkings(max: usize, input: &[u8]) -> Run {
    let whole = run_chunks(max, &[input]);
    let n = input.len();
    for i in 0..=n {
        let got = run_chunks(max, &[&input[..i], &input[i..]]);
        assert_eq!(got, whole, "1-cut at {i} of {:?}", String::from_utf8_lossy(input));
        for j in i..=n {
            let got = run_chunks(max, &[&input[..i], &input[i..j], &input[j..]]);
            assert_eq!(got, whole, "2-cut at {i},{j} of {:?}", String::from_utf8_lossy(input));
        }
    }
    let drip: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run_chunks(max, &drip), whole, "drip of {:?}", String::from_utf8_lossy(input));
    whole
}

/// `run_all_chunkings` with a 1 MiB limit, returning only the items.
pub fn items(input: &[u8]) -> Vec<Out> {
    run_all_chunkings(1 << 20, input).items
}
