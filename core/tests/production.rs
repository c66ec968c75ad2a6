//! Production behaviour beyond the spec, against the real testserver: the reconnection policy
//! (`reconnect`, `max_reconnects`, `retry_initial`, no re-sent POST), what the server said on
//! a fatal response (status, headers, body), the response headers on open, and the request's
//! defaults (`User-Agent`, a body's `Content-Type`, the method's case). Runs on the transport
//! of `ES_TEST_TRANSPORT` (both in `make test`).

mod common;

use std::time::Duration;

use common::*;
use eventsource_core::{ErrorKind, Event, EventSource, Options, ReadyState};

fn open(url: &str, o: Options) -> EventSource {
    EventSource::with_options(url, o).unwrap()
}

/// Events until the source finishes (or 10 s pass).
fn all(es: &EventSource) -> Vec<Event> {
    take(es, 1000, Duration::from_secs(10))
}

fn last_error(evs: &[Event]) -> &eventsource_core::ErrorEvent {
    match evs.last() {
        Some(Event::Error(e)) => e,
        other => panic!("the last event is not an error: {other:?}"),
    }
}

fn unreachable_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}/")
}

#[test]
fn a_post_stream_that_ends_is_requested_once() {
    let t = token();
    let url = server().url(&format!("llm?t={t}&tokens=3"));
    let es = open(&url, fast().method("POST").body(r#"{"stream":true}"#));
    let evs = all(&es);
    let tr: Vec<String> = evs.iter().map(describe).collect();
    assert_eq!(tr.len(), 6, "{tr:?}"); // open, 3 tokens, [DONE], error(2)
    assert_eq!((tr[0].as_str(), tr[5].as_str()), ("open", "error(2)"), "{tr:?}");
    let e = last_error(&evs);
    assert_eq!(e.error.kind(), ErrorKind::StreamEnded);
    assert!(e.error.message().contains("not sent again"), "{}", e.error.message());
    std::thread::sleep(Duration::from_millis(300));
    let reqs = log(&t);
    assert_eq!(reqs.len(), 1, "the POST was sent again");
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(header(&reqs[0], "content-type").as_deref(), Some("application/json"));
}

#[test]
fn reconnect_on_resends_a_post_and_off_stops_a_get() {
    let t = token();
    let url = script(&t, &[b"data: 1\n\n", b"data: 2\n\n"], "");
    let es = open(&url, fast().method("POST").body("x").reconnect(true));
    assert_eq!(trace(&es, 6), ["open", "message:1:", "error(0)", "open", "message:2:", "error(0)"]);
    es.close();
    assert_eq!(log(&t).iter().filter(|r| r.method == "POST").count(), 2);

    let t = token();
    let es = open(&script(&t, &[b"data: 1\n\n"], ""), fast().reconnect(false));
    let evs = all(&es);
    assert_eq!(evs.iter().map(describe).collect::<Vec<_>>(), ["open", "message:1:", "error(2)"]);
    assert!(last_error(&evs).error.message().contains("reconnect is off"));
    assert_eq!(log(&t).len(), 1);
}

#[test]
fn max_reconnects_gives_up_with_an_error_that_says_so() {
    let es = open(&unreachable_url(), fast().max_reconnects(2));
    let evs = all(&es);
    let tr: Vec<String> = evs.iter().map(describe).collect();
    assert_eq!(tr, ["error(0)", "error(0)", "error(2)"]);
    let e = last_error(&evs);
    assert_eq!((e.ready_state, e.error.kind()), (ReadyState::Closed, ErrorKind::Connect));
    assert!(e.error.message().contains("max_reconnects"), "{}", e.error.message());
}

#[test]
fn retry_initial_off_fails_an_unreachable_first_connection_at_once() {
    let es = open(&unreachable_url(), fast().retry_initial(false));
    let evs = all(&es);
    assert_eq!(evs.iter().map(describe).collect::<Vec<_>>(), ["error(2)"]);
    assert!(last_error(&evs).error.message().contains("retry_initial"));
    // Once a connection has opened, later failures reconnect as usual.
    let t = token();
    let es = open(&script(&t, &[b"data: 1\n\n", b"data: 2\n\n"], ""), fast().retry_initial(false));
    assert_eq!(trace(&es, 5), ["open", "message:1:", "error(0)", "open", "message:2:"]);
}

#[test]
fn a_fatal_status_carries_the_servers_headers_and_body() {
    let t = token();
    let json =
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
    let q = format!(
        "script?t={t}&s1=401&ct1=application%2Fjson&hdr1=x-request-id%3A%20req_123&c1={}",
        pct(json.as_bytes())
    );
    let es = open(&server().url(&q), fast());
    let evs = all(&es);
    let e = last_error(&evs);
    assert_eq!(
        (e.ready_state, e.error.kind(), e.error.status()),
        (ReadyState::Closed, ErrorKind::HttpStatus, Some(401))
    );
    assert_eq!(e.error.header("X-Request-Id"), Some("req_123"));
    assert_eq!(e.error.header("content-type"), Some("application/json"));
    assert_eq!(e.error.body(), Some(json.as_bytes()));

    let t = token();
    let q = format!("script?t={t}&s1=429&ct1=application%2Fjson&hdr1=Retry-After%3A%207&c1=%7B%7D");
    let evs = all(&open(&server().url(&q), fast()));
    assert_eq!(last_error(&evs).error.header("retry-after"), Some("7"));

    // The body kept is bounded by max_error_body.
    let t = token();
    let q = format!("script?t={t}&s1=500&ct1=text%2Fplain&c1={}", "x".repeat(1000));
    let evs = all(&open(&server().url(&q), fast().max_error_body(10)));
    assert_eq!(last_error(&evs).error.body(), Some(&b"xxxxxxxxxx"[..]));

    // A 200 of the wrong type keeps its body too (an HTML page from a proxy, say).
    let t = token();
    let q = format!("script?t={t}&ct1=text%2Fhtml&c1=%3Ch1%3Enope%3C%2Fh1%3E");
    let evs = all(&open(&server().url(&q), fast()));
    let e = last_error(&evs);
    assert_eq!(
        (e.error.kind(), e.error.body()),
        (ErrorKind::ContentType, Some(&b"<h1>nope</h1>"[..]))
    );
}

#[test]
fn response_headers_are_readable_once_open() {
    let t = token();
    let es = open(&script(&t, &[b"data: 1\n\n"], "&hdr1=x-trace%3A%20abc&hold1=1"), fast());
    assert!(es.response_headers().is_empty());
    assert_eq!(trace(&es, 1), ["open"]);
    let h = es.response_headers();
    let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("x-trace"), Some("abc"));
    assert_eq!(get("content-type"), Some("text/event-stream"));
}

#[test]
fn request_defaults_user_agent_content_type_and_method_case() {
    let t = token();
    let es = open(&script(&t, &[b"data: 1\n\n"], ""), fast().method("post").body("hello"));
    assert_eq!(trace(&es, 2), ["open", "message:1:"]);
    es.close();
    let r = &log(&t)[0];
    assert_eq!(r.method, "POST");
    let ua = format!("eventsource-native/{}", eventsource_core::VERSION);
    assert_eq!(header(r, "user-agent"), Some(ua));
    assert_eq!(header(r, "content-type").as_deref(), Some("text/plain;charset=UTF-8"));

    let t = token();
    let o = fast()
        .method("POST")
        .body("[1]")
        .header("Content-Type", "application/x-ndjson")
        .header("User-Agent", "mine/1");
    let es = open(&script(&t, &[b"data: 1\n\n"], ""), o);
    assert_eq!(trace(&es, 2), ["open", "message:1:"]);
    es.close();
    let r = &log(&t)[0];
    assert_eq!(header(r, "content-type").as_deref(), Some("application/x-ndjson"));
    assert_eq!(header(r, "user-agent").as_deref(), Some("mine/1"));

    let t = token();
    let es = open(&script(&t, &[b"data: 1\n\n"], ""), fast().user_agent(None));
    assert_eq!(trace(&es, 2), ["open", "message:1:"]);
    es.close();
    assert_eq!(header(&log(&t)[0], "user-agent"), None);
}

#[test]
fn the_last_valid_content_type_decides() {
    // Fetch extracts the MIME type from every Content-Type value: the last one wins.
    let t = token();
    let q = format!(
        "script?t={t}&ct1=text%2Fplain&hdr1=Content-Type%3A%20text%2Fevent-stream&c1={}",
        pct(b"data: 1\n\n")
    );
    let es = open(&server().url(&q), fast());
    assert_eq!(trace(&es, 2), ["open", "message:1:"]);
}
