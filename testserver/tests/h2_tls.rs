//! HTTP/2 and TLS: ALPN on the TLS listener, h2c with prior knowledge on the plain port, mTLS,
//! what the request log records about connections, and `SETTINGS_MAX_CONCURRENT_STREAMS`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{client, identity};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::Version;
use testserver::{Options, Server};

#[tokio::test]
async fn tls_alpn_serves_h2_and_http1() {
    let s = Server::start_with(Options::new().tls()).unwrap();
    let h2 = client(&s).build().unwrap();
    let r = h2.get(s.tls_url("script?t=h2&c1=data%3A%20hi%0A%0A")).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.bytes().await.unwrap(), "data: hi\n\n");

    let h1 = client(&s).http1_only().build().unwrap();
    let r = h1.get(s.tls_url("script?t=h1&c1=x")).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(r.bytes().await.unwrap(), "x");

    let e2 = &s.requests("h2")[0];
    assert_eq!((e2.version.as_str(), e2.tls, e2.client_cert), ("HTTP/2.0", true, false));
    let e1 = &s.requests("h1")[0];
    assert_eq!((e1.version.as_str(), e1.tls), ("HTTP/1.1", true));
    assert_ne!(e1.conn, e2.conn);

    // The same facts over HTTP, read over HTTP/2.
    let log = h2.get(s.tls_url("log?t=h2")).send().await.unwrap().text().await.unwrap();
    let want =
        format!("\"version\":\"HTTP/2.0\",\"conn\":{},\"tls\":true,\"client_cert\":false", e2.conn);
    assert!(log.contains(&want), "{log}");

    // The leaf also names localhost; a generated stream arrives whole over HTTP/2.
    let port = s.tls_port().unwrap();
    let r = h2.get(format!("https://localhost:{port}/stream?count=500")).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.text().await.unwrap().matches("data: ").count(), 500);
}

#[tokio::test]
async fn tls_is_refused_without_the_ca() {
    let s = Server::start_with(Options::new().tls()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let stranger = reqwest::Client::builder().no_proxy().build().unwrap();
    let err = stranger.get(s.tls_url("script?c1=x")).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn h2c_prior_knowledge_on_the_plain_port() {
    let s = Server::start();
    let c = client(&s).http2_prior_knowledge().build().unwrap();
    let r = c.get(s.url("scenario/tricky?t=h2c&drip=1")).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.bytes().await.unwrap(), testserver::TRICKY);
    let e = &s.requests("h2c")[0];
    assert_eq!((e.version.as_str(), e.tls, e.client_cert), ("HTTP/2.0", false, false));
    assert_eq!(e.headers.iter().find(|(n, _)| n == "host"), None, "h2 sends :authority");

    // HTTP/1.1 still works on the same port, on another connection.
    let h1 = client(&s).http1_only().build().unwrap();
    let r = h1.get(s.url("script?t=h2c&c1=x&c2=y")).send().await.unwrap();
    assert_eq!((r.version(), r.text().await.unwrap().as_str()), (Version::HTTP_11, "x"));
    let e = &s.requests("h2c")[1];
    assert_eq!(e.version, "HTTP/1.1");
    assert_eq!(s.connections("h2c").len(), 2);
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_ca() {
    let s = Server::start_with(Options::new().tls()).unwrap();
    let with = client(&s).identity(identity(&s)).build().unwrap();
    let r = with.get(s.mtls_url("script?t=m&c1=ok")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (200, Version::HTTP_2));
    assert_eq!(r.text().await.unwrap(), "ok");
    let e = &s.requests("m")[0];
    assert!(e.tls && e.client_cert, "{e:?}");

    let without = client(&s).build().unwrap();
    let refused = without.get(s.mtls_url("script?t=m2&c1=ok")).send().await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(s.requests("m2").is_empty());

    // The plain TLS listener takes a client certificate when offered, and records it.
    let r = with.get(s.tls_url("script?t=m3&c1=ok")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.requests("m3")[0].client_cert);

    // The files clients in other languages load.
    let certs = s.certs().unwrap();
    assert_eq!(std::fs::read_to_string(&certs.ca_path).unwrap(), certs.ca_pem);
    assert!(
        std::fs::read_to_string(&certs.client_cert_path).unwrap().contains("BEGIN CERTIFICATE")
    );
    assert!(std::fs::read_to_string(&certs.client_key_path).unwrap().contains("PRIVATE KEY"));
    let dir = certs.dir.clone();
    drop(s);
    assert!(!dir.exists(), "the temp cert dir goes away with the server");
}

#[tokio::test]
async fn cross_origin_stays_on_the_listener() {
    let s = Server::start_with(Options::new().tls()).unwrap();
    let c = client(&s).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = c.get(s.tls_url("scenario/cross-origin?c1=x")).send().await.unwrap();
    let want = format!("https://localhost:{}/script?c1=x", s.tls_port().unwrap());
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (302, &*want));
}

/// An HTTP/2 connection with prior knowledge, driven on its own task.
async fn h2_connection(port: u16) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

fn get(port: u16, path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://127.0.0.1:{port}{path}")).body(Empty::new()).unwrap()
}

#[tokio::test]
async fn connections_are_counted_per_token() {
    let s = Server::start();
    let port = s.port();
    let sender = h2_connection(port).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let mut sender = sender.clone();
        tasks.spawn(async move {
            let resp = sender.send_request(get(port, "/stream?t=many&count=3")).await.unwrap();
            resp.into_body().collect().await.unwrap().to_bytes().len()
        });
    }
    while let Some(len) = tasks.join_next().await {
        assert!(len.unwrap() > 0);
    }
    for _ in 0..2 {
        common::get(port, "/stream?t=many&count=1");
    }
    let ids = s.connections("many");
    assert_eq!(ids.len(), 3, "one h2 connection and two HTTP/1.1 ones: {ids:?}");
    assert_eq!(s.requests("many").iter().filter(|e| e.conn == ids[0]).count(), 50);
    let text = String::from_utf8(common::get(port, "/connections?t=many").body).unwrap();
    let want =
        format!("\"requests\":52,\"connections\":3,\"ids\":[{},{},{}]}}", ids[0], ids[1], ids[2]);
    assert!(text.starts_with("{\"accepted\":") && text.contains(&want), "{text}");
}

#[tokio::test]
async fn max_concurrent_streams_caps_each_connection() {
    let s = Server::start_with(Options::new().max_concurrent_streams(2)).unwrap();
    let port = s.port();
    let mut sender = h2_connection(port).await;
    // Two streams that stay open use up the allowance...
    let held1 = sender.send_request(get(port, "/stream?t=cap&count=1&hold=1")).await.unwrap();
    let held2 = sender.send_request(get(port, "/stream?t=cap&count=1&hold=1")).await.unwrap();
    assert_eq!(held2.status(), 200);
    // ...so a third waits in the client until one of them ends.
    let mut third_sender = sender.clone();
    let third = tokio::spawn(async move {
        let resp = third_sender.send_request(get(port, "/stream?t=cap&count=2")).await.unwrap();
        resp.into_body().collect().await.unwrap().to_bytes()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.requests("cap").len(), 2, "the third stream must not be opened yet");
    drop(held1); // the client resets the stream, which frees a slot
    let body = tokio::time::timeout(Duration::from_secs(10), third).await.unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&body).matches("data: ").count(), 2);
    let entries = s.requests("cap");
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.conn == entries[0].conn && e.version == "HTTP/2.0"));
    drop(held2);
}
