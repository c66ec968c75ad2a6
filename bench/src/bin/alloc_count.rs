//! Counts heap allocations per dispatched event, for each corpus and chunk size, with a
//! counting global allocator. Fails (exit 1) if ours needs more than one per event (plus a
//! constant for buffers that grow once).
//!
//! `cargo run --profile bench -p eventsource-bench --bin alloc_count`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use eventsource_bench::*;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One-time allocations of a run (the parser's reused buffers growing to size, the executor):
/// not per event.
const SETUP_ALLOCS: usize = 32;

fn count(f: impl FnOnce() -> usize) -> (usize, usize) {
    let before = ALLOCS.load(Relaxed);
    let events = f();
    (ALLOCS.load(Relaxed) - before, events)
}

fn main() {
    let mut ok = true;
    println!(
        "| corpus | chunk | events | ours allocs/event (total) | sse-stream allocs/event | eventsource-stream allocs/event |"
    );
    println!("|---|---|---|---|---|---|");
    for corpus in corpora() {
        for size in CHUNK_SIZES {
            let chunks = chunk(&corpus.bytes, size);
            let (ours, n) = count(|| run_ours(&chunks));
            let (sse, _) = count(|| run_sse_stream(&chunks));
            let (es, _) = count(|| run_eventsource_stream(&chunks));
            let per = |a: usize| a as f64 / n as f64;
            println!(
                "| {} | {} KiB | {} | {:.4} ({}) | {:.2} | {:.2} |",
                corpus.name,
                size >> 10,
                n,
                per(ours),
                ours,
                per(sse),
                per(es)
            );
            if ours > n + SETUP_ALLOCS {
                ok = false;
            }
        }
    }
    if !ok {
        eprintln!("FAIL: more than one allocation per event (plus {SETUP_ALLOCS} for setup)");
        std::process::exit(1);
    }
}
