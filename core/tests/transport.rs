//! The lean transport (the built-in HTTP/1.1 client) against real sockets: raw scripted servers
//! (framing split at every byte, malformed and hostile heads, 1xx, Content-Length,
//! close-delimited bodies), the testserver (redirects, cookies), a tiny forwarding proxy and a
//! tiny TLS server. Its exact wire behaviour and messages are checked here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::*;
use eventsource_core::{ErrorKind, Event, EventSource, Options, ReadyState, TransportKind};

fn lean() -> Options {
    Options::default().transport(TransportKind::Lean)
}

/// `common::fast` on the lean transport.
fn fast() -> Options {
    common::fast().transport(TransportKind::Lean)
}

fn error_of(e: &Event) -> (ReadyState, ErrorKind, String) {
    match e {
        Event::Error(e) => (e.ready_state, e.error.kind(), e.error.message().to_owned()),
        other => panic!("expected an error event, got {}", describe(other)),
    }
}

// ---------------------------------------------------------------------------------------------
// A raw scripted HTTP server: connection k gets replies[k]; later connections get a 204.

#[derive(Clone)]
struct Reply {
    bytes: Vec<u8>,
    /// One byte per write (TCP_NODELAY, 1 ms apart): every framing split happens.
    drip: bool,
    /// Keep the socket open after the bytes, until the client goes away.
    hold: bool,
}

fn reply(bytes: impl AsRef<[u8]>) -> Reply {
    Reply { bytes: bytes.as_ref().to_vec(), drip: false, hold: false }
}

struct Raw {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Raw {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request (head and Content-Length body) from `s`.
fn read_request(s: &mut TcpStream) -> Vec<u8> {
    let mut req = Vec::new();
    let mut byte = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => req.push(byte[0]),
            _ => return req,
        }
    }
    let head = String::from_utf8_lossy(&req).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    req.extend_from_slice(&body);
    req
}

fn raw(replies: Vec<Reply>) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        for (k, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { return };
            let r =
                replies.get(k).cloned().unwrap_or_else(|| reply("HTTP/1.1 204 No Content\r\n\r\n"));
            let log = log.clone();
            std::thread::spawn(move || {
                let req = read_request(&mut s);
                log.lock().unwrap().push(String::from_utf8_lossy(&req).into_owned());
                s.set_nodelay(true).unwrap();
                if r.drip {
                    for b in &r.bytes {
                        if s.write_all(&[*b]).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                } else if s.write_all(&r.bytes).is_err() {
                    return;
                }
                if r.hold {
                    let mut sink = [0u8; 1024];
                    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                }
            });
        }
    });
    Raw { port, requests }
}

const SSE_CHUNKED: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// Body framing

#[test]
fn chunked_framing_split_at_every_byte() {
    // Extensions, upper/lower-case hex, a chunk boundary inside an event, trailers.
    let body = "7;name=value;q=\"x\"\r\ndata: a\r\n\
                0A\r\nbc\n\nid: 5\n\r\n\
                e ; ext\r\ndata: second\n\n\r\n\
                0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n";
    let s = raw(vec![Reply {
        bytes: format!("{SSE_CHUNKED}{body}").into_bytes(),
        drip: true,
        hold: true,
    }]);
    let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
    let evs = take(&es, 5, Duration::from_secs(10));
    let tr: Vec<_> = evs.iter().map(describe).collect();
    assert_eq!(tr, ["open", "message:abc:", "message:second:5", "error(0)", "error(2)"]);
    // The chunked body ended cleanly (terminator + trailers) although the socket stayed open.
    assert_eq!(error_of(&evs[3]).1, ErrorKind::StreamEnded);
}

#[test]
fn testserver_dripped_chunks() {
    let t = token();
    let url = server()
        .url(&format!("script?t={t}&drip=1&c1={}", pct(b"data: one\n\nevent: x\ndata: two\n\n")));
    let es = EventSource::with_options(&url, fast()).unwrap();
    assert_eq!(trace(&es, 4), ["open", "message:one:", "x:two:", "error(0)"]);
}

#[test]
fn content_length_body_ends_even_if_the_socket_stays_open() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 10\r\n\r\n";
    let s = raw(vec![Reply {
        bytes: format!("{head}data: cl\n\ndata: beyond\n\n").into_bytes(),
        drip: false,
        hold: true,
    }]);
    let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
    let evs = take(&es, 4, Duration::from_secs(5));
    let tr: Vec<_> = evs.iter().map(describe).collect();
    assert_eq!(tr, ["open", "message:cl:", "error(0)", "error(2)"]);
    assert_eq!(error_of(&evs[2]).1, ErrorKind::StreamEnded);
}

#[test]
fn close_delimited_body() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    let s = raw(vec![reply(format!("{head}data: a\n\ndata: b\n\n"))]);
    let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
    let evs = take(&es, 5, Duration::from_secs(5));
    let tr: Vec<_> = evs.iter().map(describe).collect();
    assert_eq!(tr, ["open", "message:a:", "message:b:", "error(0)", "error(2)"]);
    assert_eq!(error_of(&evs[3]).1, ErrorKind::StreamEnded);
}

#[test]
fn cut_chunked_body_is_a_network_error() {
    let s = raw(vec![reply(format!("{SSE_CHUNKED}b\r\ndata: a\n\nda"))]);
    let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
    let evs = take(&es, 3, Duration::from_secs(5));
    assert_eq!(describe(&evs[1]), "message:a:");
    let (state, kind, msg) = error_of(&evs[2]);
    assert_eq!((state, kind), (ReadyState::Connecting, ErrorKind::Network), "{msg}");
    assert!(msg.contains("chunked"), "{msg}");
}

#[test]
fn interim_responses_are_skipped() {
    let s = raw(vec![reply(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: after 1xx\n\n",
    )]);
    let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
    assert_eq!(trace(&es, 3), ["open", "message:after 1xx:", "error(0)"]);
}

#[test]
fn duplicate_headers_and_reason_less_status_line() {
    // Set-Cookie twice, Content-Type with parameters, no reason phrase.
    let s = raw(vec![reply(
        "HTTP/1.1 200\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\
         Content-Type: Text/Event-Stream; charset=utf-8\r\n\r\ndata: x\n\n",
    )]);
    let es = EventSource::with_options(&s.url("/"), fast().with_credentials(true)).unwrap();
    assert_eq!(trace(&es, 4), ["open", "message:x:", "error(0)", "error(2)"]);
    let reqs = s.requests();
    assert!(reqs[1].contains("Cookie: a=1; b=2\r\n"), "{}", reqs[1]);
}

// ---------------------------------------------------------------------------------------------
// Hostile and malformed responses: a Network error and a reconnection, never a panic or a hang.

fn first_error(replies: Vec<Reply>) -> (ReadyState, ErrorKind, String) {
    let s = raw(replies);
    let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
    let evs = take(&es, 1, Duration::from_secs(10));
    assert_eq!(evs.len(), 1, "no event");
    error_of(&evs[0])
}

#[test]
fn malformed_heads_reconnect() {
    let cases: Vec<&[u8]> = vec![
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 1x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 5\r\n\
          Content-Length: 6\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n", // cut inside the head
        b"",                                                       // closed without a response
    ];
    for c in cases {
        let (state, kind, msg) = first_error(vec![reply(c)]);
        assert_eq!(
            (state, kind),
            (ReadyState::Connecting, ErrorKind::Network),
            "{:?}: {msg}",
            String::from_utf8_lossy(c)
        );
    }
}

#[test]
fn malformed_chunk_framing_reconnects() {
    for body in ["zz\r\n", "5\r\ndata:XY\r\n", "FFFFFFFFFFFFFFFFF\r\n"] {
        let s = raw(vec![reply(format!("{SSE_CHUNKED}{body}"))]);
        let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
        let evs = take(&es, 2, Duration::from_secs(5));
        assert_eq!(describe(&evs[0]), "open");
        let (state, kind, msg) = error_of(&evs[1]);
        assert_eq!((state, kind), (ReadyState::Connecting, ErrorKind::Network), "{body:?}: {msg}");
    }
}

#[test]
fn huge_heads_are_refused() {
    let big = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n", "x".repeat(70 * 1024));
    let (state, kind, msg) =
        first_error(vec![Reply { bytes: big.into_bytes(), drip: false, hold: true }]);
    assert_eq!((state, kind), (ReadyState::Connecting, ErrorKind::Network), "{msg}");
    assert!(msg.contains("64 KiB"), "{msg}");

    let mut many = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let (state, kind, msg) = first_error(vec![reply(many)]);
    assert_eq!((state, kind), (ReadyState::Connecting, ErrorKind::Network), "{msg}");
    assert!(msg.contains("header fields"), "{msg}");
}

#[test]
fn endless_chunk_extension_is_bounded() {
    let body = format!("{SSE_CHUNKED}5;{}", "e".repeat(10_000));
    let s = raw(vec![Reply { bytes: body.into_bytes(), drip: false, hold: true }]);
    let es = EventSource::with_options(&s.url("/"), fast()).unwrap();
    let evs = take(&es, 2, Duration::from_secs(5));
    let (_, kind, msg) = error_of(&evs[1]);
    assert_eq!(kind, ErrorKind::Network, "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn request_head_is_well_formed() {
    let s = raw(vec![]);
    let o = fast().method("POST").body("x=1").header("Cache-Control", "max-age=0");
    let es = EventSource::with_options(&s.url("/p/a?q=1#frag"), o).unwrap();
    assert_eq!(trace(&es, 1), ["error(2)"]); // 204
    let req = &s.requests()[0];
    let (head, body) = req.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("POST /p/a?q=1 HTTP/1.1"));
    let fields: Vec<_> = lines.map(|l| l.to_ascii_lowercase()).collect();
    let port = s.port;
    for want in [
        format!("host: 127.0.0.1:{port}"),
        "accept: text/event-stream".into(),
        "cache-control: max-age=0".into(),
        "pragma: no-cache".into(),
        "content-length: 3".into(),
    ] {
        assert!(fields.contains(&want), "{want} missing in {fields:?}");
    }
    assert!(!fields.iter().any(|f| f.starts_with("cache-control: no-cache")), "{fields:?}");
    assert_eq!(body, "x=1");
}

// ---------------------------------------------------------------------------------------------
// Redirects (testserver)

#[test]
fn see_other_turns_post_into_get_and_307_keeps_it() {
    for (code, method, body) in [
        (303, "GET", ""),
        (302, "GET", ""),
        (301, "GET", ""),
        (307, "POST", "b=1"),
        (308, "POST", "b=1"),
    ] {
        let t = token();
        let target = format!("/script?t={t}&c1={}", pct(b"data: x\n\n"));
        let url =
            server().url(&format!("redirect?t={t}&code={code}&to={}", pct(target.as_bytes())));
        let o = fast()
            .method("POST")
            .body("b=1")
            .header("Content-Type", "application/x-www-form-urlencoded");
        let es = EventSource::with_options(&url, o).unwrap();
        assert_eq!(trace(&es, 2), ["open", "message:x:"], "{code}");
        es.close();
        let l = log(&t);
        assert_eq!(l[0].method, "POST", "{code}");
        assert_eq!((l[1].method.as_str(), l[1].body.as_str()), (method, body), "{code}");
        assert_eq!(header(&l[1], "content-type").is_some(), method == "POST", "{code}");
    }
}

#[test]
fn cross_origin_redirect_drops_credentials_headers_and_reconnects_from_the_original_url() {
    let t = token();
    let o = fast()
        .header("Authorization", "Bearer secret")
        .header("Cookie", "c=1")
        .header("X-Keep", "k");
    let target = format!(
        "http://localhost:{}/script?t={t}&c1={}&c2={}",
        server().port(),
        pct(b"data: a\n\n"),
        pct(b"data: b\n\n")
    );
    let url = server().url(&format!("redirect?t={t}&code=302&to={}", pct(target.as_bytes())));
    let es = EventSource::with_options(&url, o).unwrap();
    let evs = take(&es, 5, Duration::from_secs(10));
    let tr: Vec<_> = evs.iter().map(describe).collect();
    assert_eq!(tr, ["open", "message:a:", "error(0)", "open", "message:b:"]);
    let Event::Message(m) = &evs[1] else { panic!() };
    assert_eq!(m.origin.as_str(), format!("http://localhost:{}", server().port()));
    assert_eq!(es.url(), url);
    es.close();
    let l = log(&t);
    let paths: Vec<_> = l.iter().map(|e| e.path.as_str()).collect();
    // Each connection starts again at the original URL.
    assert_eq!(paths, ["/redirect", "/script", "/redirect", "/script"]);
    assert_eq!(header(&l[0], "authorization").as_deref(), Some("Bearer secret"));
    assert_eq!(header(&l[0], "cookie").as_deref(), Some("c=1"));
    assert_eq!(header(&l[1], "authorization"), None);
    assert_eq!(header(&l[1], "cookie"), None);
    assert_eq!(header(&l[1], "x-keep").as_deref(), Some("k"));
    assert_eq!(header(&l[1], "host"), Some(format!("localhost:{}", server().port())));
}

#[test]
fn same_origin_redirect_keeps_authorization_and_relative_location_resolves() {
    let t = token();
    let url = server().url(&format!(
        "script?t={t}&s1=302&loc1={}",
        pct(format!("script?t={t}&c2={}", pct(b"data: here\n\n")).as_bytes())
    ));
    let es = EventSource::with_options(&url, fast().header("Authorization", "Bearer s")).unwrap();
    assert_eq!(trace(&es, 2), ["open", "message:here:"]);
    es.close();
    let l = log(&t);
    assert_eq!(header(&l[1], "authorization").as_deref(), Some("Bearer s"));
}

#[test]
fn redirect_to_another_scheme_fails() {
    let url = server().url(&format!("redirect?code=302&to={}", pct(b"ftp://example.com/x")));
    let es = EventSource::with_options(&url, fast()).unwrap();
    let evs = take(&es, 2, Duration::from_secs(5));
    assert_eq!(evs.len(), 1);
    let (state, kind, _) = error_of(&evs[0]);
    assert_eq!((state, kind), (ReadyState::Closed, ErrorKind::UnsupportedScheme));
}

#[test]
fn redirect_without_location_is_a_failed_status() {
    let t = token();
    let es =
        EventSource::with_options(&server().url(&format!("script?t={t}&s1=302")), fast()).unwrap();
    let evs = take(&es, 2, Duration::from_secs(5));
    let (state, kind, _) = error_of(&evs[0]);
    assert_eq!((state, kind), (ReadyState::Closed, ErrorKind::HttpStatus));
}

// ---------------------------------------------------------------------------------------------
// Proxy

/// A forwarding HTTP proxy: records each request head, connects to the origin named by the
/// absolute-form target and pipes bytes both ways.
fn proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let req = read_request(&mut client);
                let text = String::from_utf8_lossy(&req).into_owned();
                log.lock().unwrap().push(text.clone());
                let target = text.split(' ').nth(1).unwrap_or("").to_owned();
                if text.starts_with("CONNECT ") {
                    let Ok(upstream) = TcpStream::connect(&target) else { return };
                    client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").unwrap();
                    return pipe(client, upstream);
                }
                let authority = target
                    .strip_prefix("http://")
                    .and_then(|r| r.split('/').next())
                    .unwrap_or("")
                    .to_owned();
                let Ok(mut upstream) = TcpStream::connect(&authority) else { return };
                upstream.write_all(&req).unwrap();
                pipe(client, upstream);
            });
        }
    });
    (port, seen)
}

fn pipe(mut client: TcpStream, mut upstream: TcpStream) {
    let mut up2 = upstream.try_clone().unwrap();
    let mut client2 = client.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client2, &mut up2);
        let _ = up2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
}

#[test]
fn plain_http_through_a_proxy_uses_the_absolute_form() {
    let (port, seen) = proxy();
    let t = token();
    let url = server().url(&format!("script?t={t}&c1={}", pct(b"data: via proxy\n\n")));
    let o = fast().proxy(format!("http://user:p%40ss@127.0.0.1:{port}"));
    let es = EventSource::with_options(&url, o).unwrap();
    assert_eq!(trace(&es, 2), ["open", "message:via proxy:"]);
    es.close();
    let seen = seen.lock().unwrap();
    let first = seen[0].lines().next().unwrap().to_owned();
    assert_eq!(first, format!("GET {url} HTTP/1.1"));
    // "user:p@ss" in base64.
    assert!(seen[0].contains("Proxy-Authorization: Basic dXNlcjpwQHNz\r\n"), "{}", seen[0]);
    assert_eq!(server().requests(&t).len(), 1);
}

#[test]
fn unusable_proxy_settings_are_construction_errors() {
    for p in ["ftp://127.0.0.1:1", "socks5://127.0.0.1:1", "http://"] {
        let err = EventSource::with_options("http://127.0.0.1:9/", lean().proxy(p)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOption, "{p}");
    }
}

#[test]
fn dead_proxy_is_a_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = fast().proxy(format!("127.0.0.1:{port}"));
    let es = EventSource::with_options("http://example.invalid/", o).unwrap();
    let (state, kind, msg) = error_of(&take(&es, 1, Duration::from_secs(5))[0]);
    assert_eq!((state, kind), (ReadyState::Connecting, ErrorKind::Connect), "{msg}");
    assert!(msg.contains("proxy"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// TLS

struct Tls {
    port: u16,
    pem: std::path::PathBuf,
    _rt: tokio::runtime::Runtime,
}

/// A TLS server with a fresh self-signed certificate for localhost/127.0.0.1 that answers
/// every connection with one event and closes.
fn tls_server() -> Tls {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let pem = std::env::temp_dir().join(format!("es-test-{}-{}.pem", std::process::id(), token()));
    std::fs::write(&pem, ck.cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else { return };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let alpn = s.get_ref().1.alpn_protocol().map(|p| p.to_vec());
                let data = format!("data: tls alpn={}\n\n", String::from_utf8_lossy(&alpn.unwrap_or_default()));
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{data}",
                    data.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Tls { port, pem, _rt: rt }
}

#[test]
fn tls_with_ca_certs_and_accept_invalid_certs() {
    let srv = tls_server();
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/", srv.port);
        let es = EventSource::with_options(&url, fast().ca_certs(&srv.pem)).unwrap();
        let evs = take(&es, 2, Duration::from_secs(10));
        assert_eq!(
            evs.iter().map(describe).collect::<Vec<_>>(),
            ["open", "message:tls alpn=http/1.1:"],
            "{host}"
        );
        let Event::Message(m) = &evs[1] else { panic!() };
        assert_eq!(m.origin.as_str(), format!("https://{host}:{}", srv.port));
        es.close();
    }
    let url = format!("https://localhost:{}/", srv.port);
    let es = EventSource::with_options(&url, fast().accept_invalid_certs(true)).unwrap();
    assert_eq!(trace(&es, 2), ["open", "message:tls alpn=http/1.1:"]);
    es.close();
    // Through a proxy: CONNECT, then TLS inside the tunnel.
    let (pport, seen) = proxy();
    let o = fast().ca_certs(&srv.pem).proxy(format!("http://127.0.0.1:{pport}"));
    let es = EventSource::with_options(&url, o).unwrap();
    assert_eq!(trace(&es, 2), ["open", "message:tls alpn=http/1.1:"]);
    es.close();
    let first = seen.lock().unwrap()[0].clone();
    let want =
        format!("CONNECT localhost:{} HTTP/1.1\r\nHost: localhost:{}\r\n", srv.port, srv.port);
    assert!(first.starts_with(&want), "{first}");
    // Not trusted by default: a Connect error, then reconnection.
    let es = EventSource::with_options(&url, fast()).unwrap();
    let (state, kind, msg) = error_of(&take(&es, 1, Duration::from_secs(10))[0]);
    assert_eq!((state, kind), (ReadyState::Connecting, ErrorKind::Connect), "{msg}");
    assert!(msg.contains("TLS"), "{msg}");
    es.close();
    let _ = std::fs::remove_file(&srv.pem);
}

#[test]
fn bad_ca_files_are_construction_errors() {
    let path = std::env::temp_dir().join(format!("es-test-bad-{}.pem", std::process::id()));
    std::fs::write(&path, "not a certificate").unwrap();
    let err =
        EventSource::with_options("https://127.0.0.1:9/", lean().ca_certs(&path)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOption);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn url_user_info_never_goes_into_a_proxys_request_line() {
    // RFC 9110 §4.2.4: the credentials go in Authorization, not in the absolute form.
    let (port, seen) = proxy();
    let t = token();
    let path = format!("script?t={t}&c1={}", pct(b"data: x\n\n"));
    let url = server().url(&path).replace("http://", "http://alice:s3cret@");
    let es =
        EventSource::with_options(&url, fast().proxy(format!("http://127.0.0.1:{port}"))).unwrap();
    assert_eq!(trace(&es, 2), ["open", "message:x:"]);
    es.close();
    let seen = seen.lock().unwrap();
    let first = seen[0].lines().next().unwrap().to_owned();
    assert_eq!(first, format!("GET {} HTTP/1.1", server().url(&path)));
    assert!(!seen[0].contains("s3cret@"), "{}", seen[0]);
    // "alice:s3cret" in base64.
    assert!(seen[0].contains("Authorization: Basic YWxpY2U6czNjcmV0\r\n"), "{}", seen[0]);
}

#[test]
fn proxy_passwords_never_appear_in_messages() {
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let proxy = format!("http://user:hunter2@127.0.0.1:{dead}");
    let es = EventSource::with_options("http://example.invalid/", fast().proxy(proxy)).unwrap();
    let (_, kind, msg) = error_of(&take(&es, 1, Duration::from_secs(5))[0]);
    assert_eq!(kind, ErrorKind::Connect);
    assert!(msg.contains("proxy") && !msg.contains("hunter2"), "{msg}");
    let err = EventSource::with_options(
        "http://127.0.0.1:9/",
        lean().proxy("socks5://user:hunter2@127.0.0.1:1"),
    )
    .unwrap_err();
    assert!(!err.message().contains("hunter2"), "{}", err.message());
}

#[test]
fn a_request_the_server_never_reads_times_out() {
    // A 32 MiB POST to a server that accepts and never reads: each piece of the request must
    // go within the read timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let conn = listener.accept().map(|(s, _)| s);
        std::thread::sleep(Duration::from_secs(5));
        drop(conn);
    });
    let o = fast()
        .method("POST")
        .body(vec![b'x'; 32 << 20])
        .read_timeout(Some(Duration::from_millis(300)));
    let es = EventSource::with_options(&format!("http://127.0.0.1:{port}/"), o).unwrap();
    let evs = take(&es, 1, Duration::from_secs(4));
    assert_eq!(evs.len(), 1, "no error within 4 s");
    let (state, kind, msg) = error_of(&evs[0]);
    assert_eq!((state, kind), (ReadyState::Closed, ErrorKind::Timeout), "{msg}");
    es.close();
    held.join().unwrap();
}

#[test]
fn a_user_proxy_authorization_is_dropped_on_a_cross_origin_redirect() {
    let t = token();
    let q = format!("scenario/cross-origin?t={t}&c1={}", pct(b"data: x\n\n"));
    let o = fast().header("Proxy-Authorization", "Basic c2VjcmV0");
    let es = EventSource::with_options(&server().url(&q), o).unwrap();
    assert_eq!(trace(&es, 2), ["open", "message:x:"]);
    let reqs = server().requests(&t);
    assert_eq!(header(&reqs[0], "proxy-authorization").as_deref(), Some("Basic c2VjcmV0"));
    assert_eq!(header(&reqs[1], "proxy-authorization"), None);
}
