//! `close()` from inside callbacks that close each other: two sources whose handlers, running
//! at the same time on the runtime's two workers, each close the other. Each `close()` waits for
//! the other source's in-flight callback, which is itself waiting in `close()`: this must not
//! deadlock (the API guarantee is kept for every callback that is not itself stuck in such a
//! cycle).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::server;
use eventsource_core::{Event, EventSource, Options, ReadyState};

/// Waits (boundedly) until `n` callers have arrived, so both handlers are inside their
/// callbacks at once when they call `close()`. Whether they met.
fn rendezvous(arrived: &AtomicUsize, n: usize) -> bool {
    arrived.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_millis(300);
    while arrived.load(Ordering::SeqCst) < n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

#[test]
fn handlers_closing_each_other_do_not_deadlock() {
    let mut met = 0;
    for round in 0..12 {
        let url = server().url("stream?count=1&hold=1");
        let slots: [Arc<OnceLock<Arc<EventSource>>>; 2] = Default::default();
        // Per handler: 0 no message yet, 1 closing the other source, 2 came back from that.
        let stage: Arc<[AtomicUsize; 2]> = Arc::default();
        let arrived = Arc::new(AtomicUsize::new(0));
        let both_met = Arc::new(AtomicUsize::new(0));
        let mut sources = Vec::new();
        for me in 0..2 {
            let other = Arc::clone(&slots[1 - me]);
            let (stage, arrived) = (Arc::clone(&stage), Arc::clone(&arrived));
            let both_met = Arc::clone(&both_met);
            let mut closed = false;
            let es = EventSource::with_handler(&url, Options::default(), move |e: Event| {
                if matches!(e, Event::Message(_)) && !closed {
                    closed = true;
                    stage[me].store(1, Ordering::SeqCst);
                    if rendezvous(&arrived, 2) {
                        both_met.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Some(other) = other.get() {
                        other.close();
                    }
                    stage[me].store(2, Ordering::SeqCst);
                }
            })
            .unwrap();
            sources.push(Arc::new(es));
        }
        for (slot, es) in slots.iter().zip(&sources) {
            let _ = slot.set(Arc::clone(es));
        }
        // Done when each handler came back from closing the other source, or its source was
        // closed before its message came (then it never runs).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let stages = [0, 1].map(|i| stage[i].load(Ordering::SeqCst));
            let done = (0..2).all(|i| {
                stages[i] == 2 || (stages[i] == 0 && sources[i].ready_state() == ReadyState::Closed)
            });
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: hung, handler stages {stages:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        met += usize::from(both_met.load(Ordering::SeqCst) == 2);
        for es in &sources {
            es.close();
        }
    }
    // The race was exercised: in some rounds both handlers were inside their callbacks at once.
    assert!(met > 0, "the two handlers never ran at the same time");
}
