//! Loopback end-to-end throughput: counts the messages of a stream, no output per event.
//!
//!     cargo run --release -p eventsource-core --example e2e_count -- URL N [push|pull]
//!
//! Prints the time from construction to the N-th message, events/s and MB/s of data.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use eventsource_core::{Event, EventSource, Options, Recv};

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: e2e_count URL N [push|pull]");
    let n: u64 = args.next().and_then(|s| s.parse().ok()).expect("N");
    let mode = args.next().unwrap_or_else(|| "push".into());
    let start = Instant::now();
    let mut bytes = 0u64;
    if mode == "push" {
        let (tx, rx) = mpsc::channel();
        let mut seen = 0u64;
        let mut total = 0u64;
        let _es = EventSource::with_handler(&url, Options::default(), move |e: Event| {
            if let Event::Message(m) = e {
                seen += 1;
                total += m.data.as_str().len() as u64;
                if seen == n {
                    let _ = tx.send(total);
                }
            }
        })
        .unwrap();
        bytes = rx.recv_timeout(Duration::from_secs(120)).expect("timed out");
    } else {
        let es = EventSource::with_options(&url, Options::default()).unwrap();
        let mut seen = 0u64;
        let mut buf = Vec::with_capacity(4096);
        while seen < n {
            if let Recv::Event(e) = es.recv_timeout(Some(Duration::from_secs(60))) {
                buf.push(e);
            }
            es.try_recv_many(&mut buf, 4096);
            for e in buf.drain(..) {
                if let Event::Message(m) = e {
                    seen += 1;
                    bytes += m.data.as_str().len() as u64;
                }
            }
        }
    }
    let t = start.elapsed().as_secs_f64();
    println!(
        "{mode}: {n} events in {t:.3} s = {:.2} M events/s, {:.0} MB/s of data",
        n as f64 / t / 1e6,
        bytes as f64 / t / 1e6
    );
}
