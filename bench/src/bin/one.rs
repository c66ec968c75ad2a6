//! Runs one parser once on one corpus and chunk size, for instruction counting
//! (`valgrind --tool=callgrind target/release/one ours json_1k 4`) or `perf`.
//!
//! `one <ours|sse-stream|eventsource-stream|memchr> <corpus> <chunk KiB> [repeat]`

use eventsource_bench::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (who, name) = (args[1].as_str(), args[2].as_str());
    let size: usize = args[3].parse::<usize>().expect("chunk KiB") << 10;
    let repeat: usize = args.get(4).map_or(1, |r| r.parse().expect("repeat"));
    let corpus = corpora().into_iter().find(|c| c.name == name).expect("corpus name");
    let chunks = chunk(&corpus.bytes, size);
    let run = match who {
        "ours" => run_ours,
        "sse-stream" => run_sse_stream,
        "eventsource-stream" => run_eventsource_stream,
        "memchr" => run_memchr_lines,
        _ => panic!("unknown parser {who}"),
    };
    let mut n = 0;
    for _ in 0..repeat {
        n = std::hint::black_box(run(std::hint::black_box(&chunks)));
    }
    println!("{who} {name}/{}k: {n}", size >> 10);
}
