//! The proxies: each kind forwards to the server and records what it saw, refuses targets that
//! are not loopback, and with configured credentials refuses clients without them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::client;
use reqwest::{Proxy, Version};
use testserver::{Options, ProxyEntry, Server};

fn start() -> Server {
    Server::start_with(Options::new().tls().proxies()).unwrap()
}

/// `scheme://user:password@127.0.0.1:PORT` from a proxy URL.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://{user}:{password}@{rest}")
}

fn only(log: Vec<ProxyEntry>) -> ProxyEntry {
    assert_eq!(log.len(), 1, "{log:?}");
    log.into_iter().next().unwrap()
}

#[tokio::test]
async fn http_proxy_forwards_absolute_form_requests() {
    let s = start();
    let proxy = Proxy::http(with_user(&s.http_proxy_url(), "alice", "secret")).unwrap();
    let c = client(&s).proxy(proxy).build().unwrap();
    let r = c.get(s.url("script?t=px&c1=data%3A%20via%0A%0A")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "data: via\n\n");

    let e = only(s.proxy_log());
    let port = s.port();
    assert_eq!(e.kind, "http");
    assert_eq!(
        e.request,
        format!("GET http://127.0.0.1:{port}/script?t=px&c1=data%3A%20via%0A%0A HTTP/1.1")
    );
    assert_eq!(e.target, format!("127.0.0.1:{port}"));
    assert_eq!(e.proxy_authorization.as_deref(), Some("Basic YWxpY2U6c2VjcmV0"));
    assert_eq!((e.user.as_deref(), e.password.as_deref()), (Some("alice"), Some("secret")));
    assert!(e.allowed && e.status == 200, "{e:?}");
    // The target sees an origin-form request without the proxy's credentials.
    let seen = &s.requests("px")[0];
    assert_eq!(seen.path, "/script");
    assert!(!seen.headers.iter().any(|(n, _)| n.starts_with("proxy-")), "{seen:?}");
    assert_ne!(seen.conn, e.conn);

    // The same over HTTP, filtered by user.
    let text = String::from_utf8(common::get(port, "/proxy-log?user=alice").body).unwrap();
    assert!(text.contains("\"kind\":\"http\",") && text.contains("\"user\":\"alice\""), "{text}");
    assert!(text.contains("\"allowed\":true,\"status\":200"), "{text}");
    assert_eq!(common::get(port, "/proxy-log?user=nobody").body, b"[\n]\n");
}

#[tokio::test]
async fn http_proxy_tunnels_https_with_connect() {
    let s = start();
    let c = client(&s).proxy(Proxy::https(s.http_proxy_url()).unwrap()).build().unwrap();
    let r = c.get(s.tls_url("script?t=tun&c1=tunnelled")).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_2, "ALPN happens end to end, through the tunnel");
    assert_eq!(r.text().await.unwrap(), "tunnelled");
    let tls_port = s.tls_port().unwrap();
    let e = only(s.proxy_log());
    assert_eq!(e.request, format!("CONNECT 127.0.0.1:{tls_port} HTTP/1.1"));
    assert_eq!((e.kind.as_str(), e.target.clone()), ("http", format!("127.0.0.1:{tls_port}")));
    assert!(e.allowed && e.status == 200 && e.proxy_authorization.is_none(), "{e:?}");
    assert!(s.requests("tun")[0].tls);
}

#[tokio::test]
async fn https_proxy_speaks_tls_to_the_client() {
    let s = start();
    let proxy = Proxy::all(with_user(&s.https_proxy_url(), "carol", "pw")).unwrap();
    let c = client(&s).proxy(proxy).build().unwrap();
    let r = c.get(s.url("script?t=hp&c1=plain")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "plain");
    let r = c.get(s.tls_url("script?t=hp2&c1=secure")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "secure");
    let log = s.proxy_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log.iter().all(|e| e.kind == "https" && e.allowed && e.user.as_deref() == Some("carol"))
    );
    assert!(log[0].request.starts_with(&format!("GET http://127.0.0.1:{}/script", s.port())));
    assert!(log[1].request.starts_with("CONNECT 127.0.0.1:"), "{log:?}");
}

#[tokio::test]
async fn socks5_proxy_with_and_without_credentials() {
    let s = start();
    let port = s.port();
    let socks = s.socks5_url();
    let c = client(&s).proxy(Proxy::all(with_user(&socks, "bob", "pw")).unwrap()).build().unwrap();
    let r = c.get(s.url("script?t=sk&c1=socks")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "socks");
    let e = only(s.proxy_log());
    assert_eq!(
        (e.kind.as_str(), e.request.clone()),
        ("socks5", format!("CONNECT 127.0.0.1:{port}"))
    );
    assert_eq!((e.user.as_deref(), e.password.as_deref()), (Some("bob"), Some("pw")));
    assert!(e.allowed && e.status == 0, "{e:?}");

    // socks5h: the proxy gets the host name, not an address.
    let remote_dns = socks.replace("socks5://", "socks5h://");
    let c = client(&s).proxy(Proxy::all(remote_dns).unwrap()).build().unwrap();
    let r = c.get(format!("http://localhost:{port}/script?t=sk2&c1=named")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "named");
    let e = s.proxy_log().pop().unwrap();
    assert_eq!((e.target, e.user), (format!("localhost:{port}"), None));
}

/// Sends a raw request to a proxy port; returns the answer's status line.
fn raw_status(port: u16, request: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A SOCKS5 exchange: greeting `methods`, then (if accepted) CONNECT to `address`
/// (ATYP + address bytes) port 80. Returns the method choice and the reply code.
fn socks_connect(port: u16, methods: &[u8], address: &[u8]) -> (u8, Option<u8>) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = vec![5, methods.len() as u8];
    hello.extend_from_slice(methods);
    c.write_all(&hello).unwrap();
    let mut choice = [0u8; 2];
    c.read_exact(&mut choice).unwrap();
    if choice[1] != 0 {
        return (choice[1], None);
    }
    let mut req = vec![5, 1, 0];
    req.extend_from_slice(address);
    req.extend_from_slice(&80u16.to_be_bytes());
    c.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    c.read_exact(&mut reply).unwrap();
    (choice[1], Some(reply[1]))
}

#[test]
fn proxies_refuse_targets_that_are_not_loopback() {
    let s = start();
    let http = port_of(&s.http_proxy_url());
    let line = raw_status(http, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert!(line.starts_with("HTTP/1.1 403"), "{line}");
    let line = raw_status(http, "CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n");
    assert!(line.starts_with("HTTP/1.1 403"), "{line}");
    let line = raw_status(http, "GET /script HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(line.starts_with("HTTP/1.1 400"), "not a proxy request: {line}");

    let socks = port_of(&s.socks5_url());
    assert_eq!(socks_connect(socks, &[0], &[1, 10, 1, 2, 3]), (0, Some(2)), "IPv4 10.1.2.3");
    let mut name = vec![3, 11];
    name.extend_from_slice(b"example.com");
    assert_eq!(socks_connect(socks, &[0], &name), (0, Some(2)), "a domain name");
    let mut v6 = vec![4];
    v6.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    assert_eq!(socks_connect(socks, &[0], &v6), (0, Some(2)), "IPv6");

    let log = s.proxy_log();
    assert_eq!(log.len(), 6, "{log:?}");
    assert!(log.iter().all(|e| !e.allowed), "{log:?}");
    let targets: Vec<&str> = log.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(
        targets,
        ["example.com:80", "10.0.0.1:443", "", "10.1.2.3:80", "example.com:80", "[2001:db8::1]:80"]
    );
    assert_eq!(log.iter().map(|e| e.status).collect::<Vec<_>>(), [403, 403, 400, 2, 2, 2]);
}

#[tokio::test]
async fn configured_credentials_are_required() {
    let s = Server::start_with(Options::new().tls().proxies().proxy_auth("u", "p")).unwrap();
    let http = port_of(&s.http_proxy_url());
    let target = format!("http://127.0.0.1:{}/script?c1=x", s.port());
    let line = raw_status(http, &format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(line.starts_with("HTTP/1.1 407"), "{line}");

    let right = Proxy::http(with_user(&s.http_proxy_url(), "u", "p")).unwrap();
    let c = client(&s).proxy(right).build().unwrap();
    assert_eq!(c.get(&target).send().await.unwrap().text().await.unwrap(), "x");
    let wrong = Proxy::http(with_user(&s.http_proxy_url(), "u", "nope")).unwrap();
    let c = client(&s).proxy(wrong).build().unwrap();
    let r = c.get(&target).send().await.unwrap();
    assert_eq!(r.status(), 407);
    assert_eq!(r.headers()["proxy-authenticate"], "Basic realm=\"testserver\"");

    let socks = port_of(&s.socks5_url());
    assert_eq!(socks_connect(socks, &[0], &[1, 127, 0, 0, 1]), (0xFF, None), "no-auth refused");
    let good = Proxy::all(with_user(&s.socks5_url(), "u", "p")).unwrap();
    let c = client(&s).proxy(good).build().unwrap();
    assert_eq!(c.get(&target).send().await.unwrap().text().await.unwrap(), "x");
    let bad = Proxy::all(with_user(&s.socks5_url(), "u", "nope")).unwrap();
    let c = client(&s).proxy(bad).build().unwrap();
    assert!(c.get(&target).send().await.is_err());

    let statuses: Vec<(String, u16)> =
        s.proxy_log().into_iter().map(|e| (e.kind, e.status)).collect();
    let want = [
        ("http", 407),
        ("http", 200),
        ("http", 407),
        ("socks5", 255),
        ("socks5", 0),
        ("socks5", 1),
    ];
    assert_eq!(statuses, want.map(|(k, st)| (k.to_owned(), st)));
}
