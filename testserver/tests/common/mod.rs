//! A deliberately plain HTTP/1.1 client over `std::net::TcpStream`, so the tests see exactly
//! what goes over the wire: the head, each chunk of a chunked body, how many reads it took, and
//! whether the chunked terminator ever came.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Resp {
    pub status: u16,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Each chunk of a chunked body, as framed on the wire.
    pub chunks: Vec<Vec<u8>>,
    /// How many `read` calls returned data.
    pub reads: usize,
    /// The body ended properly (chunked terminator, or `Content-Length` reached).
    pub complete: bool,
    /// The server closed the socket (EOF) before we stopped reading.
    pub eof: bool,
    /// We stopped because nothing arrived for the idle timeout.
    pub idle: bool,
    pub elapsed: Duration,
    /// When the response head had arrived.
    pub head_at: Duration,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends one request and reads the response until it is complete, the server closes, nothing
/// arrives for `idle`, or `max_body` body bytes have been read.
pub fn request(
    port: u16,
    method: &str,
    target: &str,
    body: &[u8],
    idle: Duration,
    max_body: usize,
) -> Resp {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(idle)).unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
    );
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();

    let mut resp = Resp::default();
    let mut raw: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut head_len = None;
    loop {
        if let Some(h) = head_len
            && (parse_body(&mut resp, &raw[h..]) || resp.body.len() >= max_body)
        {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => {
                resp.eof = true;
                break;
            }
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if head_len.is_some() {
                    resp.reads += 1;
                }
                if head_len.is_none()
                    && let Some(pos) = raw.windows(4).position(|w| w == b"\r\n\r\n")
                {
                    parse_head(&mut resp, &raw[..pos]);
                    resp.head_at = start.elapsed();
                    head_len = Some(pos + 4);
                    if raw.len() > pos + 4 {
                        resp.reads += 1;
                    }
                    if resp.status == 204 || resp.status == 304 || method == "HEAD" {
                        resp.complete = true;
                        break;
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                resp.idle = true;
                break;
            }
            Err(_) => {
                resp.eof = true;
                break;
            }
        }
    }
    if let Some(h) = head_len {
        parse_body(&mut resp, &raw[h..]);
    }
    resp.elapsed = start.elapsed();
    resp
}

pub fn get(port: u16, target: &str) -> Resp {
    request(port, "GET", target, b"", Duration::from_secs(10), usize::MAX)
}

fn parse_head(resp: &mut Resp, head: &[u8]) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    resp.status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    for line in lines {
        let (n, v) = line.split_once(':').unwrap();
        resp.headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
}

/// Re-decodes the whole body read so far; returns true once it is complete.
fn parse_body(resp: &mut Resp, raw: &[u8]) -> bool {
    resp.body.clear();
    resp.chunks.clear();
    if resp.header("transfer-encoding") == Some("chunked") {
        let mut rest = raw;
        loop {
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return false };
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .expect("chunk size");
            if size == 0 {
                resp.complete = rest.len() >= eol + 4;
                return resp.complete;
            }
            if rest.len() < eol + 2 + size + 2 {
                return false;
            }
            let chunk = &rest[eol + 2..eol + 2 + size];
            resp.body.extend_from_slice(chunk);
            resp.chunks.push(chunk.to_vec());
            rest = &rest[eol + 2 + size + 2..];
        }
    } else if let Some(len) = resp.header("content-length").map(|l| l.parse::<usize>().unwrap()) {
        resp.body.extend_from_slice(&raw[..raw.len().min(len)]);
        resp.complete = raw.len() >= len;
        resp.complete
    } else {
        resp.body.extend_from_slice(raw);
        false
    }
}

/// Polls `GET /log?t=TOKEN` until `pred` holds (or 5 s pass) and returns the JSON text.
pub fn log_until(port: u16, token: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8(get(port, &format!("/log?t={token}")).body).unwrap();
        if pred(&text) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A reqwest client builder that trusts only the server's generated CA and uses no proxy
/// (the environment's proxy variables must not leak into the tests).
pub fn client(server: &testserver::Server) -> reqwest::ClientBuilder {
    // reqwest is built without a crypto provider; the workspace uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(certs) = server.certs() {
        let ca = reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap();
        builder = builder.tls_certs_only([ca]);
    }
    builder
}

/// The client identity signed by the server's CA (for the mTLS listener).
pub fn identity(server: &testserver::Server) -> reqwest::Identity {
    let certs = server.certs().unwrap();
    let pem = format!("{}{}", certs.client_cert_pem, certs.client_key_pem);
    reqwest::Identity::from_pem(pem.as_bytes()).unwrap()
}
