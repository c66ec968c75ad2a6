//! The smallest useful program: print the first five messages of a stream, then close.
//!
//!     cargo run -p examples --bin hello -- http://127.0.0.1:8080/stream
//!
//! No async runtime needed: the pull API can block the calling thread.

use eventsource_core::{Event, EventSource, Recv};

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: hello URL");
        std::process::exit(64);
    });
    let es = match EventSource::new(&url) {
        Ok(es) => es,
        Err(e) => {
            eprintln!("hello: {e}");
            std::process::exit(64);
        }
    };
    let mut seen = 0;
    while seen < 5 {
        match es.recv_timeout(None) {
            Recv::Event(Event::Open) => println!("connected to {}", es.url()),
            Recv::Event(Event::Message(m)) => {
                seen += 1;
                println!("{}: {}", m.event_type, m.data);
            }
            Recv::Event(Event::Error(e)) => eprintln!("error: {}", e.error),
            Recv::Timeout => {}
            Recv::Closed => break,
        }
    }
    es.close();
}
