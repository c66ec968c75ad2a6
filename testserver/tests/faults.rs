//! The production-fault scenarios and the LLM-style endpoint, checked on the wire; and the
//! binary's extra listeners.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, get, log_until, request};
use testserver::Server;

const SHORT: Duration = Duration::from_millis(400);

/// Reads until the server ends the connection; returns what came and how it ended.
fn read_to_end_or_error(port: u16, target: &str) -> (Vec<u8>, std::io::Result<()>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[test]
fn reset_cuts_mid_event_and_mid_utf8_with_a_rst() {
    let s = Server::start();
    let (got, end) = read_to_end_or_error(s.port(), "/scenario/reset?t=rs&retry=100");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = b"retry: 100\ndata: one\n\ndata: caf\xC3";
    assert!(got.windows(body.len()).any(|w| w == body), "{text}");
    assert!(!got.ends_with(b"0\r\n\r\n"), "no chunked terminator: {text}");
    assert_eq!(end.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset), "a RST, not a FIN");
    assert_eq!(get(s.port(), "/scenario/reset?t=rs").body, b"data: two\n\n");
    assert_eq!(get(s.port(), "/scenario/reset?t=rs").status, 204);
}

#[tokio::test]
async fn reset_over_http2_ends_the_connection() {
    let s = Server::start();
    let c = client(&s).http2_prior_knowledge().build().unwrap();
    let mut r = c.get(s.url("scenario/reset")).send().await.unwrap();
    assert_eq!(r.chunk().await.unwrap().unwrap(), &b"data: one\n\ndata: caf\xC3"[..]);
    assert!(r.chunk().await.is_err());
}

#[test]
fn no_answer_sends_nothing_until_the_client_leaves() {
    let s = Server::start();
    let r = request(s.port(), "GET", "/scenario/no-answer?t=na", b"", SHORT, usize::MAX);
    assert!(r.idle && r.status == 0 && r.headers.is_empty(), "{r:?}");
    drop(r); // the client goes away
    let log = log_until(s.port(), "na", |l| !l.contains("\"done_ms\":null"));
    assert!(log.contains("/scenario/no-answer") && !log.contains("\"done_ms\":null"), "{log}");
    // Every connection gets the same silence.
    let r = request(s.port(), "GET", "/scenario/no-answer?t=na", b"", SHORT, usize::MAX);
    assert!(r.idle && r.status == 0, "{r:?}");
}

#[test]
fn short_body_declares_more_than_it_sends() {
    let s = Server::start();
    let r = get(s.port(), "/scenario/short-body");
    assert_eq!(r.header("content-length"), Some("113"));
    assert_eq!(r.header("transfer-encoding"), None);
    assert!(r.eof && !r.complete && r.body == b"data: short\n\n", "{r:?}");
    let r = get(s.port(), "/scenario/short-body?declared=20");
    assert_eq!(r.header("content-length"), Some("20"));
    assert!(r.eof && !r.complete, "{r:?}");
}

#[tokio::test]
async fn redirect_loop_points_at_itself() {
    let s = Server::start();
    let r = get(s.port(), "/scenario/redirect-loop?t=rl&code=307");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/scenario/redirect-loop?t=rl&code=307"));
    let c = client(&s).build().unwrap();
    let err = c.get(s.url("scenario/redirect-loop?t=rl2")).send().await.unwrap_err();
    assert!(err.is_redirect(), "{err:?}");
    let hops = s.requests("rl2");
    assert!(hops.len() > 5 && hops.iter().all(|e| e.path == "/scenario/redirect-loop"), "{hops:?}");
}

#[test]
fn instant_close_ends_every_connection_at_once() {
    let s = Server::start();
    for _ in 0..3 {
        let r = get(s.port(), "/scenario/instant-close?t=ic");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"retry: 0\n"[..]));
        assert_eq!(r.header("connection"), Some("close"));
        // The server closes the socket right after the body.
        let (raw, end) = read_to_end_or_error(s.port(), "/scenario/instant-close?t=ic2");
        assert!(raw.ends_with(b"\r\n9\r\nretry: 0\n\r\n0\r\n\r\n") && end.is_ok(), "{end:?}");
    }
    let r = get(s.port(), "/scenario/instant-close?retry=250");
    assert_eq!(r.body, b"retry: 250\n");
    assert_eq!(s.requests("ic").len(), 3);
}

#[test]
fn llm_streams_openai_style_deltas_then_done() {
    let s = Server::start();
    let prompt = br#"{"model":"x","stream":true}"#;
    let r = request(
        s.port(),
        "POST",
        "/llm?t=llm&tokens=3",
        prompt,
        Duration::from_secs(10),
        usize::MAX,
    );
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let want = "data: {\"choices\":[{\"delta\":{\"content\":\"tok1 \"}}]}\n\n\
                data: {\"choices\":[{\"delta\":{\"content\":\"tok2 \"}}]}\n\n\
                data: {\"choices\":[{\"delta\":{\"content\":\"tok3 \"}}]}\n\n\
                data: [DONE]\n\n";
    assert!(r.complete, "{r:?}");
    assert_eq!(String::from_utf8(r.body).unwrap(), want);

    let r = request(
        s.port(),
        "POST",
        "/llm?t=llm&tokens=5&ms=5",
        prompt,
        Duration::from_secs(10),
        usize::MAX,
    );
    assert_eq!(r.chunks.len(), 6, "one write per event when paced");
    let log = s.requests("llm");
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|e| e.method == "POST" && e.body.as_bytes() == prompt));
}

#[test]
fn status_recipes_for_api_errors() {
    let s = Server::start();
    let body =
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
    let r = get(
        s.port(),
        "/script?s1=401&ct1=application%2Fjson&hdr1=x-request-id%3A%20req_123\
         &c1=%7B%22error%22%3A%7B%22message%22%3A%22Incorrect%20API%20key%20provided%22%2C\
         %22type%22%3A%22invalid_request_error%22%7D%7D",
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-request-id"), Some("req_123"));
    assert_eq!(String::from_utf8(r.body).unwrap(), body);
    let r =
        get(s.port(), "/script?s1=429&ct1=application%2Fjson&hdr1=Retry-After%3A%207&c1=%7B%7D");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
}

/// Spawns the binary with `args`; returns it and its stdout lines up to `ready`.
fn spawn(args: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_testserver"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "stdout ended early: {lines:?}");
        let line = line.trim_end().to_owned();
        let done = line == "ready";
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

fn wait_for_exit(mut child: std::process::Child) {
    drop(child.stdin.take()); // closes stdin
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("testserver did not exit when stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn binary_prints_every_listener_and_file() {
    let dir = std::env::temp_dir().join(format!("testserver-bin-test-{}", std::process::id()));
    let dir_arg = dir.to_str().unwrap();
    let (child, lines) =
        spawn(&["--exit-on-eof", "--all", "--cert-dir", dir_arg, "--max-concurrent-streams=4"]);
    let value = |name: &str| -> String {
        let line = lines.iter().find(|l| l.starts_with(&format!("{name} "))).unwrap();
        line.splitn(3, ' ').nth(2).unwrap().to_owned()
    };
    assert!(lines[0].starts_with("listening on http://127.0.0.1:"), "{lines:?}");
    assert_eq!(lines.len(), 10, "{lines:?}");
    let plain = lines[0].trim_start_matches("listening on ").to_owned();
    let ca_path = value("ca-cert");
    assert_eq!(ca_path, dir.join("ca.pem").to_str().unwrap());
    assert_eq!(value("client-cert"), dir.join("client.pem").to_str().unwrap());
    assert_eq!(value("client-key"), dir.join("client.key").to_str().unwrap());

    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).unwrap()).unwrap();
    let builder = || reqwest::Client::builder().no_proxy().tls_certs_only([ca.clone()]);
    let tls = value("tls");
    assert!(tls.starts_with("https://127.0.0.1:"), "{tls}");
    let r = builder().build().unwrap().get(format!("{tls}/script?c1=tls")).send().await.unwrap();
    assert_eq!((r.version(), r.text().await.unwrap().as_str()), (reqwest::Version::HTTP_2, "tls"));
    let pem = std::fs::read_to_string(value("client-cert")).unwrap()
        + &std::fs::read_to_string(value("client-key")).unwrap();
    let id = reqwest::Identity::from_pem(pem.as_bytes()).unwrap();
    let mtls = builder().identity(id).build().unwrap();
    let r = mtls.get(format!("{}/script?c1=m", value("mtls"))).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "m");
    for proxy in ["http-proxy", "https-proxy", "socks5-proxy"] {
        let via = builder().proxy(reqwest::Proxy::all(value(proxy)).unwrap()).build().unwrap();
        let r = via.get(format!("{plain}/script?c1=p")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "p", "{proxy}");
    }
    let log = reqwest::get(format!("{plain}/proxy-log")).await.unwrap().text().await.unwrap();
    assert_eq!(log.matches("\"allowed\":true").count(), 3, "{log}");

    wait_for_exit(child);
    assert!(dir.join("ca.pem").exists(), "a given cert dir is left in place");
    std::fs::remove_dir_all(&dir).unwrap();

    // Without --cert-dir the files go to a temp dir that is removed at exit.
    let (child, lines) = spawn(&["--exit-on-eof", "--tls"]);
    assert_eq!(lines.len(), 7, "{lines:?}");
    let ca = lines.iter().find_map(|l| l.strip_prefix("ca-cert at ")).unwrap().to_owned();
    assert!(std::path::Path::new(&ca).exists());
    wait_for_exit(child);
    assert!(!std::path::Path::new(&ca).parent().unwrap().exists(), "{ca}");
}

#[test]
fn binary_default_output_is_one_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_testserver"))
        .arg("--exit-on-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    drop(child.stdin.take());
    let mut all = String::new();
    BufReader::new(stdout).read_to_string(&mut all).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(all.starts_with("listening on http://127.0.0.1:"), "{all}");
    assert_eq!(all.lines().count(), 1, "{all}");
}
