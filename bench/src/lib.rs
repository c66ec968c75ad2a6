//! Shared pieces of the parser benchmarks: generated corpora, chunking, and one driver per
//! parser (ours and the peers), each fed the same `Bytes` chunks.
//!
//! Run: `cargo bench -p eventsource-bench --bench parser` and
//! `cargo run --profile bench -p eventsource-bench --bin alloc_count`.

use bytes::Bytes;
use eventsource_core::Text;
use eventsource_core::parser::{Item, Parser};
use futures::StreamExt;

/// The size of each generated corpus, in bytes (about).
pub const CORPUS_BYTES: usize = 4 << 20;

/// The chunk sizes every corpus is fed in.
pub const CHUNK_SIZES: [usize; 2] = [4 << 10, 64 << 10];

/// A named corpus.
pub struct Corpus {
    pub name: &'static str,
    pub bytes: Bytes,
    /// The number of events a spec-exact parser dispatches on it.
    pub events: usize,
}

/// A small deterministic generator (xorshift), so corpora are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 12] =
    ["the", "model", "token", "stream", "of", "events", "and", "a", "reply", "word", "é", "😀"];

fn llm_event(rng: &mut Rng, eol: &str) -> String {
    let w = WORDS[rng.below(WORDS.len() as u64) as usize];
    format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\" {w}\"}}}}]}}{eol}{eol}")
}

/// `{"k":N,"v":"word"}` items, comma-separated, at least `len` bytes of them.
fn json_items(rng: &mut Rng, words: &[&str], len: usize) -> String {
    let mut items = String::new();
    while items.len() < len {
        let w = words[rng.below(words.len() as u64) as usize];
        items.push_str(&format!("{{\"k\":{},\"v\":\"{w}\"}},", rng.below(100000)));
    }
    items.pop();
    items
}

fn json_1k(rng: &mut Rng, id: u64) -> String {
    let items = json_items(rng, &WORDS, 960);
    format!("id: {id}\ndata: {{\"id\":{id},\"items\":[{items}]}}\n\n")
}

/// Pure-ASCII words, as most JSON APIs send them (the other corpora mix in `é` and `😀`).
const ASCII_WORDS: [&str; 10] =
    ["the", "model", "token", "stream", "of", "events", "and", "a", "reply", "word"];

/// ~1 KB of ASCII JSON with `event:` and `id:` lines.
fn json_1k_ascii(rng: &mut Rng, id: u64) -> String {
    let items = json_items(rng, &ASCII_WORDS, 940);
    format!("event: update\nid: {id}\ndata: {{\"id\":{id},\"items\":[{items}]}}\n\n")
}

/// A ~190-byte ASCII chat-completion chunk, as LLM APIs stream them.
fn llm_chunk_ascii(rng: &mut Rng, i: u64) -> String {
    let w = ASCII_WORDS[rng.below(ASCII_WORDS.len() as u64) as usize];
    format!(
        "data: {{\"id\":\"chatcmpl-{:016x}\",\"object\":\"chat.completion.chunk\",\"created\":{},\
         \"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" {w}\"}},\
         \"finish_reason\":null}}]}}\n\n",
        rng.next(),
        1_700_000_000 + i / 50
    )
}

fn multi_line(rng: &mut Rng) -> String {
    let mut s = String::from("event: chunk\n");
    for _ in 0..5 {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        s.push_str(&format!("data: a line of text with a {w} in it, {}\n", rng.below(1000)));
    }
    s.push('\n');
    s
}

fn build(name: &'static str, mut gen_event: impl FnMut(&mut Rng, u64) -> (String, bool)) -> Corpus {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut s = String::with_capacity(CORPUS_BYTES + 4096);
    let mut events = 0;
    let mut i = 0;
    while s.len() < CORPUS_BYTES {
        let (e, dispatches) = gen_event(&mut rng, i);
        s.push_str(&e);
        events += usize::from(dispatches);
        i += 1;
    }
    Corpus { name, bytes: Bytes::from(s), events }
}

/// All corpora: tiny, LLM-token, ~1 KB JSON (with non-ASCII words, and pure ASCII), a ~190-byte
/// ASCII chat-completion chunk, multi-line, CRLF, mixed.
pub fn corpora() -> Vec<Corpus> {
    vec![
        build("small", |rng, _| (format!("data: tok{}\n\n", rng.below(10)), true)),
        build("llm_token", |rng, _| (llm_event(rng, "\n"), true)),
        // A resumable stream: each token carries a new UUID id.
        build("llm_id", |rng, i| {
            let id = format!(
                "8c1f3a2e-{:04x}-4{:03x}-8000-{:012x}",
                i >> 16,
                i & 0xfff,
                rng.next() >> 16
            );
            (format!("id: {id}\n{}", llm_event(rng, "\n")), true)
        }),
        build("json_1k", |rng, i| (json_1k(rng, i), true)),
        build("json_1k_ascii", |rng, i| (json_1k_ascii(rng, i), true)),
        build("llm_chunk_ascii", |rng, i| (llm_chunk_ascii(rng, i), true)),
        build("multi_line", |rng, _| (multi_line(rng), true)),
        build("crlf", |rng, _| (llm_event(rng, "\r\n"), true)),
        build("mixed", |rng, i| match rng.below(10) {
            0 => (": keep-alive\n\n".to_string(), false),
            1 => (json_1k(rng, i), true),
            2 => (multi_line(rng), true),
            3 => (format!("event: update\nid: {i}\ndata: {}\n\n", rng.below(1 << 20)), true),
            4 => ("retry: 3000\n".to_string(), false),
            5 => (llm_event(rng, "\r\n"), true),
            _ => (llm_event(rng, "\n"), true),
        }),
    ]
}

/// Cuts `bytes` into chunks of `size` that share its buffer (like network reads from hyper).
pub fn chunk(bytes: &Bytes, size: usize) -> Vec<Bytes> {
    (0..bytes.len()).step_by(size).map(|i| bytes.slice(i..(i + size).min(bytes.len()))).collect()
}

/// Our parser: returns the number of dispatched events.
pub fn run_ours(chunks: &[Bytes]) -> usize {
    let mut p = Parser::new(16 << 20);
    // As the connection code does: the origin is a shared string, cloned into each event.
    p.begin_stream(Text::from("http://127.0.0.1:8080"));
    let mut n = 0;
    let mut emit = |item: Item| {
        if let Item::Message(m) = item {
            n += 1;
            std::hint::black_box(&m);
        }
    };
    for c in chunks {
        p.feed(c.clone(), &mut emit).expect("parse");
    }
    n
}

/// `sse-stream` (0.3, `SseByteStream`): returns the number of blocks with data.
pub fn run_sse_stream(chunks: &[Bytes]) -> usize {
    let input = futures::stream::iter(chunks.iter().cloned().map(Ok::<Bytes, std::io::Error>));
    let mut s = sse_stream::SseByteStream::new(input);
    futures::executor::block_on(async {
        let mut n = 0;
        while let Some(ev) = s.next().await {
            let ev = ev.expect("parse");
            if ev.data.is_some() {
                n += 1;
            }
            std::hint::black_box(&ev);
        }
        n
    })
}

/// `eventsource-stream` (0.2): returns the number of events.
pub fn run_eventsource_stream(chunks: &[Bytes]) -> usize {
    let input = futures::stream::iter(chunks.iter().cloned().map(Ok::<Bytes, std::io::Error>));
    let mut s = eventsource_stream::EventStream::new(input);
    futures::executor::block_on(async {
        let mut n = 0;
        while let Some(ev) = s.next().await {
            let ev = ev.expect("parse");
            n += 1;
            std::hint::black_box(&ev);
        }
        n
    })
}

/// The floor: count LFs with `memchr` (no parsing at all).
pub fn run_memchr_lines(chunks: &[Bytes]) -> usize {
    chunks.iter().map(|c| memchr::memchr_iter(b'\n', c).count()).sum()
}

/// The UTF-8 floor: validate every chunk with `simdutf8` (what `sse-stream` uses; ours has its
/// own, faster on non-ASCII text where the CPU has AVX2 or AVX-512), nothing else.
/// Returns the number of chunks that are valid on their own.
pub fn run_utf8_floor(chunks: &[Bytes]) -> usize {
    chunks.iter().filter(|c| simdutf8::basic::from_utf8(c).is_ok()).count()
}

/// The bytes the process's allocator has handed out and not taken back (glibc's
/// `mallinfo2`: in-use chunks of every arena plus mmapped ones), in KiB. Beside the RSS it
/// tells live memory from memory that was freed but stays resident (freed chunks between live
/// ones, which glibc keeps). `None` where the allocator is not glibc's.
pub fn heap_kib() -> Option<f64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct.
        let m = unsafe { libc::mallinfo2() };
        Some((m.uordblks + m.hblkhd) as f64 / 1024.0)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// CPU time (user + system) of this process so far, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU time of another process's threads so far, in seconds with nanoseconds' precision (the
/// first field of each thread's `schedstat`; `getrusage` cannot see another process, and
/// `/proc/PID/stat` counts in 10 ms ticks).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let ns: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ns as f64 / 1e9
}

/// `s` as a JSON string literal (the benches write their records without a JSON crate).
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
