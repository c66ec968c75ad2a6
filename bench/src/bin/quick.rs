//! A quick throughput check (no statistics): ours vs `sse-stream` on every corpus and chunk
//! size. For iterating on the parser; the real figures come from
//! `cargo bench -p eventsource-bench --bench parser`.
//!
//! The two parsers run alternately, `ROUNDS` times each, and each keeps its fastest run, timed
//! in CPU time of this thread: on a shared machine a busy moment slows both alike or neither,
//! and time spent descheduled is not counted, so the ratio holds up under load.
//!
//! `utf8 MB/s` is the floor of checking the bytes' UTF-8 alone (`run_utf8_floor`), `lines MB/s`
//! that of finding every LF (`run_memchr_lines`): between them they say whether a corpus costs
//! more in validation or in line scanning.
//!
//! `cargo run --profile bench -p eventsource-bench --bin quick [FILTER] [ROUNDS] [--json PATH]`
//!
//! `--json PATH` also writes the rows as a JSON array (for bench/report).

use std::time::Duration;

use eventsource_bench::*;

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn time(f: &mut impl FnMut() -> usize) -> Duration {
    let t = thread_cpu();
    std::hint::black_box(f());
    thread_cpu() - t
}

fn main() {
    let mut positional = Vec::new();
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = Some(args.next().expect("--json PATH")),
            _ => positional.push(a),
        }
    }
    let filter = positional.first().cloned().unwrap_or_default();
    let rounds: usize = positional.get(1).map_or(15, |r| r.parse().expect("rounds"));
    let mut rows = Vec::new();
    println!(
        "{:<20} {:>10} {:>10} {:>7} {:>11} {:>11}",
        "corpus/chunk", "ours MB/s", "sse MB/s", "ratio", "utf8 MB/s", "lines MB/s"
    );
    for corpus in corpora() {
        for size in CHUNK_SIZES {
            let name = format!("{}/{}k", corpus.name, size >> 10);
            if !name.contains(&filter) {
                continue;
            }
            let chunks = chunk(&corpus.bytes, size);
            let mb = corpus.bytes.len() as f64 / 1e6;
            // Both parsers must find every event before they are timed.
            assert_eq!(run_ours(&chunks), corpus.events, "ours on {name}");
            assert_eq!(run_sse_stream(&chunks), corpus.events, "sse-stream on {name}");
            let [mut ours, mut sse, mut utf8, mut lines] = [Duration::MAX; 4];
            for _ in 0..rounds {
                ours = ours.min(time(&mut || run_ours(&chunks)));
                sse = sse.min(time(&mut || run_sse_stream(&chunks)));
                utf8 = utf8.min(time(&mut || run_utf8_floor(&chunks)));
                lines = lines.min(time(&mut || run_memchr_lines(&chunks)));
            }
            let rate = |d: Duration| mb / d.as_secs_f64();
            println!(
                "{:<20} {:>10.0} {:>10.0} {:>7.2} {:>11.0} {:>11.0}",
                name,
                rate(ours),
                rate(sse),
                sse.as_secs_f64() / ours.as_secs_f64(),
                rate(utf8),
                rate(lines)
            );
            rows.push(format!(
                "{{\"corpus\":\"{}\",\"chunk_kib\":{},\"bytes\":{},\"events\":{},\"rounds\":{rounds},\
                 \"ours_mb_s\":{:.1},\"sse_stream_mb_s\":{:.1},\"utf8_floor_mb_s\":{:.1},\
                 \"lines_floor_mb_s\":{:.1}}}",
                corpus.name,
                size >> 10,
                corpus.bytes.len(),
                corpus.events,
                rate(ours),
                rate(sse),
                rate(utf8),
                rate(lines)
            ));
        }
    }
    if let Some(path) = json {
        std::fs::write(&path, format!("[\n{}\n]\n", rows.join(",\n")))
            .unwrap_or_else(|e| panic!("--json {path}: {e}"));
    }
}
