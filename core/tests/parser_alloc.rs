//! Allocation counts of the parser (deterministic): none for an event whose data is one line
//! inside the chunk, exactly one for any other event. A counting global allocator, per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use eventsource_core::Text;
use eventsource_core::parser::{Item, Parser};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the counter may be gone while the thread shuts down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

/// A parser in the state the connection code leaves it: a shared origin, already cloned once
/// (a `Bytes` made from a `Vec` allocates its shared header at its first clone), and its
/// reused buffers grown by a first multi-line event.
fn warm_parser() -> Parser {
    let mut p = Parser::new(1 << 20);
    p.begin_stream(Text::from("http://127.0.0.1:8080"));
    let mut n = 0;
    let warm = Bytes::from_static(b"data: w\n\ndata: a\ndata: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n\n");
    p.feed(warm, &mut |_| n += 1).unwrap();
    assert_eq!(n, 2);
    p
}

/// Feeds `chunks` (already shared) and returns (allocations, events).
fn count(p: &mut Parser, chunks: &[Bytes]) -> (usize, usize) {
    let mut events = 0;
    let before = allocs();
    for c in chunks {
        p.feed(c.clone(), &mut |i| {
            if let Item::Message(m) = i {
                events += 1;
                drop(m);
            }
        })
        .unwrap();
    }
    (allocs() - before, events)
}

/// `corpus` as one `Bytes` whose shared header exists (as network chunks from hyper have).
fn shared(corpus: String) -> Bytes {
    let b = Bytes::from(corpus);
    drop(b.clone());
    b
}

#[test]
fn one_line_events_in_chunk_allocate_nothing() {
    for (name, one) in [
        ("plain", "data: tok\n\n"),
        ("crlf", "data: tok\r\n\r\n"),
        ("cr", "data: tok\r\r"),
        ("empty data", "data\n\n"),
        ("repeated type", "event: update\ndata: {\"a\":1}\n\n"),
        ("comment and retry", ": ping\nretry: 1000\ndata: x\n\n"),
        ("non-ASCII", "data: é😀…\n\n"),
    ] {
        let mut p = warm_parser();
        let chunk = shared(one.repeat(1000));
        let (a, n) = count(&mut p, &[chunk]);
        assert_eq!(n, 1000, "{name}");
        // A custom type is sliced from the chunk (and then reused): no allocation either.
        assert_eq!(a, 0, "{name}: {a} allocations for 1000 events");
    }
}

/// The `i`-th event of a corpus.
type Corpus = fn(usize) -> String;

/// Values longer than a `Text` holds inline are slices of the chunk that share it: one shared
/// `Chunk` for the whole chunk (one allocation), its counts taken in bulk. Not one allocation,
/// nor one count, per event.
#[test]
fn long_one_line_events_in_chunk_allocate_once_per_chunk() {
    const LLM: &str = "data: {\"choices\":[{\"delta\":{\"content\":\" word\"}}]}";
    let cases: [(&str, Corpus); 3] = [
        ("LLM token", |_| format!("{LLM}\n\n")),
        ("CRLF", |_| format!("{LLM}\r\n\r\n")),
        ("changing long ids", |i| format!("id: {i:036}\ndata: x\n\n")),
    ];
    for (name, event) in cases {
        let mut p = warm_parser();
        let (a, n) = count(&mut p, &[shared((0..1000).map(event).collect())]);
        assert_eq!((a, n), (1, 1000), "{name}");
        // A chunk with a single long value: the same, one allocation for its one event.
        let (a, n) = count(&mut p, &[shared(event(1000))]);
        assert_eq!((a, n), (1, 1), "{name}, alone in its chunk");
    }
}

#[test]
fn changing_ids_allocate_nothing() {
    let mut p = warm_parser();
    let corpus: String = (0..1000).map(|i| format!("id: {i}\ndata: x\n\n")).collect();
    let (a, n) = count(&mut p, &[shared(corpus)]);
    assert_eq!((a, n), (0, 1000));
    assert_eq!(p.last_event_id(), "999");
}

#[test]
fn multi_line_events_allocate_once() {
    let mut p = warm_parser();
    let corpus = "event: chunk\ndata: a\ndata: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n\n".repeat(1000);
    let (a, n) = count(&mut p, &[shared(corpus)]);
    assert_eq!((a, n), (1000, 1000));
}

#[test]
fn events_across_chunks_allocate_at_most_once() {
    for size in [7, 64, 4096] {
        let mut p = warm_parser();
        let corpus: String = (0..1000)
            .map(|i| match i % 3 {
                0 => format!("id: {i}\ndata: {{\"content\":\" word {i}\"}}\n\n"),
                1 => "data: a\ndata: b\n\n".to_string(),
                _ => format!("event: e\ndata: {}\n\n", "x".repeat(i % 100)),
            })
            .collect();
        let all = shared(corpus);
        let chunks: Vec<Bytes> =
            (0..all.len()).step_by(size).map(|i| all.slice(i..(i + size).min(all.len()))).collect();
        let (a, n) = count(&mut p, &chunks);
        assert_eq!(n, 1000);
        // At most one for the data of each event; an id or type value cut by a chunk boundary
        // is copied too, so allow that (only with tiny chunks).
        let limit = if size < 64 { 2 * n } else { n };
        assert!(a <= limit, "chunks of {size}: {a} allocations for {n} events");
    }
}

/// `detach` copies kept slices out of the chunk, so dropping the chunk frees its buffer
/// (the event values handed out stay valid).
#[test]
fn detach_releases_the_chunk() {
    let mut p = Parser::new(1 << 20);
    let chunk =
        Bytes::from(b"id: 41\nevent: tick\ndata: a\n\nid: 42\nevent: tick\ndata: pending".to_vec());
    let weak_probe = chunk.clone();
    let mut got = Vec::new();
    p.feed(chunk, &mut |i| got.push(i)).unwrap();
    p.detach();
    drop(got);
    // Only our probe still refers to the buffer: it is unique again.
    assert!(weak_probe.is_unique(), "the parser still holds a slice of the chunk");
    let mut got = Vec::new();
    p.feed(Bytes::from_static(b"\n\n"), &mut |i| got.push(i)).unwrap();
    let [Item::Message(m)] = &got[..] else { panic!("{got:?}") };
    assert_eq!((&*m.event_type, &*m.data, &*m.last_event_id), ("tick", "pending", "42"));
}
