//! Exactly once, in order, across many dropped connections: the testserver's `/resume` route
//! numbers its events, resumes after the request's `Last-Event-ID`, and cuts connections at
//! seeded points (between events, inside a line, inside a UTF-8 sequence; abrupt closes, RSTs
//! and clean ends). The source must deliver every id once, in order, with its exact data, and
//! send as `Last-Event-ID` exactly the id of the last event it dispatched.
//!
//! The short forms run in `cargo test` on both transports; the long forms (100,000 events,
//! 1,000 drops) are `#[ignore]`d and run by `make soak`, which reads their `SOAK {...}` line.

mod common;

use std::time::{Duration, Instant};

use common::{header, log, server, token};
use eventsource_core::{ErrorKind, Event, EventSource, Options, ReadyState, Recv, TransportKind};

/// What a run saw.
#[derive(Default)]
struct Tally {
    delivered: u64,
    duplicates: u64,
    /// Ids never delivered.
    losses: u64,
    /// Deliveries of an id other than the next one (a duplicate or a jump).
    out_of_order: u64,
    bad_data: u64,
    opens: u64,
    /// Reconnections (error events with CONNECTING), by kind.
    reconnects: Vec<(ErrorKind, u64)>,
    /// The last event: CLOSED by the server's 204.
    end: Option<String>,
    /// `Last-Event-ID` of each request, as the server received it.
    sent_ids: Vec<Option<String>>,
    /// The last id delivered before each connection attempt.
    expected_ids: Vec<Option<String>>,
    secs: f64,
}

fn run(kind: TransportKind, count: u64, drops: u64, seed: u64) -> Tally {
    let t = token();
    let url = server().url(&format!("resume?t={t}&count={count}&drops={drops}&seed={seed}"));
    // retry: 0 comes from the stream; backoff 1.0 keeps consecutive reconnections at the
    // 100 ms floor, so a run of many short connections is not spent waiting.
    let o = Options::default().transport(kind).backoff(1.0);
    let es = EventSource::with_options(&url, o).unwrap();
    let start = Instant::now();
    let mut tally = Tally { expected_ids: vec![None], ..Tally::default() };
    let mut seen = vec![false; count as usize + 1];
    let mut next = 1u64;
    let mut last: Option<String> = None;
    let quiet = Duration::from_secs(30);
    loop {
        let ev = match es.recv_timeout(Some(quiet)) {
            Recv::Event(ev) => ev,
            Recv::Timeout => panic!("nothing for {quiet:?} after id {}", next - 1),
            Recv::Closed => break,
        };
        match ev {
            Event::Open => tally.opens += 1,
            Event::Message(m) => {
                tally.delivered += 1;
                let id: u64 = m.last_event_id.as_str().parse().expect("a numeric id");
                if id != next {
                    tally.out_of_order += 1;
                }
                match seen.get_mut(id as usize) {
                    Some(s) if *s => tally.duplicates += 1,
                    Some(s) => *s = true,
                    None => tally.out_of_order += 1,
                }
                if m.data.as_str() != format!("{id} \u{e9}\u{1F600}")
                    || m.event_type.as_str() != "message"
                {
                    tally.bad_data += 1;
                }
                next = id + 1;
                last = Some(id.to_string());
            }
            Event::Error(e) if e.ready_state == ReadyState::Connecting => {
                let k = e.error.kind();
                match tally.reconnects.iter_mut().find(|(kk, _)| *kk == k) {
                    Some((_, n)) => *n += 1,
                    None => tally.reconnects.push((k, 1)),
                }
                tally.expected_ids.push(last.clone());
            }
            Event::Error(e) => {
                tally.end = Some(format!("{} {:?}", e.error.kind(), e.error.status()));
            }
        }
    }
    tally.secs = start.elapsed().as_secs_f64();
    tally.losses = seen[1..].iter().filter(|s| !**s).count() as u64;
    tally.sent_ids = log(&t).iter().map(|e| header(e, "last-event-id")).collect();
    tally
}

fn check(kind: TransportKind, count: u64, drops: u64, seed: u64) -> Tally {
    let tally = run(kind, count, drops, seed);
    let first_wrong_id = tally.sent_ids.iter().zip(&tally.expected_ids).position(|(a, b)| a != b);
    let ctx = format!(
        "{} count={count} drops={drops} seed={seed}: delivered {}, duplicates {}, losses {}, \
         out of order {}, bad data {}, opens {}, reconnects {:?}, end {:?}, requests {}, \
         first wrong Last-Event-ID at request {:?}",
        kind.as_str(),
        tally.delivered,
        tally.duplicates,
        tally.losses,
        tally.out_of_order,
        tally.bad_data,
        tally.opens,
        tally.reconnects,
        tally.end,
        tally.sent_ids.len(),
        first_wrong_id.map(|i| (i + 1, &tally.sent_ids[i], &tally.expected_ids[i])),
    );
    assert_eq!(
        (tally.duplicates, tally.losses, tally.out_of_order, tally.bad_data),
        (0, 0, 0, 0),
        "{ctx}"
    );
    assert_eq!(tally.delivered, count, "{ctx}");
    // Every connection opened; each of the `drops` cut ones and the last (a clean end) was
    // followed by a reconnection; the server's 204 then closed the source.
    assert_eq!(tally.opens, drops + 1, "{ctx}");
    let reconnects: u64 = tally.reconnects.iter().map(|(_, n)| n).sum();
    assert_eq!(reconnects, drops + 1, "{ctx}");
    assert!(
        tally
            .reconnects
            .iter()
            .all(|(k, _)| matches!(k, ErrorKind::Network | ErrorKind::StreamEnded)),
        "{ctx}"
    );
    assert_eq!(tally.end.as_deref(), Some("http_status Some(204)"), "{ctx}");
    assert_eq!(
        tally.sent_ids, tally.expected_ids,
        "the Last-Event-ID sent is the last id dispatched: {ctx}"
    );
    tally
}

/// The line `make soak` collects.
fn report(kind: TransportKind, count: u64, drops: u64, seed: u64) {
    let t = check(kind, count, drops, seed);
    println!(
        "SOAK {{\"test\":\"exactly_once\",\"transport\":\"{}\",\"events\":{count},\"drops\":{drops},\"seed\":{seed},\
         \"delivered\":{},\"duplicates\":{},\"losses\":{},\"connections\":{},\"secs\":{:.1}}}",
        kind.as_str(),
        t.delivered,
        t.duplicates,
        t.losses,
        t.opens,
        t.secs
    );
}

#[test]
fn default_transport_5000_events_50_drops() {
    check(TransportKind::Default, 5000, 50, 11);
}

#[test]
fn lean_transport_5000_events_50_drops() {
    check(TransportKind::Lean, 5000, 50, 12);
}

#[test]
#[ignore = "long form (about two minutes): make soak"]
fn soak_default_transport_100000_events_1000_drops() {
    report(TransportKind::Default, 100_000, 1000, 21);
}

#[test]
#[ignore = "long form (about two minutes): make soak"]
fn soak_lean_transport_100000_events_1000_drops() {
    report(TransportKind::Lean, 100_000, 1000, 22);
}
