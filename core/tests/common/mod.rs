//! What the network test files share: one testserver per test binary, unique log tokens,
//! `/script` URLs, and compact event traces.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use eventsource_core::{Event, EventSource, Options, Recv, TransportKind};
use testserver::{Entry, Server};

pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

/// A token no other test of this process uses, for the server's request log.
pub fn token() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Percent-encodes every byte that is not unreserved (for `/script` bodies and nested URLs).
pub fn pct(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `/script` URL: `conns[k]` is the body of connection k+1; `extra` is appended verbatim.
pub fn script(t: &str, conns: &[&[u8]], extra: &str) -> String {
    let mut q = format!("script?t={t}");
    for (i, c) in conns.iter().enumerate() {
        q.push_str(&format!("&c{}={}", i + 1, pct(c)));
    }
    q.push_str(extra);
    server().url(&q)
}

/// The requests the server recorded under `t`, in arrival order.
pub fn log(t: &str) -> Vec<Entry> {
    server().requests(t)
}

/// A request header as the server received it (names are lowercase).
pub fn header(e: &Entry, name: &str) -> Option<String> {
    e.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// The transport the behaviour tests run on: `ES_TEST_TRANSPORT=lean` runs them on the lean
/// transport (`make test` runs both).
pub fn transport() -> TransportKind {
    match std::env::var("ES_TEST_TRANSPORT") {
        Ok(v) => v.parse().expect("ES_TEST_TRANSPORT is \"default\" or \"lean\""),
        Err(_) => TransportKind::Default,
    }
}

/// Default options on the transport under test.
pub fn opts() -> Options {
    Options::default().transport(transport())
}

/// Short reconnection delays without backoff, so reconnection tests run fast.
pub fn fast() -> Options {
    opts().retry(Duration::from_millis(50)).backoff(1.0)
}

/// A compact trace item: `open`, `TYPE:DATA:LASTEVENTID`, or `error(READYSTATE)`.
pub fn describe(e: &Event) -> String {
    match e {
        Event::Open => "open".into(),
        Event::Message(m) => format!("{}:{}:{}", m.event_type, m.data, m.last_event_id),
        Event::Error(e) => format!("error({})", e.ready_state as u8),
    }
}

/// Receives events until `n` are seen, the source finishes, or `within` elapses.
pub fn take(es: &EventSource, n: usize, within: Duration) -> Vec<Event> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match es.recv_timeout(Some(left)) {
            Recv::Event(e) => out.push(e),
            Recv::Timeout | Recv::Closed => break,
        }
    }
    out
}

/// `take` (within 10 s), described.
pub fn trace(es: &EventSource, n: usize) -> Vec<String> {
    take(es, n, Duration::from_secs(10)).iter().map(describe).collect()
}
