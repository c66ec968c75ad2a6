//! Leaks over many create/close cycles, on both transports: the live heap (counted by this
//! binary's allocator) and the resident set size must come back to where they were after a
//! warm-up, however a source ends — closed after its first event, closed while it connects,
//! dropped from a handler source without `close()`, dropped while reconnecting.
//!
//! One test in this binary, so that nothing else allocates while it measures. The long form
//! (100,000 cycles per transport) is `#[ignore]`d and run by `make soak`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::server;
use eventsource_core::{Event, EventSource, Options, Recv, TransportKind};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Resident set size in bytes (Linux `/proc/self/statm`).
fn rss() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: i64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64
}

/// Waits for the next event of a pull source (at most 10 s).
fn next(es: &EventSource) -> Event {
    match es.recv_timeout(Some(Duration::from_secs(10))) {
        Recv::Event(e) => e,
        other => panic!("no event: {other:?}"),
    }
}

/// One create/close cycle; `i` picks how the source ends.
fn cycle(i: usize, o: &Options, held: &str, ending: &str) {
    match i % 4 {
        // Closed after its first event.
        0 => {
            let es = EventSource::with_options(held, o.clone()).unwrap();
            assert!(matches!(next(&es), Event::Open));
            assert!(matches!(next(&es), Event::Message(_)));
            es.close();
        }
        // Closed (and dropped) while it connects.
        1 => {
            let es = EventSource::with_options(held, o.clone()).unwrap();
            es.close();
        }
        // A handler source dropped without close() after its first message.
        2 => {
            let (tx, rx) = mpsc::sync_channel(4);
            let es = EventSource::with_handler(held, o.clone(), move |e: Event| {
                if let Event::Message(_) = e {
                    let _ = tx.try_send(());
                }
            })
            .unwrap();
            rx.recv_timeout(Duration::from_secs(10)).expect("a message");
            drop(es);
        }
        // Dropped while reconnecting to a stream that ends after one event.
        _ => {
            let es = EventSource::with_options(ending, o.clone()).unwrap();
            assert!(matches!(next(&es), Event::Open));
            assert!(matches!(next(&es), Event::Message(_)));
            assert!(matches!(next(&es), Event::Error(_)));
            drop(es);
        }
    }
}

struct Figures {
    cycles: usize,
    live_before: isize,
    live_after: isize,
    rss_before: i64,
    rss_after: i64,
    secs: f64,
}

fn run(kind: TransportKind, warmup: usize, cycles: usize) -> Figures {
    let held = server().url("stream?count=1&size=16&hold=1");
    let ending = server().url("stream?count=1&size=16&retry=0");
    let o = Options::default().transport(kind).retry(Duration::from_millis(10));
    for i in 0..warmup {
        cycle(i, &o, &held, &ending);
    }
    settle();
    let (live_before, rss_before) = (LIVE.load(Ordering::Relaxed), rss());
    let start = Instant::now();
    for i in 0..cycles {
        cycle(i, &o, &held, &ending);
    }
    let secs = start.elapsed().as_secs_f64();
    settle();
    // Connections closed last may still be finishing (on a loaded machine): give the live heap
    // a few seconds to come back. A leak does not.
    let deadline = Instant::now() + Duration::from_secs(5);
    while LIVE.load(Ordering::Relaxed) > live_before + (64 << 10) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (live_after, rss_after) = (LIVE.load(Ordering::Relaxed), rss());
    Figures { cycles, live_before, live_after, rss_before, rss_after, secs }
}

/// Lets the server and the runtime finish with the connections just dropped.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

fn check(kind: TransportKind, f: &Figures) {
    let mib = |b: i64| b as f64 / (1 << 20) as f64;
    let live = (f.live_after - f.live_before) as i64;
    let rss = f.rss_after - f.rss_before;
    let ctx = format!(
        "{}: {} cycles in {:.1} s; live heap {:.2} → {:.2} MiB ({:+} bytes), RSS {:.1} → {:.1} MiB",
        kind.as_str(),
        f.cycles,
        f.secs,
        mib(f.live_before as i64),
        mib(f.live_after as i64),
        live,
        mib(f.rss_before),
        mib(f.rss_after),
    );
    eprintln!("{ctx}");
    // A leak of 100 bytes a cycle is 0.5 MB over 5,000 cycles: the live heap must stay within
    // 256 KiB (a few buffers in flight), whatever the number of cycles.
    assert!(live < 256 << 10, "the live heap grew: {ctx}");
    // RSS also carries allocator caching and fragmentation: a generous bound.
    assert!(rss < 16 << 20, "RSS grew: {ctx}");
}

#[test]
fn create_close_cycles_leave_memory_flat() {
    for kind in [TransportKind::Default, TransportKind::Lean] {
        let f = run(kind, 500, 5000);
        check(kind, &f);
    }
}

#[test]
#[ignore = "long form (100,000 cycles per transport): make soak"]
fn soak_create_close_cycles_leave_memory_flat() {
    for kind in [TransportKind::Default, TransportKind::Lean] {
        let f = run(kind, 2000, 100_000);
        println!(
            "SOAK {{\"test\":\"leaks\",\"transport\":\"{}\",\"cycles\":{},\"secs\":{:.1},\
             \"live_before\":{},\"live_after\":{},\"rss_before\":{},\"rss_after\":{}}}",
            kind.as_str(),
            f.cycles,
            f.secs,
            f.live_before,
            f.live_after,
            f.rss_before,
            f.rss_after
        );
        check(kind, &f);
    }
}
