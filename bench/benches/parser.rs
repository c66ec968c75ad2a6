//! Parser throughput: ours vs `sse-stream` vs `eventsource-stream` vs a bare `memchr` line
//! count, on the same corpora and the same `Bytes` chunks.
//!
//! `cargo bench -p eventsource-bench --bench parser -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventsource_bench::*;
use std::hint::black_box;

fn parser(c: &mut Criterion) {
    for corpus in corpora() {
        for size in CHUNK_SIZES {
            let chunks = chunk(&corpus.bytes, size);
            // Every parser must see the same events before we time it.
            assert_eq!(run_ours(&chunks), corpus.events, "ours on {}", corpus.name);
            assert_eq!(run_sse_stream(&chunks), corpus.events, "sse-stream on {}", corpus.name);
            let mut g = c.benchmark_group(format!("{}/{}k", corpus.name, size >> 10));
            g.throughput(Throughput::Bytes(corpus.bytes.len() as u64));
            // Each iteration parses ~4 MiB (up to ~0.2 s for the slowest peer): 20 samples
            // keep a run short and are plenty for differences of this size.
            g.sample_size(20);
            g.bench_function("ours", |b| b.iter(|| black_box(run_ours(black_box(&chunks)))));
            g.bench_function("sse-stream", |b| {
                b.iter(|| black_box(run_sse_stream(black_box(&chunks))))
            });
            g.bench_function("eventsource-stream", |b| {
                b.iter(|| black_box(run_eventsource_stream(black_box(&chunks))))
            });
            g.bench_function("memchr-lines", |b| {
                b.iter(|| black_box(run_memchr_lines(black_box(&chunks))))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, parser);
criterion_main!(benches);
