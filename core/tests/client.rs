//! The connection model of `spec/eventsource.md` against the real testserver over loopback.
//! Test names cite the §11 assertion they check (`s11_NN_...`).

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use eventsource_core::{ErrorKind, Event, EventSource, Options, ReadyState, Recv};
use testserver::Server;

/// Asserts nothing more arrives for `d`.
fn quiet(es: &EventSource, d: Duration) {
    let extra = take(es, 1, d);
    assert!(
        extra.is_empty(),
        "unexpected event: {:?}",
        extra.iter().map(describe).collect::<Vec<_>>()
    );
}

fn open(url: &str, o: Options) -> EventSource {
    EventSource::with_options(url, o).unwrap()
}

#[test]
fn s11_01_connecting_at_first_and_no_sync_event() {
    let t = token();
    // The head is delayed so that a preempted test thread cannot see the stream open already
    // (the connection runs on another thread and takes well under a millisecond on loopback).
    let es = open(&script(&t, &[b"data: x\n\n"], "&delay1=300"), fast());
    assert_eq!(es.ready_state(), ReadyState::Connecting);
    let mut buf = Vec::new();
    assert_eq!(es.try_recv_many(&mut buf, 10), 0);
}

#[test]
fn s11_02_ready_state_numbers() {
    assert_eq!(ReadyState::Connecting as u8, 0);
    assert_eq!(ReadyState::Open as u8, 1);
    assert_eq!(ReadyState::Closed as u8, 2);
}

#[test]
fn s11_03_unparseable_url_is_a_construction_error() {
    for bad in ["http://exa mple/", "not a url", "", "/relative/path"] {
        let err = EventSource::with_options(bad, opts()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{bad}");
        assert!(err.message().contains("invalid URL"), "{}", err.message());
    }
}

#[test]
fn s11_04_url_is_serialized_and_survives_redirects() {
    let es = EventSource::with_options("HTTP://127.0.0.1:9/a/../b?q", opts()).unwrap();
    assert_eq!(es.url(), "http://127.0.0.1:9/b?q");
    es.close();
    let t = token();
    let target = script(&t, &[b"data: moved\n\n"], "");
    let url = server().url(&format!("redirect?code=302&to={}", pct(target.as_bytes())));
    let es = open(&url, fast());
    assert_eq!(trace(&es, 2), ["open", "message:moved:"]);
    assert_eq!(es.url(), url);
}

#[test]
fn s11_05_with_credentials_reflected() {
    let es = EventSource::with_options("http://127.0.0.1:9/", opts()).unwrap();
    assert!(!es.with_credentials());
    let es = open("http://127.0.0.1:9/", opts().with_credentials(true));
    assert!(es.with_credentials());
}

#[test]
fn s11_06_first_request_headers() {
    let t = token();
    let es = open(&script(&t, &[b"data: x\n\n"], ""), fast());
    assert_eq!(trace(&es, 2), ["open", "message:x:"]);
    let req = &log(&t)[0];
    assert_eq!(req.method, "GET");
    assert_eq!(header(req, "accept").as_deref(), Some("text/event-stream"));
    assert_eq!(header(req, "cache-control").as_deref(), Some("no-cache"));
    assert_eq!(header(req, "last-event-id"), None);
}

#[test]
fn s11_07_open_then_message_with_origin() {
    let t = token();
    let es = open(&script(&t, &[b"data: hello\n\n"], ""), fast());
    let evs = take(&es, 2, Duration::from_secs(10));
    assert!(matches!(evs[0], Event::Open));
    let Event::Message(m) = &evs[1] else { panic!("{:?}", evs[1]) };
    assert_eq!((&*m.event_type, &*m.data, &*m.last_event_id), ("message", "hello", ""));
    assert_eq!(m.origin, format!("http://127.0.0.1:{}", server().port()).as_str());
    assert!(evs.iter().all(|e| e.ready_state() == ReadyState::Open));
}

#[test]
fn s11_08_open_fires_before_the_body() {
    let t = token();
    let es = open(&script(&t, &[b"data: late\n\n"], "&bodydelay1=1500"), fast());
    let start = Instant::now();
    assert_eq!(trace(&es, 1), ["open"]);
    assert!(start.elapsed() < Duration::from_millis(1200), "open waited for the body");
    assert_eq!(es.ready_state(), ReadyState::Open);
    assert_eq!(trace(&es, 1), ["message:late:"]);
}

#[test]
fn s11_09_no_content_fails_with_one_request() {
    let t = token();
    let es = open(&script(&t, &[b"data: x\n\n"], "&s1=204"), fast());
    let evs = take(&es, 1, Duration::from_secs(10));
    let Event::Error(e) = &evs[0] else { panic!() };
    assert_eq!(e.ready_state, ReadyState::Closed);
    assert_eq!((e.error.kind(), e.error.status()), (ErrorKind::HttpStatus, Some(204)));
    assert_eq!(es.ready_state(), ReadyState::Closed);
    assert!(matches!(es.recv_timeout(Some(Duration::from_millis(300))), Recv::Closed));
    assert_eq!(log(&t).len(), 1);
}

#[test]
fn s11_10_other_statuses_fail_without_reconnect() {
    for status in [201, 205, 210, 299, 404, 410, 500, 503] {
        let t = token();
        let es =
            open(&script(&t, &[b"data: x\n\n", b"data: x\n\n"], &format!("&s1={status}")), fast());
        assert_eq!(trace(&es, 5), ["error(2)"], "status {status}");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(log(&t).len(), 1, "status {status} reconnected");
    }
}

#[test]
fn s11_11_wrong_content_types_fail() {
    for ct in ["text/x-bogus", "text/html", "none", "text/event-streams", "text/plain"] {
        let t = token();
        let es = open(
            &script(&t, &[b"data: x\n\n", b"data: x\n\n"], &format!("&ct1={}", pct(ct.as_bytes()))),
            fast(),
        );
        let evs = take(&es, 5, Duration::from_secs(10));
        assert_eq!(evs.iter().map(describe).collect::<Vec<_>>(), ["error(2)"], "{ct}");
        let Event::Error(e) = &evs[0] else { panic!() };
        assert_eq!(e.error.kind(), ErrorKind::ContentType);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(log(&t).len(), 1);
    }
}

#[test]
fn s11_12_charset_parameter_ignored_and_mime_case_insensitive() {
    for ct in
        ["text/event-stream; charset=windows-1252", "Text/Event-Stream", "text/event-stream;x=y"]
    {
        let t = token();
        let body = "data: ok…\n\n".as_bytes();
        let es = open(&script(&t, &[body], &format!("&ct1={}", pct(ct.as_bytes()))), fast());
        assert_eq!(trace(&es, 2), ["open", "message:ok…:"], "{ct}");
    }
}

#[test]
fn s11_13_redirects_are_followed() {
    for code in [301, 302, 303, 307, 308] {
        let t = token();
        let target = script(&t, &[b"data: there\n\n"], "");
        let url =
            server().url(&format!("redirect?t={t}r&code={code}&to={}", pct(target.as_bytes())));
        let es = open(&url, fast());
        assert_eq!(trace(&es, 2), ["open", "message:there:"], "{code}");
        let req = &log(&t)[0];
        assert_eq!(req.method, "GET");
        assert_eq!(header(req, "accept").as_deref(), Some("text/event-stream"));
    }
}

#[test]
fn s11_14_origin_is_the_final_urls() {
    let t = token();
    let q = format!("t={t}&c1={}", pct(b"data: x\n\n"));
    let url = server().url(&format!("scenario/cross-origin?{q}"));
    let es = open(&url, fast());
    let evs = take(&es, 2, Duration::from_secs(10));
    let Event::Message(m) = &evs[1] else { panic!("{evs:?}") };
    assert_eq!(m.origin, format!("http://localhost:{}", server().port()).as_str());
    assert_eq!(es.url(), url);
}

#[test]
fn s11_15_redirect_to_a_bad_response_fails() {
    let t = token();
    let to404 = script(&t, &[b"data: x\n\n"], "&s1=404");
    let es =
        open(&server().url(&format!("redirect?code=302&to={}", pct(to404.as_bytes()))), fast());
    assert_eq!(trace(&es, 3), ["error(2)"]);
    let t = token();
    let plain = script(&t, &[b"data: x\n\n"], "&ct1=text/plain");
    let es =
        open(&server().url(&format!("redirect?code=307&to={}", pct(plain.as_bytes()))), fast());
    assert_eq!(trace(&es, 3), ["error(2)"]);
}

#[test]
fn s11_16_clean_end_reconnects() {
    let t = token();
    let es = open(&script(&t, &[b"retry: 200\ndata: one\n\n", b"data: two\n\n"], ""), opts());
    assert_eq!(
        trace(&es, 6),
        ["open", "message:one:", "error(0)", "open", "message:two:", "error(0)"]
    );
    assert_eq!(trace(&es, 1), ["error(2)"]); // third connection: 204
}

#[test]
fn s11_17_dropped_connection_reconnects() {
    let t = token();
    let es = open(&server().url(&format!("scenario/drop?t={t}")), fast());
    let tr = trace(&es, 4);
    assert_eq!(tr[..3], ["open", "message:one:", "error(0)"]);
    assert_eq!(tr[3], "open");
    assert!(log(&t).len() >= 2);
}

#[test]
fn s11_18_content_length_body_end_is_end_of_stream() {
    let t = token();
    let es = open(&server().url(&format!("scenario/content-length?t={t}")), fast());
    assert_eq!(trace(&es, 3), ["open", "message:cl:", "error(0)"]);
    trace(&es, 1); // the reconnection (answered 204 by this scenario)
    assert_eq!(log(&t).len(), 2);
}

#[test]
fn s11_19_20_reconnection_refused_fails() {
    for status in [500, 204] {
        let t = token();
        let es =
            open(&script(&t, &[b"data: a\n\n", b"data: b\n\n"], &format!("&s2={status}")), fast());
        assert_eq!(trace(&es, 5), ["open", "message:a:", "error(0)", "error(2)"], "{status}");
    }
}

#[test]
fn s11_21_network_error_then_retry_after_reconnection_time() {
    // Reserve a port, free it, point the source at it, and only start a server there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = Instant::now();
    let es = open(&format!("http://127.0.0.1:{port}/stream?count=1"), opts());
    let first = take(&es, 1, Duration::from_secs(5));
    let Event::Error(e) = &first[0] else { panic!("{first:?}") };
    assert_eq!((e.ready_state, e.error.kind()), (ReadyState::Connecting, ErrorKind::Connect));
    let _late = Server::start_on(port).unwrap();
    assert_eq!(trace(&es, 1), ["open"]);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(2900), "reconnected after {waited:?}");
}

#[test]
fn s11_22_retry_only_stream_opens_again() {
    let t = token();
    let es = open(&script(&t, &[b"retry: 200\n", b"retry: 200\n"], ""), opts());
    assert_eq!(trace(&es, 4), ["open", "error(0)", "open", "error(0)"]);
}

#[test]
fn s11_23_unfinished_event_is_discarded() {
    for tail in [&b"data: b"[..], b"data: b\n"] {
        let t = token();
        let body = [b"data: a\n\n", tail].concat();
        let es = open(&script(&t, &[&body], ""), fast());
        assert_eq!(trace(&es, 4), ["open", "message:a:", "error(0)", "error(2)"]);
    }
}

#[test]
fn s11_24_close_inside_error_handler_stops_reconnection() {
    let t = token();
    let url = script(&t, &[b"data: a\n\n", b"data: b\n\n"], "");
    let slot: Arc<Mutex<Option<EventSource>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let s2 = slot.clone();
    // Hold the slot while constructing: the handler runs on another thread and may get its
    // first events before `with_handler` returns here; it waits for the handle.
    let mut held = slot.lock().unwrap();
    let es = EventSource::with_handler(&url, fast(), move |e: Event| {
        if let (Event::Error(_), Some(es)) = (&e, s2.lock().unwrap().as_ref()) {
            es.close();
            assert_eq!(es.ready_state(), ReadyState::Closed);
        }
        let _ = tx.send(describe(&e));
    })
    .unwrap();
    *held = Some(es);
    drop(held);
    let mut got = Vec::new();
    while let Ok(e) = rx.recv_timeout(Duration::from_millis(700)) {
        got.push(e);
    }
    assert_eq!(got, ["open", "message:a:", "error(0)"]);
    assert_eq!(log(&t).len(), 1);
    drop(slot.lock().unwrap().take());
}

#[test]
fn s11_25_bom_stripped_on_every_connection() {
    let t = token();
    let es = open(&server().url(&format!("scenario/bom-each?t={t}")), fast());
    let msgs: Vec<_> = trace(&es, 12).into_iter().filter(|s| s.starts_with("message")).collect();
    assert_eq!(msgs, ["message:c1:1", "message:c2:2", "message:c3:3"]);
}

/// Time between the end of response 1 and the arrival of request 2, as the server saw it.
fn reconnect_gap(first: &[u8], o: Options) -> Duration {
    let t = token();
    let es = open(&script(&t, &[first, b"data: 2\n\n"], ""), o);
    let tr = trace(&es, 4);
    assert_eq!(tr.last().map(String::as_str), Some("open"), "{tr:?}");
    let l = log(&t);
    let ms = l[1].at_ms - l[0].at_ms;
    Duration::from_secs_f64(ms / 1000.0)
}

#[test]
fn s11_26_27_retry_sets_the_delay_in_decimal() {
    let gap = reconnect_gap(b"retry: 1500\ndata: 1\n\n", opts());
    assert!(gap >= Duration::from_millis(1500) && gap < Duration::from_millis(2900), "{gap:?}");
    let gap = reconnect_gap(b"retry: 01500\ndata: 1\n\n", opts());
    assert!(gap >= Duration::from_millis(1500) && gap < Duration::from_millis(2900), "{gap:?}");
}

#[test]
fn s11_28_29_invalid_retry_values_are_ignored() {
    for bad in [
        "retry: 100x",
        "retry: -100",
        "retry: 0.1",
        "retry: +100",
        "retry:  100",
        "Retry: 100",
        "retry:",
    ] {
        let body = format!("retry: 700\n{bad}\ndata: 1\n\n");
        let gap = reconnect_gap(body.as_bytes(), opts());
        assert!(
            gap >= Duration::from_millis(700) && gap < Duration::from_millis(2000),
            "{bad}: {gap:?}"
        );
    }
}

#[test]
fn s11_30_31_short_retry_applies_even_without_dispatch() {
    let gap = reconnect_gap(b"retry: 100\ndata: 1\n\n", opts());
    assert!(gap < Duration::from_millis(1200), "{gap:?}");
    let gap = reconnect_gap(b"data: 1\n\nretry: 100\n", opts());
    assert!(gap < Duration::from_millis(1200), "{gap:?}");
}

/// Runs two connections and returns (the second request's Last-Event-ID, trace).
fn id_roundtrip(first: &[u8], second: &[u8]) -> (Option<String>, Vec<String>) {
    let t = token();
    let es = open(&script(&t, &[first, second], ""), fast());
    let tr = trace(&es, 12);
    let l = log(&t);
    (header(&l[1], "last-event-id"), tr)
}

#[test]
fn s11_32_id_survives_reconnection() {
    let (h, tr) = id_roundtrip(b"id: 42\n\n", b"data: next\n\n");
    assert_eq!(h.as_deref(), Some("42"));
    assert!(tr.contains(&"message:next:42".to_owned()), "{tr:?}");
}

#[test]
fn s11_33_unicode_id_sent_as_utf8() {
    let (h, _) = id_roundtrip("id: …é😀\ndata: x\n\n".as_bytes(), b"data: y\n\n");
    assert_eq!(h.as_deref(), Some("…é😀"));
}

#[test]
fn s11_34_35_id_persists_across_events() {
    let t = token();
    let es = open(
        &script(&t, &[b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\ndata: d\n\n"], ""),
        fast(),
    );
    assert_eq!(trace(&es, 5), ["open", "message:a:1", "message:b:1", "message:c:2", "message:d:2"]);
}

#[test]
fn s11_36_37_empty_id_resets_and_no_header_is_sent() {
    for reset in ["id:", "id"] {
        let first = format!("id: 9\ndata: a\n\n{reset}\ndata: b\n\n");
        let (h, tr) = id_roundtrip(first.as_bytes(), b"data: c\n\n");
        assert_eq!(h, None, "{reset}");
        assert!(tr.contains(&"message:b:".to_owned()), "{tr:?}");
    }
}

#[test]
fn s11_38_id_with_nul_is_ignored() {
    let (h, tr) = id_roundtrip(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", b"data: c\n\n");
    assert_eq!(h.as_deref(), Some("1"));
    assert!(tr.contains(&"message:b:1".to_owned()), "{tr:?}");
}

#[test]
fn s11_39_id_without_data_still_updates() {
    let (h, _) = id_roundtrip(b"id: 5\n\n", b"data: c\n\n");
    assert_eq!(h.as_deref(), Some("5"));
}

#[test]
fn s11_40_id_in_cut_off_event_is_not_kept() {
    let (h, tr) = id_roundtrip(b"data: a\n\nid: test\ndata: b", b"data: c\n\n");
    assert_eq!(h, None);
    assert!(tr.contains(&"message:c:".to_owned()), "{tr:?}");
}

#[test]
fn last_event_id_option_is_the_first_header() {
    let t = token();
    let es = open(&script(&t, &[b"data: a\n\n"], ""), fast().last_event_id("resume-7"));
    assert_eq!(trace(&es, 2), ["open", "message:a:resume-7"]);
    assert_eq!(header(&log(&t)[0], "last-event-id").as_deref(), Some("resume-7"));
}

#[test]
fn s11_46_to_51_event_types() {
    let t = token();
    let body = b"event: add\ndata: 1\n\nevent: remove\ndata: 2\n\ndata: 3\n\nevent:\ndata: 4\n\nevent: x\n\ndata: 5\n\nevent: Add\ndata: 6\n\nevent: error\ndata: e\n\n";
    let es = open(&script(&t, &[body], ""), fast());
    let evs = take(&es, 8, Duration::from_secs(10));
    let names: Vec<_> = evs.iter().map(describe).collect();
    assert_eq!(
        names,
        [
            "open",
            "add:1:",
            "remove:2:",
            "message:3:",
            "message:4:",
            "message:5:",
            "Add:6:",
            "error:e:"
        ]
    );
    // An `event: error` message is a message (readyState 1), not a connection error.
    assert_eq!(evs[7].ready_state(), ReadyState::Open);
}

#[test]
fn s11_52_wpt_comments() {
    let es = open(&server().url("scenario/wpt-comments"), fast());
    assert_eq!(trace(&es, 2), ["open", "message:1\n2\n3\n4:"]);
}

#[test]
fn s11_66_long_line_and_long_comment() {
    let es = open(&server().url("scenario/long-line?size=1048576"), fast());
    let evs = take(&es, 2, Duration::from_secs(10));
    let Event::Message(m) = &evs[1] else { panic!() };
    assert_eq!(m.data.len(), 1 << 20);
    assert!(m.data.bytes().all(|b| b == b'x'));
    let es = open(&server().url("scenario/long-comment?size=262144"), fast());
    assert_eq!(trace(&es, 2), ["open", "message:after:"]);
}

#[test]
fn s11_67_many_events_in_one_write() {
    let es = open(&server().url("scenario/many?count=500"), fast());
    let evs = take(&es, 501, Duration::from_secs(10));
    assert_eq!(evs.len(), 501);
    for (i, e) in evs[1..].iter().enumerate() {
        let Event::Message(m) = e else { panic!() };
        assert_eq!(*m.last_event_id, (i + 1).to_string());
    }
}

#[test]
fn s11_68_tricky_stream_dripped() {
    for q in ["", "?drip=1"] {
        let es = open(&server().url(&format!("scenario/tricky{q}")), fast());
        assert_eq!(trace(&es, 3), ["open", "message:α…\n😀:7", "x::7"], "{q}");
    }
}

#[test]
fn s11_63_64_utf8_split_and_invalid() {
    let t = token();
    let body = "data: é😀…\n\n".as_bytes();
    let es = open(&script(&t, &[body], "&drip=1"), fast());
    assert_eq!(trace(&es, 2), ["open", "message:é😀…:"]);
    let t = token();
    let es = open(&script(&t, &[b"id: \xFF\nevent: \xC3(\ndata: a\xFFb\n\n"], ""), fast());
    assert_eq!(trace(&es, 2), ["open", "\u{FFFD}(:a\u{FFFD}b:\u{FFFD}"]);
}

#[test]
fn s11_69_events_are_not_buffered() {
    let es = open(&server().url("scenario/pause-then-event"), fast());
    let start = Instant::now();
    assert_eq!(trace(&es, 2), ["open", "message:first:"]);
    assert!(start.elapsed() < Duration::from_millis(1500));
}

#[test]
fn s11_70_silence_is_not_an_error() {
    let es = open(&server().url("scenario/silence?ms=4000"), fast());
    assert_eq!(trace(&es, 1), ["open"]);
    quiet(&es, Duration::from_millis(3500));
    assert_eq!(es.ready_state(), ReadyState::Open);
}

#[test]
fn read_timeout_reconnects_a_silent_stream() {
    let t = token();
    let o = fast().read_timeout(Some(Duration::from_millis(300)));
    let es = open(&script(&t, &[b"data: a\n\n", b"data: b\n\n"], "&hold1=1"), o);
    let evs = take(&es, 5, Duration::from_secs(10));
    let names: Vec<_> = evs.iter().map(describe).collect();
    assert_eq!(names, ["open", "message:a:", "error(0)", "open", "message:b:"]);
    let Event::Error(e) = &evs[2] else { panic!() };
    assert_eq!(e.error.kind(), ErrorKind::Timeout);
}

#[test]
fn s11_71_75_close_is_synchronous_final_and_idempotent() {
    let t = token();
    let es = open(&script(&t, &[b"data: a\n\n"], "&hold1=1"), fast());
    assert_eq!(trace(&es, 2), ["open", "message:a:"]);
    assert_eq!(log(&t)[0].done_ms, None, "the held response is still running");
    es.close();
    assert_eq!(es.ready_state(), ReadyState::Closed);
    es.close();
    assert!(matches!(es.recv_timeout(Some(Duration::from_millis(500))), Recv::Closed));
    // The server sees the socket close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while log(&t)[0].done_ms.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(log(&t)[0].done_ms.is_some(), "the server never saw the connection close");
}

#[test]
fn s11_72_close_inside_open_drops_the_same_chunk() {
    let t = token();
    let url = script(&t, &[b"data: a\n\ndata: b\n\n"], "&hold1=1");
    let got = handler_trace(&url, |e| matches!(e, Event::Open));
    assert_eq!(got, ["open"]);
}

#[test]
fn s11_73_close_inside_first_message_drops_the_rest() {
    let t = token();
    let url = script(&t, &[b"data: 1\n\ndata: 2\n\ndata: 3\n\n"], "&hold1=1");
    let got = handler_trace(&url, |e| matches!(e, Event::Message(_)));
    assert_eq!(got, ["open", "message:1:"]);
}

/// Push mode: records events, closing the source from inside the handler when `stop` says so.
fn handler_trace(url: &str, stop: fn(&Event) -> bool) -> Vec<String> {
    let slot: Arc<Mutex<Option<Arc<EventSource>>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let s2 = slot.clone();
    // Held while constructing, so a handler that runs before `with_handler` returns waits
    // for the handle.
    let mut held = slot.lock().unwrap();
    let es = EventSource::with_handler(url, fast(), move |e: Event| {
        let _ = tx.send(describe(&e));
        if stop(&e) {
            let es = s2.lock().unwrap().clone();
            es.expect("source stored").close();
        }
    })
    .unwrap();
    let es = Arc::new(es);
    *held = Some(es.clone());
    drop(held);
    let mut got = Vec::new();
    while let Ok(e) = rx.recv_timeout(Duration::from_millis(800)) {
        got.push(e);
    }
    assert_eq!(es.ready_state(), ReadyState::Closed);
    slot.lock().unwrap().take();
    got
}

#[test]
fn s11_74_close_right_after_construction() {
    let t = token();
    let es = open(&script(&t, &[b"data: a\n\n"], ""), fast());
    es.close();
    assert!(matches!(es.recv_timeout(Some(Duration::from_millis(500))), Recv::Closed));
}

#[test]
fn close_from_another_thread_while_streaming_stops_callbacks() {
    let url = server().url("stream?count=0&size=64");
    let seen = Arc::new(Mutex::new((0u64, false)));
    let s2 = seen.clone();
    let es = EventSource::with_handler(&url, fast(), move |e: Event| {
        let mut s = s2.lock().unwrap();
        assert!(!s.1, "callback after close() returned");
        if matches!(e, Event::Message(_)) {
            s.0 += 1;
        }
    })
    .unwrap();
    while seen.lock().unwrap().0 < 1000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    es.close();
    seen.lock().unwrap().1 = true;
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn s11_77_non_http_scheme_fails_asynchronously() {
    for url in ["ftp://127.0.0.1/x", "mailto:a@b.c", "about:blank", "javascript:1"] {
        let es = EventSource::with_options(url, opts()).unwrap();
        let evs = take(&es, 2, Duration::from_secs(5));
        assert_eq!(evs.len(), 1, "{url}");
        let Event::Error(e) = &evs[0] else { panic!() };
        assert_eq!(
            (e.ready_state, e.error.kind()),
            (ReadyState::Closed, ErrorKind::UnsupportedScheme)
        );
    }
}

#[test]
fn request_options_are_sent_on_every_connection() {
    let t = token();
    let o = fast()
        .header("Authorization", "Bearer abc")
        .header("X-Extra", "1")
        .method("POST")
        .body(r#"{"prompt":"hi"}"#)
        // A POST source reconnects (and resends its body) only when asked to.
        .reconnect(true);
    let es = open(&script(&t, &[b"id: 3\ndata: a\n\n", b"data: b\n\n"], ""), o);
    assert_eq!(trace(&es, 5), ["open", "message:a:3", "error(0)", "open", "message:b:3"]);
    let l = log(&t);
    for req in &l[..2] {
        assert_eq!(req.method, "POST");
        assert_eq!(req.body, r#"{"prompt":"hi"}"#);
        assert_eq!(header(req, "authorization").as_deref(), Some("Bearer abc"));
        assert_eq!(header(req, "x-extra").as_deref(), Some("1"));
        assert_eq!(header(req, "accept").as_deref(), Some("text/event-stream"));
    }
    assert_eq!(header(&l[1], "last-event-id").as_deref(), Some("3"));
}

#[test]
fn with_credentials_keeps_cookies() {
    let t = token();
    let extra = format!("&hdr1={}", pct(b"Set-Cookie: session=s3cr3t; Path=/"));
    let es =
        open(&script(&t, &[b"data: a\n\n", b"data: b\n\n"], &extra), fast().with_credentials(true));
    assert_eq!(trace(&es, 5), ["open", "message:a:", "error(0)", "open", "message:b:"]);
    assert_eq!(header(&log(&t)[1], "cookie").as_deref(), Some("session=s3cr3t"));
}

#[test]
fn cookies_from_redirects_and_paths_and_expiry() {
    let t = token();
    let target = format!("/script?t={t}&c1={}&c2={}", pct(b"data: a\n\n"), pct(b"data: b\n\n"));
    let cookies = [
        "Set-Cookie: hop=1; Path=/",
        "Set-Cookie: narrow=1; Path=/elsewhere",
        "Set-Cookie: gone=1; Path=/; Max-Age=0",
        "Set-Cookie: secure=1; Path=/; Secure",
    ];
    let loc = pct(target.as_bytes());
    let mut q = format!("script?t={t}x&s1=307&loc1={loc}&s2=307&loc2={loc}&c2=x");
    for c in cookies {
        q.push_str(&format!("&hdr1={}", pct(c.as_bytes())));
    }
    let es = EventSource::with_options(&server().url(&q), fast().with_credentials(true)).unwrap();
    assert_eq!(trace(&es, 5), ["open", "message:a:", "error(0)", "open", "message:b:"]);
    es.close();
    let l = log(&t);
    // Stored from the redirect, sent on the hop and on the reconnection's hop.
    assert_eq!(header(&l[0], "cookie").as_deref(), Some("hop=1"));
    assert_eq!(header(&l[1], "cookie").as_deref(), Some("hop=1"));
    // Without with_credentials: no jar.
    let t2 = token();
    let url = server().url(&format!(
        "script?t={t2}&c1={}&c2={}&hdr1={}",
        pct(b"data: a\n\n"),
        pct(b"data: b\n\n"),
        pct(b"Set-Cookie: x=1")
    ));
    let es = EventSource::with_options(&url, fast()).unwrap();
    assert_eq!(trace(&es, 5), ["open", "message:a:", "error(0)", "open", "message:b:"]);
    assert_eq!(header(&log(&t2)[1], "cookie"), None);
}

#[test]
fn each_source_has_its_own_cookie_jar() {
    let t = token();
    let extra = format!("&hdr1={}", pct(b"Set-Cookie: mine=1; Path=/"));
    let first =
        open(&script(&t, &[b"data: a\n\n", b"data: b\n\n"], &extra), fast().with_credentials(true));
    assert_eq!(trace(&first, 5), ["open", "message:a:", "error(0)", "open", "message:b:"]);
    // A second source with credentials, same server and settings: its jar starts empty.
    let t2 = token();
    let second =
        open(&script(&t2, &[b"data: c\n\n", b"data: d\n\n"], ""), fast().with_credentials(true));
    assert_eq!(trace(&second, 5), ["open", "message:c:", "error(0)", "open", "message:d:"]);
    assert_eq!(header(&log(&t)[1], "cookie").as_deref(), Some("mine=1"));
    assert_eq!(header(&log(&t2)[0], "cookie"), None);
    assert_eq!(header(&log(&t2)[1], "cookie"), None);
}

#[test]
fn bad_options_are_construction_errors() {
    let url = "http://127.0.0.1:9/";
    let cases = [
        opts().header("Bad Name", "x"),
        opts().header("X", "line\nbreak"),
        opts().header("Last-Event-ID", "1"),
        opts().method("GE T"),
        opts().last_event_id("a\nb"),
        opts().max_event_size(0),
        opts().backoff(0.5),
        opts().proxy("::not a url"),
        opts().ca_certs("/nonexistent/ca.pem"),
    ];
    for o in cases {
        let dbg = format!("{o:?}");
        let err = EventSource::with_options(url, o).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption, "{dbg}");
    }
}

#[test]
fn hostile_streams_fail_with_bounded_memory() {
    for name in ["endless-line", "endless-event"] {
        let o = fast().max_event_size(256 << 10);
        let es = open(&server().url(&format!("scenario/{name}")), o);
        let evs = take(&es, 3, Duration::from_secs(20));
        assert_eq!(evs.iter().map(describe).collect::<Vec<_>>(), ["open", "error(2)"], "{name}");
        let Event::Error(e) = &evs[1] else { panic!() };
        assert_eq!(e.error.kind(), ErrorKind::EventTooLarge, "{name}");
    }
}

#[test]
fn too_many_redirects_fail() {
    let mut url = server().url("script?c1=data%3A%20x%0A%0A");
    for _ in 0..3 {
        url = server().url(&format!("redirect?code=302&to={}", pct(url.as_bytes())));
    }
    let es = open(&url, fast().max_redirects(2));
    let evs = take(&es, 2, Duration::from_secs(5));
    let Event::Error(e) = &evs[0] else { panic!("{evs:?}") };
    assert_eq!((e.ready_state, e.error.kind()), (ReadyState::Closed, ErrorKind::TooManyRedirects));
}

#[test]
fn backoff_grows_after_consecutive_failures_and_is_capped() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = opts()
        .retry(Duration::from_millis(100))
        .max_retry(Duration::from_millis(400))
        .connect_timeout(Some(Duration::from_millis(200)));
    let es = open(&format!("http://127.0.0.1:{port}/"), o);
    let mut stamps = Vec::new();
    for _ in 0..6 {
        let e = take(&es, 1, Duration::from_secs(5));
        assert!(matches!(&e[..], [Event::Error(_)]));
        stamps.push(Instant::now());
    }
    let gaps: Vec<_> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    // Upper bounds are generous (a loaded machine stretches every gap): the first gap is the
    // reconnection time, not a backoff (≥ 200 ms), and the fifth is capped at max_retry
    // (400 ms, + jitter and connect time), not 100 ms × 2^5 = 3.2 s.
    assert!(
        gaps[0] >= Duration::from_millis(95) && gaps[0] < Duration::from_millis(1500),
        "{gaps:?}"
    );
    assert!(gaps[1] >= Duration::from_millis(190), "{gaps:?}");
    assert!(gaps[4] <= Duration::from_millis(2000), "{gaps:?}");
}

#[tokio::test]
async fn stream_api_in_async_code() {
    use std::future::poll_fn;
    use std::pin::Pin;
    let t = token();
    let mut es = open(&script(&t, &[b"data: a\n\ndata: b\n\n"], ""), fast());
    let mut got = Vec::new();
    while got.len() < 3 {
        let ev = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut es), cx)).await;
        got.push(describe(&ev.unwrap()));
    }
    assert_eq!(got, ["open", "message:a:", "message:b:"]);
    let mut batch = Vec::new();
    assert!(es.recv_many(&mut batch, 10).await > 0);
    assert_eq!(describe(&batch[0]), "error(0)");
}

#[test]
fn many_sources_open_and_close() {
    let url = server().url("stream?count=1&hold=1");
    let sources: Vec<_> = (0..200).map(|_| open(&url, fast())).collect();
    for es in &sources {
        let tr = trace(es, 2);
        assert_eq!(tr[0], "open");
        assert!(tr[1].starts_with("message:{\"seq\":1"), "{tr:?}");
    }
    for es in &sources {
        es.close();
    }
}

#[test]
fn closed_sources_drop_fast_streams_at_once_and_free_the_runtime() {
    // Endless streams keep the socket always readable: closing must still drop each socket
    // (the server sees it) and leave the runtime free for new sources.
    let t = token();
    let url = server().url(&format!("stream?count=0&size=128&t={t}"));
    for _ in 0..4 {
        let es = EventSource::with_handler(&url, fast(), |_e: Event| {}).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        es.close();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while log(&t).iter().any(|e| e.done_ms.is_none()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let l = log(&t);
    assert_eq!(l.len(), 4);
    assert!(l.iter().all(|e| e.done_ms.is_some()), "a closed source kept its socket open");
    let t2 = token();
    let es = open(&script(&t2, &[b"data: next\n\n"], ""), fast());
    assert_eq!(trace(&es, 2), ["open", "message:next:"]);
}

/// Requests under `t` within `window` of a source on `/stream?count=1&retry=0`: every
/// connection opens, delivers one event and ends at once.
fn requests_against_instant_closes(o: Options, window: Duration) -> usize {
    let t = token();
    let es = open(&server().url(&format!("stream?t={t}&count=1&size=16&retry=0")), o);
    let start = Instant::now();
    let mut events = 0;
    while start.elapsed() < window {
        if let Recv::Event(_) = es.recv_timeout(Some(Duration::from_millis(50))) {
            events += 1;
        }
    }
    es.close();
    assert!(events >= 3, "the source kept reconnecting and delivering ({events} events)");
    log(&t).len()
}

#[test]
fn retry_zero_against_instant_closes_does_not_storm() {
    // The first reconnection waits exactly `retry: 0`; the ones after it back off from a floor,
    // because a connection that dies at once does not reset the backoff. Unbounded, this was
    // thousands of requests a second.
    let window = Duration::from_secs(2);
    let n = requests_against_instant_closes(opts(), window);
    // 0, 0, 0.1, 0.3, 0.7, 1.5 s (+ jitter): about 6.
    assert!((3..=12).contains(&n), "{n} requests in {window:?}");
    // Without growth (backoff 1.0) the floor alone bounds the rate: about one every 100 ms.
    let n = requests_against_instant_closes(opts().backoff(1.0), window);
    assert!((3..=30).contains(&n), "{n} requests in {window:?} with backoff 1.0");
}

#[test]
fn close_from_two_threads_both_wait_for_the_callback() {
    // After close() returns, no callback runs: also for the second of two threads closing at
    // once (it used to return at once while the callback still ran).
    let t = token();
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = running.clone();
    let es = Arc::new(
        EventSource::with_handler(
            &script(&t, &[b"data: 1\n\n"], "&hold1=1"),
            opts(),
            move |e: Event| {
                if let Event::Message(_) = e {
                    r.store(true, std::sync::atomic::Ordering::SeqCst);
                    entered_tx.send(()).unwrap();
                    let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
                    r.store(false, std::sync::atomic::Ordering::SeqCst);
                }
            },
        )
        .unwrap(),
    );
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    let closers: Vec<_> = (0..2)
        .map(|_| {
            let (es, running) = (es.clone(), running.clone());
            std::thread::spawn(move || {
                es.close();
                // Whichever close returns, the callback is over.
                assert!(!running.load(std::sync::atomic::Ordering::SeqCst));
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert!(closers.iter().all(|c| !c.is_finished()), "a close returned while the callback ran");
    release.send(()).unwrap();
    for c in closers {
        c.join().unwrap();
    }
}

#[test]
fn a_consumer_that_does_not_read_stops_the_stream_by_bytes() {
    // 1,000 events of 64 KiB (65 MiB) to a source nobody reads: the queue stops the reading at
    // 8 MiB (the event count alone allowed 4,096 events: the whole stream, read in about a
    // second), so the server cannot finish. Then everything arrives, in order.
    let t = token();
    let url = server().url(&format!("stream?t={t}&count=1000&size=65536&id=1"));
    let es = open(&url, fast());
    std::thread::sleep(Duration::from_secs(2));
    let done = log(&t)[0].done_ms;
    assert!(done.is_none(), "the whole stream was read into memory (done at {done:?} ms)");
    let mut seq = 0;
    let mut seen_open = false;
    while seq < 1000 {
        match es.recv_timeout(Some(Duration::from_secs(20))) {
            Recv::Event(Event::Open) => seen_open = true,
            Recv::Event(Event::Message(m)) => {
                seq += 1;
                assert_eq!(m.last_event_id.as_str(), seq.to_string());
            }
            other => panic!("after {seq} messages: {other:?}"),
        }
    }
    assert!(seen_open);
}
