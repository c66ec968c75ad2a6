//! A quick throughput check (best of several runs, no statistics): ours vs `sse-stream` on
//! every corpus and chunk size. For iterating on the parser; the real figures come from
//! `cargo bench -p eventsource-bench --bench parser`.
//!
//! `cargo run --release -p eventsource-bench --bin quick [FILTER]`

use std::time::{Duration, Instant};

use eventsource_bench::*;

fn best(runs: usize, mut f: impl FnMut() -> usize) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    println!("{:<20} {:>10} {:>10} {:>7}", "corpus/chunk", "ours MB/s", "sse MB/s", "ratio");
    for corpus in corpora() {
        for size in CHUNK_SIZES {
            let name = format!("{}/{}k", corpus.name, size >> 10);
            if !name.contains(&filter) {
                continue;
            }
            let chunks = chunk(&corpus.bytes, size);
            let mb = corpus.bytes.len() as f64 / 1e6;
            let ours = best(15, || run_ours(&chunks));
            let sse = best(15, || run_sse_stream(&chunks));
            println!(
                "{:<20} {:>10.0} {:>10.0} {:>7.2}",
                name,
                mb / ours.as_secs_f64(),
                mb / sse.as_secs_f64(),
                sse.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
}
