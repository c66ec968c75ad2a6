//! `es-bench-rust URL COUNT`: the Rust-core side of the C benchmark (`make -C ffi-c bench`).
//! Receives COUNT message events from URL with `EventSource::with_handler` (the same push path
//! the C callbacks use) and prints `events=N bytes=B seconds=S events_per_s=R`.

use std::sync::mpsc;
use std::time::Instant;

use eventsource_core::{Event, EventSource, Options};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: es-bench-rust URL COUNT");
        std::process::exit(64);
    };
    let count: u64 = count.parse().unwrap_or_else(|_| {
        eprintln!("COUNT must be a number");
        std::process::exit(64);
    });
    let (tx, rx) = mpsc::channel();
    let mut seen = 0u64;
    let mut bytes = 0u64;
    let start = Instant::now();
    let handler = move |ev: Event| match ev {
        Event::Message(m) => {
            seen += 1;
            bytes += m.data.len() as u64;
            if seen == count {
                let _ = tx.send((seen, bytes));
            }
        }
        Event::Error(e) if seen < count => {
            eprintln!("error: {}", e.error.message());
        }
        _ => {}
    };
    let es = EventSource::with_handler(&url, Options::default(), handler).unwrap_or_else(|e| {
        eprintln!("{}", e.message());
        std::process::exit(64);
    });
    let (n, b) = rx.recv().expect("the handler reports the last event");
    let secs = start.elapsed().as_secs_f64();
    es.close();
    println!("events={n} bytes={b} seconds={secs:.4} events_per_s={:.0}", n as f64 / secs);
}
