//! Production faults, served by the testserver's fault routes, and what the user of a source
//! sees for each: the error event's kind and readyState, whether and how fast it reconnects,
//! and that no corrupted, partial or duplicated event is ever dispatched. Every case runs on
//! both transports (and the HTTP/2-specific ones on h2c too).

mod common;

use std::time::{Duration, Instant};

use common::{log, server, token};
use eventsource_core::{ErrorKind, Event, EventSource, Options, ReadyState, Recv, TransportKind};

/// Quick reconnections without backoff growth, on `base`'s transport.
fn quick(base: &Options) -> Options {
    base.clone().retry(Duration::from_millis(50)).backoff(1.0)
}

fn open(path: &str, o: Options) -> EventSource {
    EventSource::with_options(&server().url(path), o).unwrap()
}

/// Events until the source is finished (CLOSED and drained), `n` events, or `within` elapses.
fn until_closed(es: &EventSource, n: usize, within: Duration) -> Vec<Event> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        match es.recv_timeout(Some(deadline.saturating_duration_since(Instant::now()))) {
            Recv::Event(e) => out.push(e),
            Recv::Timeout | Recv::Closed => break,
        }
    }
    out
}

/// `open`, `message:DATA:ID`, or `error(STATE,KIND)`.
fn describe(e: &Event) -> String {
    match e {
        Event::Open => "open".into(),
        Event::Message(m) => format!("{}:{}:{}", m.event_type, m.data, m.last_event_id),
        Event::Error(e) => format!("error({},{})", e.ready_state as u8, e.error.kind()),
    }
}

fn trace(evs: &[Event]) -> Vec<String> {
    evs.iter().map(describe).collect()
}

fn errors(evs: &[Event]) -> Vec<&eventsource_core::ErrorEvent> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Error(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Waits (at most 5 s) until the server has seen every request under `t` end.
fn all_done(t: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if log(t).iter().all(|e| e.done_ms.is_some()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Settings no other test uses, so that the source gets a transport of its own: over HTTP/2
/// sources with the same settings share one connection, and a RST ends every stream on it.
fn own_connection(o: Options, n: u64) -> Options {
    o.connect_timeout(Some(Duration::from_millis(9_000 + n)))
}

// ---------------------------------------------------------------------------------------------

/// A TCP RST inside an event and inside a UTF-8 sequence: the cut event is not dispatched (no
/// `caf`, no U+FFFD), the reset is a network error, the next connection resumes.
fn reset_mid_event_and_mid_utf8(base: Options) {
    let t = token();
    let es = open(&format!("scenario/reset?t={t}&retry=50"), own_connection(quick(&base), 1));
    let evs = until_closed(&es, 20, Duration::from_secs(10));
    assert_eq!(
        trace(&evs),
        [
            "open",
            "message:one:",
            "error(0,network)",
            "open",
            "message:two:",
            "error(0,stream_ended)",
            "error(2,http_status)"
        ]
    );
    let errs = errors(&evs);
    assert!(errs[0].error.message().contains("reset"), "{}", errs[0].error.message());
    assert_eq!(errs[2].error.status(), Some(204));
    assert_eq!(es.ready_state(), ReadyState::Closed);
}

/// A server that accepts and never answers: each attempt fails as a timeout when the response
/// timeout (30 s by default) or a shorter read timeout runs out, and the source retries, never
/// opening. With neither, the source waits (it cannot tell a slow server from a dead one).
/// `close()` lets go of the socket.
fn no_answer_times_out_and_retries(base: Options) {
    for (o, name) in [
        (quick(&base).response_timeout(Some(Duration::from_millis(300))), "response_timeout"),
        (quick(&base).read_timeout(Some(Duration::from_millis(300))), "read_timeout"),
    ] {
        let t = token();
        let es = open(&format!("scenario/no-answer?t={t}"), o);
        let evs = until_closed(&es, 3, Duration::from_secs(10));
        assert_eq!(trace(&evs), ["error(0,timeout)", "error(0,timeout)", "error(0,timeout)"]);
        let msg = errors(&evs)[0].error.message().to_owned();
        assert!(msg.contains("no response headers") && msg.contains(name), "{msg}");
        assert_eq!(es.ready_state(), ReadyState::Connecting);
        es.close();
        assert!(log(&t).len() >= 3);
        assert!(all_done(&t), "a request stayed open after close()");
    }
    assert_eq!(Options::default().response_timeout, Some(Duration::from_secs(30)));

    // With neither: still CONNECTING, no event, one request; close() ends it.
    let t = token();
    let es = open(&format!("scenario/no-answer?t={t}"), quick(&base).response_timeout(None));
    let deadline = Instant::now() + Duration::from_secs(5);
    while log(&t).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(matches!(es.recv_timeout(Some(Duration::from_millis(700))), Recv::Timeout));
    assert_eq!(es.ready_state(), ReadyState::Connecting);
    assert_eq!(log(&t).len(), 1);
    es.close();
    assert!(all_done(&t), "the request stayed open after close()");
}

/// Headers, then nothing: the read timeout fires after the open, the source reconnects.
fn headers_then_stall_fires_the_read_timeout(base: Options) {
    let t = token();
    let o = quick(&base).read_timeout(Some(Duration::from_millis(300)));
    let es = open(&format!("scenario/silence?t={t}&ms=20000"), o);
    let start = Instant::now();
    let evs = until_closed(&es, 10, Duration::from_secs(10));
    // The second connection is refused with 204 (one per token), which closes the source.
    assert_eq!(trace(&evs), ["open", "error(0,timeout)", "error(2,http_status)"]);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the timeout fired late: {:?}",
        start.elapsed()
    );
    assert!(errors(&evs)[0].error.message().contains("read timeout"));
    assert_eq!(log(&t).len(), 2);
    assert!(all_done(&t), "the stalled request stayed open");
}

/// A line or an event that never ends: `event_too_large` closes the source, no reconnection.
fn endless_line_and_event_hit_max_event_size(base: Options) {
    for name in ["endless-line", "endless-event"] {
        let t = token();
        let es = open(&format!("scenario/{name}?t={t}"), quick(&base).max_event_size(64 << 10));
        let evs = until_closed(&es, 10, Duration::from_secs(20));
        assert_eq!(trace(&evs), ["open", "error(2,event_too_large)"], "{name}");
        let msg = errors(&evs)[0].error.message().to_owned();
        assert!(msg.contains("max_event_size"), "{name}: {msg}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(log(&t).len(), 1, "{name}: reconnected after a fatal error");
        assert!(all_done(&t), "{name}: the endless response stayed open");
    }
}

/// A redirect to itself forever: cut after `max_redirects`, fatal, nothing more requested.
fn redirect_loop_is_too_many_redirects(base: Options) {
    for (code, max) in [(302, None), (307, Some(3)), (301, Some(0)), (308, Some(1))] {
        let t = token();
        let mut o = quick(&base);
        if let Some(max) = max {
            o = o.max_redirects(max);
        }
        let es = open(&format!("scenario/redirect-loop?t={t}&code={code}"), o);
        let evs = until_closed(&es, 10, Duration::from_secs(10));
        assert_eq!(trace(&evs), ["error(2,too_many_redirects)"], "{code}");
        let e = errors(&evs)[0];
        let msg = e.error.message();
        assert!(
            msg.contains("(the last one: HTTP 3") && msg.contains("/scenario/redirect-loop"),
            "{msg}"
        );
        std::thread::sleep(Duration::from_millis(200));
        // The first request and `max` redirects followed (default 10).
        assert_eq!(log(&t).len(), max.unwrap_or(10) + 1, "{code} {max:?}");
    }
}

/// `Content-Length` larger than the body, then the connection closes: the complete event is
/// delivered once, the short body is a network error, and the source reconnects.
fn lying_content_length_is_a_network_error(base: Options) {
    let t = token();
    let es = open(&format!("scenario/short-body?t={t}&retry=50"), quick(&base));
    let evs = until_closed(&es, 10, Duration::from_secs(10));
    assert_eq!(trace(&evs), ["open", "message:short:", "error(0,network)", "error(2,http_status)"]);
    assert_eq!(log(&t).len(), 2);
}

/// `retry: 0` and a body that ends at once, on every connection: the source keeps
/// reconnecting (each end is `stream_ended`, CONNECTING) at a bounded rate.
fn instant_closes_keep_the_request_rate_bounded(base: Options) {
    for (o, most) in [(base.clone(), 12), (base.clone().backoff(1.0), 40)] {
        let t = token();
        let es = open(&format!("scenario/instant-close?t={t}&retry=0"), o);
        let window = Duration::from_secs(3);
        let evs = until_closed(&es, usize::MAX, window);
        es.close();
        let n = log(&t).len();
        // Default backoff: 0, 0, 0.1, 0.3, 0.7, 1.5 s (+ jitter) → about 6 in 3 s. Backoff
        // 1.0: the 100 ms floor alone → about 30.
        assert!((3..=most).contains(&n), "{n} requests in {window:?}");
        let tr = trace(&evs);
        assert!(
            tr.chunks(2)
                .all(|p| p[0] == "open" && p.get(1).is_none_or(|e| e == "error(0,stream_ended)")),
            "{tr:?}"
        );
    }
}

/// A flood of tiny events, one HTTP write each, and then all in one write: every event, in
/// order, nothing else.
fn tiny_event_flood_is_complete_and_in_order(base: Options) {
    const N: u64 = 20_000;
    for path in
        [format!("stream?count={N}&size=1&chunk=event&id=1"), format!("scenario/many?count={N}")]
    {
        let es = open(&path, quick(&base).reconnect(false));
        let mut next = 1;
        let mut seen_open = false;
        loop {
            match es.recv_timeout(Some(Duration::from_secs(20))) {
                Recv::Event(Event::Open) if !seen_open && next == 1 => seen_open = true,
                Recv::Event(Event::Message(m)) => {
                    assert_eq!(m.last_event_id.as_str(), next.to_string(), "{path}");
                    next += 1;
                }
                Recv::Event(Event::Error(e)) => {
                    assert_eq!(
                        (e.ready_state, e.error.kind()),
                        (ReadyState::Closed, ErrorKind::StreamEnded),
                        "{path}: {}",
                        e.error.message()
                    );
                    break;
                }
                other => panic!("{path}: after {} events: {other:?}", next - 1),
            }
        }
        assert_eq!(next - 1, N, "{path}");
        assert!(matches!(es.recv_timeout(Some(Duration::from_secs(5))), Recv::Closed));
    }
}

/// A consumer that stops reading while a server floods tiny events, one write each: the source
/// stops reading its stream when its queue is full, and when the consumer comes back every
/// event is there, in order, with no error. (Over HTTP/2 the unread DATA frames wait in h2's
/// buffers, where its small-frame budget must not take them for an attack.)
fn a_consumer_that_pauses_loses_nothing(base: Options) {
    const N: u64 = 100_000;
    let path = format!("stream?count={N}&size=1&chunk=event&id=1");
    let es = open(&path, own_connection(quick(&base).reconnect(false), 3));
    assert!(matches!(es.recv_timeout(Some(Duration::from_secs(10))), Recv::Event(Event::Open)));
    std::thread::sleep(Duration::from_secs(2));
    let mut next = 1;
    loop {
        match es.recv_timeout(Some(Duration::from_secs(20))) {
            Recv::Event(Event::Message(m)) => {
                assert_eq!(m.last_event_id.as_str(), next.to_string());
                next += 1;
            }
            Recv::Event(Event::Error(e)) => {
                assert_eq!(e.error.kind(), ErrorKind::StreamEnded, "after {next}: {}", e.error);
                break;
            }
            other => panic!("after {} events: {other:?}", next - 1),
        }
    }
    assert_eq!(next - 1, N);
}

/// Each case on each transport: `default` (reqwest, HTTP/1.1), `lean`, and `h2c` (reqwest,
/// HTTP/2 with prior knowledge) where the fault looks different over HTTP/2.
macro_rules! cases {
    ($transport:ident = $base:expr; $($name:ident),* $(,)?) => {
        mod $transport {
            use super::*;
            $(
                #[test]
                fn $name() {
                    super::$name($base)
                }
            )*
        }
    };
}

cases!(default = Options::default().transport(TransportKind::Default);
    reset_mid_event_and_mid_utf8,
    no_answer_times_out_and_retries,
    headers_then_stall_fires_the_read_timeout,
    endless_line_and_event_hit_max_event_size,
    redirect_loop_is_too_many_redirects,
    lying_content_length_is_a_network_error,
    instant_closes_keep_the_request_rate_bounded,
    a_consumer_that_pauses_loses_nothing,
    tiny_event_flood_is_complete_and_in_order,
);

cases!(lean = Options::default().transport(TransportKind::Lean);
    reset_mid_event_and_mid_utf8,
    no_answer_times_out_and_retries,
    headers_then_stall_fires_the_read_timeout,
    endless_line_and_event_hit_max_event_size,
    redirect_loop_is_too_many_redirects,
    lying_content_length_is_a_network_error,
    instant_closes_keep_the_request_rate_bounded,
    a_consumer_that_pauses_loses_nothing,
    tiny_event_flood_is_complete_and_in_order,
);

cases!(h2c = Options::default().transport(TransportKind::Default).http2_prior_knowledge(true);
    reset_mid_event_and_mid_utf8,
    headers_then_stall_fires_the_read_timeout,
    lying_content_length_is_a_network_error,
    instant_closes_keep_the_request_rate_bounded,
    a_consumer_that_pauses_loses_nothing,
    tiny_event_flood_is_complete_and_in_order,
);

/// HTTP/2: a RST ends the whole connection, so a source whose stream merely shared it sees a
/// network error too, and reconnects.
#[test]
fn h2_reset_fails_every_stream_on_the_connection_and_each_reconnects() {
    let o = own_connection(quick(&Options::default()).http2_prior_knowledge(true), 2);
    let t = token();
    let held = open(
        &format!("script?t={t}&c1=data%3A%20a%0A%0A&hold1=1&c2=data%3A%20a2%0A%0A&hold2=1"),
        o.clone(),
    );
    assert_eq!(trace(&until_closed(&held, 2, Duration::from_secs(10))), ["open", "message:a:"]);
    let r = token();
    let reset = open(&format!("scenario/reset?t={r}&retry=50"), o);
    assert_eq!(
        trace(&until_closed(&reset, 3, Duration::from_secs(10))),
        ["open", "message:one:", "error(0,network)"]
    );
    assert_eq!(
        trace(&until_closed(&held, 3, Duration::from_secs(10))),
        ["error(0,network)", "open", "message:a2:"]
    );
    let (a, b) = (&log(&t)[0], &log(&r)[0]);
    assert_eq!((a.version.as_str(), a.conn), ("HTTP/2.0", b.conn), "one shared connection");
}

/// The long form of the `retry: 0` storm, for `make soak`: 50 sources per configuration
/// (each transport, with the default backoff and with backoff 1.0) against instant closes,
/// all at once for `SOAK_STORM_SECS` (default 60) seconds; prints the request rates.
#[test]
#[ignore = "long form (a minute): make soak"]
fn soak_retry_zero_storm() {
    const SOURCES: usize = 50;
    let secs: u64 =
        std::env::var("SOAK_STORM_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let mut runs = Vec::new();
    for kind in [TransportKind::Default, TransportKind::Lean] {
        for backoff in [2.0, 1.0] {
            let t = token();
            let o = Options::default().transport(kind).backoff(backoff);
            let url = server().url(&format!("scenario/instant-close?t={t}&retry=0"));
            let sources: Vec<_> = (0..SOURCES)
                .map(|_| EventSource::with_handler(&url, o.clone(), |_e: Event| {}).unwrap())
                .collect();
            runs.push((kind, backoff, t, sources));
        }
    }
    std::thread::sleep(Duration::from_secs(secs));
    for (kind, backoff, t, sources) in runs {
        for es in &sources {
            es.close();
        }
        let requests = log(&t).len();
        let per_source = requests as f64 / SOURCES as f64 / secs as f64;
        println!(
            "SOAK {{\"test\":\"storm\",\"transport\":\"{}\",\"backoff\":{backoff},\"sources\":{SOURCES},\
             \"secs\":{secs},\"requests\":{requests},\"per_second\":{:.1},\"per_source_per_second\":{per_source:.3}}}",
            kind.as_str(),
            requests as f64 / secs as f64,
        );
        // The most a source can make: its delays without jitter (which only adds), from
        // `retry: 0`, then the 100 ms floor doubling to the 30 s cap (backoff 1.0: the floor).
        let (mut at, mut delay, mut most) = (0.0, 0.0, 1.0);
        while at + delay <= secs as f64 {
            at += delay;
            most += 1.0;
            delay = if delay == 0.0 { 0.1 } else { (delay * backoff).min(30.0) };
        }
        let most = most / secs as f64;
        assert!(
            per_source <= most,
            "{} backoff {backoff}: {per_source:.2} requests/s per source, at most {most:.2} expected",
            kind.as_str()
        );
    }
}
