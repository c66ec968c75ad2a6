//! `close()` and drop racing with delivery, from many threads, on both transports: sources
//! flooded with tiny events are closed by several threads at once, dropped by another, closed
//! from inside their own handler; pull consumers blocked in a receive see their source closed
//! under them. After any `close()` returns no handler call runs, nothing deadlocks or panics,
//! and a blocked receive returns `Closed` promptly.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::server;
use eventsource_core::{Event, EventSource, Options, Recv, TransportKind};

/// A small xorshift for the delays, seeded per round so a failure can be replayed.
fn jitter(seed: u64) -> impl FnMut() -> Duration {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_micros(x % 3000)
    }
}

/// What a handler saw.
#[derive(Default)]
struct Seen {
    calls: AtomicU64,
    /// Calls that started after some `close()` had returned, or were still running when one
    /// returned.
    after_close: AtomicU64,
    closed: AtomicBool,
    /// A call is running.
    running: AtomicBool,
}

fn flood() -> String {
    server().url("stream?count=0&size=16&chunk=event&id=1")
}

/// Rounds of: four flooded handler sources; per source, three threads close it after a
/// random delay and a fourth drops its handle. Then nothing runs and nothing hangs.
fn close_and_drop_race_delivery_from_many_threads(kind: TransportKind, rounds: u64) {
    let o = Options::default().transport(kind);
    let mut delivering = 0;
    for round in 0..rounds {
        let mut next_delay = jitter(round + 1);
        let mut threads = Vec::new();
        let mut seen_all = Vec::new();
        for _ in 0..4 {
            let seen = Arc::new(Seen::default());
            let s = Arc::clone(&seen);
            let es = Arc::new(
                EventSource::with_handler(&flood(), o.clone(), move |e: Event| {
                    s.running.store(true, Ordering::SeqCst);
                    if s.closed.load(Ordering::SeqCst) {
                        s.after_close.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Event::Message(_) = e {
                        // Now and then a slow call: a wider window for close() to meet.
                        if s.calls.fetch_add(1, Ordering::Relaxed) % 32 == 0 {
                            std::thread::sleep(Duration::from_micros(300));
                        }
                    }
                    s.running.store(false, Ordering::SeqCst);
                })
                .unwrap(),
            );
            for closer in 0..4 {
                let (es, seen, delay) = (Arc::clone(&es), Arc::clone(&seen), next_delay());
                threads.push(std::thread::spawn(move || {
                    // Most rounds race with delivery; every fourth with the connection.
                    let until = Instant::now() + Duration::from_secs(5);
                    while round % 4 != 0
                        && seen.calls.load(Ordering::SeqCst) == 0
                        && Instant::now() < until
                    {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    std::thread::sleep(delay);
                    if closer == 3 {
                        drop(es); // the others still hold it: the source lives on
                    } else {
                        es.close();
                        seen.closed.store(true, Ordering::SeqCst);
                        if seen.running.load(Ordering::SeqCst) {
                            seen.after_close.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }));
            }
            seen_all.push(seen);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for t in threads {
            while !t.is_finished() {
                assert!(Instant::now() < deadline, "round {round}: a close() hung");
                std::thread::sleep(Duration::from_millis(1));
            }
            t.join().expect("no panic in a closing thread");
        }
        let counts: Vec<u64> = seen_all.iter().map(|s| s.calls.load(Ordering::SeqCst)).collect();
        std::thread::sleep(Duration::from_millis(20));
        for (i, s) in seen_all.iter().enumerate() {
            assert_eq!(
                s.after_close.load(Ordering::SeqCst),
                0,
                "round {round}: a call after close()"
            );
            assert_eq!(s.calls.load(Ordering::SeqCst), counts[i], "round {round}: calls went on");
        }
        if round % 4 != 0 {
            delivering += counts.iter().filter(|&&n| n > 0).count() as u64;
        }
    }
    // The race was with delivery, not with idle connections.
    let racing = rounds - rounds.div_ceil(4);
    assert!(delivering >= racing * 4 * 9 / 10, "{delivering} sources had events when closed");
}

/// A handler that closes its own source while other threads close and drop it.
fn close_from_inside_while_others_close(kind: TransportKind, rounds: u64) {
    let o = Options::default().transport(kind);
    for round in 0..rounds {
        let slot: Arc<OnceLock<Arc<EventSource>>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (s, c) = (Arc::clone(&slot), Arc::clone(&calls));
        let es = Arc::new(
            EventSource::with_handler(&flood(), o.clone(), move |e: Event| {
                if let Event::Message(_) = e
                    && c.fetch_add(1, Ordering::SeqCst) == (round % 5) as usize
                    && let Some(me) = s.get()
                {
                    me.close();
                }
            })
            .unwrap(),
        );
        let _ = slot.set(Arc::clone(&es));
        let mut next_delay = jitter(round + 1000);
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let (es, delay) = (Arc::clone(&es), next_delay());
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    if i == 0 {
                        drop(es);
                    } else {
                        es.close();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        // The handler holds the source through the slot: closing it lets it go.
        es.close();
        let n = calls.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(calls.load(Ordering::SeqCst), n, "round {round}: calls after close()");
    }
}

/// Pull consumers blocked in a receive while another thread closes their source.
fn blocked_receivers_see_close(kind: TransportKind, rounds: u64) {
    let o = Options::default().transport(kind);
    for round in 0..rounds {
        let url = if round % 2 == 0 { flood() } else { server().url("scenario/no-answer") };
        let es = Arc::new(EventSource::with_options(&url, o.clone()).unwrap());
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let es = Arc::clone(&es);
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    loop {
                        match es.recv_timeout(None) {
                            Recv::Event(_) => n += 1,
                            Recv::Closed => return n,
                            Recv::Timeout => unreachable!("no timeout was given"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(jitter(round + 2000)());
        es.close();
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in consumers {
            while !c.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: a receive stayed blocked after close()"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            c.join().expect("no panic in a consumer");
        }
    }
}

#[test]
fn default_close_and_drop_race_delivery_from_many_threads() {
    close_and_drop_race_delivery_from_many_threads(TransportKind::Default, 100);
}

#[test]
fn lean_close_and_drop_race_delivery_from_many_threads() {
    close_and_drop_race_delivery_from_many_threads(TransportKind::Lean, 100);
}

#[test]
fn default_close_from_inside_while_others_close() {
    close_from_inside_while_others_close(TransportKind::Default, 100);
}

#[test]
fn lean_close_from_inside_while_others_close() {
    close_from_inside_while_others_close(TransportKind::Lean, 100);
}

#[test]
fn default_blocked_receivers_see_close() {
    blocked_receivers_see_close(TransportKind::Default, 100);
}

#[test]
fn lean_blocked_receivers_see_close() {
    blocked_receivers_see_close(TransportKind::Lean, 100);
}
