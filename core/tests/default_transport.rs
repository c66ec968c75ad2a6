//! The default transport (reqwest) end to end against the testserver's HTTP/2, TLS, mTLS and
//! proxy listeners: HTTP/2 by ALPN and with prior knowledge, many sources sharing connections,
//! `SETTINGS_MAX_CONCURRENT_STREAMS`, http/https/socks5 proxies, client certificates, a
//! `reqwest::Client` of the user's, and the option combinations that are refused.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use eventsource_core::{ErrorKind, Event, EventSource, Options, ReadyState, TransportKind};
use testserver::Server;

/// One server with every listener, for the tests of this file.
fn full() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start_with(testserver::Options::new().tls().proxies()).unwrap())
}

fn ca() -> std::path::PathBuf {
    full().certs().unwrap().ca_path.clone()
}

fn stream_path(t: &str) -> String {
    format!("script?t={t}&c1={}&hold1=1", pct(b"data: hi\n\n"))
}

/// A stream that every connection under `t` gets: one event, then the connection stays open.
fn shared_path(t: &str) -> String {
    format!("stream?t={t}&count=1&size=8&hold=1")
}

fn expect_open_and_message(es: &EventSource) {
    let evs = take(es, 2, Duration::from_secs(10));
    assert!(matches!(evs.as_slice(), [Event::Open, Event::Message(_)]), "{evs:?}");
}

fn expect_hi(es: &EventSource) {
    let evs = take(es, 2, Duration::from_secs(10));
    let tr: Vec<String> = evs.iter().map(describe).collect();
    assert_eq!(tr, ["open", "message:hi:"], "{evs:?}");
}

fn fast_default() -> Options {
    Options::default().retry(Duration::from_millis(50)).backoff(1.0)
}

#[test]
fn https_negotiates_http2_by_alpn() {
    let t = token();
    let es =
        EventSource::with_options(&full().tls_url(&stream_path(&t)), fast_default().ca_certs(ca()))
            .unwrap();
    expect_hi(&es);
    let r = &full().requests(&t)[0];
    assert_eq!((r.version.as_str(), r.tls), ("HTTP/2.0", true));
    // Without the CA: a TLS error (the source retries), and the message says so.
    let es = EventSource::with_options(&full().tls_url("x"), fast_default()).unwrap();
    let evs = take(&es, 1, Duration::from_secs(10));
    let Some(Event::Error(e)) = evs.first() else { panic!("{evs:?}") };
    assert_eq!((e.ready_state, e.error.kind()), (ReadyState::Connecting, ErrorKind::Connect));
    assert!(e.error.message().contains("TLS"), "{}", e.error.message());
    assert!(!e.error.message().contains("for url"), "{}", e.error.message());
    es.close();
    // The lean transport stays on HTTP/1.1.
    let t = token();
    let o = fast_default().ca_certs(ca()).transport(TransportKind::Lean);
    let es = EventSource::with_options(&full().tls_url(&stream_path(&t)), o).unwrap();
    expect_hi(&es);
    assert_eq!(full().requests(&t)[0].version, "HTTP/1.1");
}

#[test]
fn h2c_with_prior_knowledge() {
    let t = token();
    let o = fast_default().http2_prior_knowledge(true);
    let es = EventSource::with_options(&full().url(&stream_path(&t)), o).unwrap();
    expect_hi(&es);
    assert_eq!(full().requests(&t)[0].version, "HTTP/2.0");
    // Without it, plain http is HTTP/1.1.
    let t = token();
    let es = EventSource::with_options(&full().url(&stream_path(&t)), fast_default()).unwrap();
    expect_hi(&es);
    assert_eq!(full().requests(&t)[0].version, "HTTP/1.1");
}

#[test]
fn a_hundred_sources_to_one_h2_origin_share_a_handful_of_connections() {
    let t = token();
    let url = full().tls_url(&shared_path(&t));
    let sources: Vec<EventSource> = (0..100)
        .map(|_| EventSource::with_options(&url, fast_default().ca_certs(ca())).unwrap())
        .collect();
    for es in &sources {
        expect_open_and_message(es);
    }
    let conns = full().connections(&t);
    assert_eq!(full().requests(&t).len(), 100);
    assert!(conns.len() <= 4, "100 sources used {} connections", conns.len());
}

#[test]
fn a_low_max_concurrent_streams_never_stalls_a_source() {
    let s = Server::start_with(testserver::Options::new().tls().max_concurrent_streams(2)).unwrap();
    let ca = s.certs().unwrap().ca_path.clone();
    let t = token();
    let url = s.tls_url(&shared_path(&t));
    let sources: Vec<EventSource> = (0..6)
        .map(|_| EventSource::with_options(&url, fast_default().ca_certs(&ca)).unwrap())
        .collect();
    for es in &sources {
        expect_open_and_message(es);
    }
    assert_eq!(s.requests(&t).len(), 6);
}

#[test]
fn a_slow_server_that_keeps_answering_is_not_taken_for_a_full_connection() {
    // Heads come late (0.6 to 2.4 s) but one after another: that is load, not the stream limit,
    // and no request may be given up and sent again on another connection.
    let s = Server::start_with(testserver::Options::new().tls()).unwrap();
    let ca = s.certs().unwrap().ca_path.clone();
    let t0 = token();
    let first =
        EventSource::with_options(&s.tls_url(&shared_path(&t0)), fast_default().ca_certs(&ca))
            .unwrap();
    expect_open_and_message(&first);
    let slow: Vec<(String, EventSource)> = (1..=4)
        .map(|k| {
            let t = token();
            let url = s.tls_url(&format!("{}&delay1={}", stream_path(&t), 600 * k));
            (t, EventSource::with_options(&url, fast_default().ca_certs(&ca)).unwrap())
        })
        .collect();
    for (t, es) in &slow {
        expect_hi(es);
        assert_eq!(s.requests(t).len(), 1, "a slow request was sent again");
    }
    let conn = s.connections(&t0);
    for (t, _) in &slow {
        assert_eq!(s.connections(t), conn, "a slow request moved to another connection");
    }
}

#[test]
fn requests_whose_heads_come_late_do_not_hold_back_the_others() {
    // At most a few hundred requests to one origin wait for their heads at a time (the memory
    // they hold stays resident), but a late head holds its turn for a second at most: 300
    // sources to a server that answers after 6 s are all sent well before it answers.
    let n = 300;
    let delayed: Vec<(String, EventSource)> = (0..n)
        .map(|_| {
            let t = token();
            let url = full().url(&format!("{}&delay1=6000", stream_path(&t)));
            (t, EventSource::with_options(&url, fast_default()).unwrap())
        })
        .collect();
    let started = std::time::Instant::now();
    let sent = || delayed.iter().filter(|(t, _)| !full().requests(t).is_empty()).count();
    while sent() < n && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sent(), n, "requests were held back until earlier heads came");
    for (_, es) in &delayed {
        es.close();
    }
}

#[test]
fn proxies_http_https_and_socks5() {
    let ts = full();
    for (kind, proxy) in [
        ("http", ts.http_proxy_url()),
        ("https", ts.https_proxy_url()),
        ("socks5", ts.socks5_url()),
        ("socks5", ts.socks5_url().replace("socks5://", "socks5h://")),
    ] {
        for target in [ts.url("x"), ts.tls_url("x")] {
            let t = token();
            let url = target.replace("/x", &format!("/{}", stream_path(&t)));
            let o = fast_default().ca_certs(ca()).proxy(proxy.clone());
            let es = EventSource::with_options(&url, o).unwrap();
            expect_hi(&es);
            es.close();
            let port = url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
            let seen = ts.proxy_log();
            assert!(
                seen.iter().any(|p| p.kind == kind && p.target.ends_with(&format!(":{port}"))),
                "{proxy} -> {url}: {seen:?}"
            );
        }
    }
}

#[test]
fn client_certificates_for_mtls() {
    let certs = full().certs().unwrap();
    let t = token();
    let o = fast_default()
        .ca_certs(ca())
        .client_cert(certs.client_cert_path.clone(), Some(certs.dir.join("client.key")));
    let es = EventSource::with_options(&full().mtls_url(&stream_path(&t)), o).unwrap();
    expect_hi(&es);
    assert!(full().requests(&t)[0].client_cert);
    // Without one, the handshake fails: a connection error, and the source retries.
    let es =
        EventSource::with_options(&full().mtls_url("x"), fast_default().ca_certs(ca())).unwrap();
    let evs = take(&es, 1, Duration::from_secs(10));
    let Some(Event::Error(e)) = evs.first() else { panic!("{evs:?}") };
    // TLS 1.3 reports a refused client certificate after the handshake, at the first read.
    assert_eq!(e.ready_state, ReadyState::Connecting);
    assert!(matches!(e.error.kind(), ErrorKind::Connect | ErrorKind::Network), "{e:?}");
    // A key that is not there is a construction error.
    let err = EventSource::with_options(
        "https://127.0.0.1:9/",
        fast_default().client_cert(certs.client_cert_path.clone(), Some("/nonexistent.key".into())),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
    assert!(err.message().contains("client_key"), "{}", err.message());
}

#[test]
fn a_reqwest_client_of_ones_own_is_used_as_given() {
    let _ = rustls_provider();
    let root = reqwest::Certificate::from_pem(full().certs().unwrap().ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .default_headers(
            [(reqwest::header::HeaderName::from_static("x-mine"), "1".parse().unwrap())]
                .into_iter()
                .collect(),
        )
        .build()
        .unwrap();
    let t = token();
    let es = EventSource::with_options(
        &full().tls_url(&stream_path(&t)),
        fast_default().reqwest_client(client.clone()),
    )
    .unwrap();
    expect_hi(&es);
    let r = &full().requests(&t)[0];
    assert_eq!(header(r, "x-mine").as_deref(), Some("1"));
    assert_eq!(header(r, "accept").as_deref(), Some("text/event-stream"));
    // Settings that configure a client are refused with one, not ignored.
    for o in [
        Options::default().proxy("http://127.0.0.1:1"),
        Options::default().ca_certs(ca()),
        Options::default().transport(TransportKind::Lean),
        Options::default().http2_prior_knowledge(true),
    ] {
        let err =
            EventSource::with_options("http://127.0.0.1:9/", o.reqwest_client(client.clone()))
                .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption);
        assert!(err.message().contains("reqwest::Client"), "{}", err.message());
    }
}

/// reqwest's own TLS needs a process-wide rustls provider (the library's does not).
fn rustls_provider() -> bool {
    rustls::crypto::ring::default_provider().install_default().is_ok()
}

#[test]
fn what_the_lean_transport_cannot_do_is_refused() {
    let lean = || Options::default().transport(TransportKind::Lean);
    for (o, word) in [
        (lean().http2_prior_knowledge(true), "HTTP/1.1"),
        (lean().proxy("socks5://127.0.0.1:1"), "proxy"),
        (lean().proxy("https://127.0.0.1:1"), "proxy"),
    ] {
        let err = EventSource::with_options("http://127.0.0.1:9/", o).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption);
        assert!(err.message().contains(word), "{}", err.message());
    }
    let err = "bogus".parse::<TransportKind>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
    assert!(err.message().contains("lean"), "{}", err.message());
    assert_eq!("LEAN".parse::<TransportKind>().unwrap(), TransportKind::Lean);
}

#[test]
fn credentials_are_dropped_on_a_cross_origin_redirect() {
    let t = token();
    let q = format!("scenario/cross-origin?t={t}&c1={}", pct(b"data: hi\n\n"));
    let o = fast_default().header("Authorization", "Bearer secret").header("Cookie", "a=b");
    let es = EventSource::with_options(&full().url(&q), o).unwrap();
    expect_hi(&es);
    let reqs = full().requests(&t);
    assert_eq!(reqs.len(), 2);
    assert_eq!(header(&reqs[0], "authorization").as_deref(), Some("Bearer secret"));
    assert_eq!(header(&reqs[1], "authorization"), None);
    assert_eq!(header(&reqs[1], "cookie"), None);
}

/// An https URL that redirects to plain http is refused on both transports (the request, its
/// body and `Last-Event-ID` would go in clear text), unless `allow_https_downgrade` says so.
#[test]
fn an_https_to_http_redirect_is_refused_unless_allowed() {
    for kind in [TransportKind::Default, TransportKind::Lean] {
        // A script that redirects once to a plain-http stream logged under `t`.
        let redirect = |t: &str| {
            let plain = full().url(&stream_path(t));
            full().tls_url(&format!("script?t={t}x&s1=302&loc1={}", pct(plain.as_bytes())))
        };
        let o = fast_default().ca_certs(ca()).transport(kind);
        let t = token();
        let es = EventSource::with_options(&redirect(&t), o.clone()).unwrap();
        let evs = take(&es, 1, Duration::from_secs(10));
        let Some(Event::Error(e)) = evs.first() else { panic!("{kind:?}: {evs:?}") };
        assert_eq!(e.error.kind(), ErrorKind::UnsupportedScheme, "{kind:?}: {:?}", e.error);
        assert!(e.error.message().contains("from https to plain http"), "{}", e.error.message());
        assert_eq!(es.ready_state(), ReadyState::Closed);
        assert!(full().requests(&t).is_empty(), "{kind:?}: the http URL was requested");

        let t = token();
        let es = EventSource::with_options(&redirect(&t), o.allow_https_downgrade(true)).unwrap();
        expect_hi(&es);
        assert_eq!(full().requests(&t).len(), 1);
    }
}
