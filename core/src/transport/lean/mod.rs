//! The lean transport: our HTTP/1.1 client for event streams. One request per connection, the
//! socket read in the connection task itself, and no buffer held while a stream is idle — the
//! least memory per source, for processes that hold thousands of streams.
//!
//! - [`connect`]: DNS, TCP, proxies (the `proxy` option, or the environment as reqwest reads
//!   it), TLS;
//! - [`http1`]: response heads and body framing;

mod connect;
pub(crate) mod http1;

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use url::{Position, Url};

use connect::{Io, Proxies, Proxy};
use http1::{Decoder, Head};

use super::tls;
use super::{BoxFuture, Request, Transport};
use crate::{Error, ErrorKind};

/// The first read buffer size after an idle period; reads that fill it double it.
const MIN_READ: usize = 4 * 1024;
/// The largest read buffer.
const MAX_READ: usize = 64 * 1024;
/// Below this much free room a new read buffer is taken.
const MIN_SPARE: usize = 1024;
/// Interim (1xx) responses skipped before the real one, at most.
const MAX_INTERIM: usize = 16;

/// Transport settings shared by the sources that have the same ones.
#[derive(Debug)]
pub(crate) struct Client {
    connect_timeout: Option<Duration>,
    max_redirects: usize,
    allow_https_downgrade: bool,
    proxies: Proxies,
    tls: tls::Settings,
}

/// A response whose head has been read; its body is read through [`Body`].
pub(crate) struct Response {
    pub status: u16,
    pub reason: String,
    /// Lowercase names, values as (lossy) UTF-8.
    pub headers: Vec<(String, String)>,
    /// The serialized origin of the final URL.
    pub origin: String,
    location: Option<String>,
    pub body: Body,
}

impl Transport for Client {
    fn open<'a>(&'a self, req: &'a Request<'a>) -> BoxFuture<'a, Result<super::Response, Error>> {
        Box::pin(async move {
            let r = self.open_url(req.url, req).await?;
            Ok(super::Response {
                status: r.status,
                reason: r.reason,
                headers: r.headers,
                origin: r.origin,
                body: super::Body::Lean(r.body),
            })
        })
    }
}

impl Client {
    /// Validates the transport options (proxy URL, TLS files) into a client.
    pub(crate) fn new(
        connect_timeout: Option<Duration>,
        max_redirects: usize,
        allow_https_downgrade: bool,
        proxy: Option<&str>,
        tls: tls::Settings,
    ) -> Result<Client, Error> {
        let invalid = |msg: String| Error::new(ErrorKind::InvalidOption, msg);
        let proxies = match proxy {
            Some(p) => Proxies::Explicit(Proxy::parse(p).map_err(invalid)?),
            None => Proxies::from_env().map_err(invalid)?,
        };
        if !tls.is_default() {
            // Build (and cache) the TLS configuration now: a bad file is a construction error.
            tls::config(&tls, tls::Alpn::Http1).map_err(invalid)?;
        }
        Ok(Client { connect_timeout, max_redirects, allow_https_downgrade, proxies, tls })
    }

    /// Sends the request and follows redirects; returns the final response once its head is in.
    /// Reconnections start again from `original`. Errors are fatal or not per
    /// [`Error::is_fatal`].
    async fn open_url(&self, original: &Url, req: &Request<'_>) -> Result<Response, Error> {
        let mut url = original.clone();
        let mut hop =
            Hop { method: req.method, body: req.body, cross_origin: false, body_dropped: false };
        let mut hops = 0;
        loop {
            let resp = self.exchange(&url, req, &hop).await?;
            let code = resp.status;
            if !matches!(code, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let Some(loc) = resp.location.as_deref() else { return Ok(resp) };
            let next = url.join(loc).map_err(|e| {
                let msg = format!("the server redirected to an invalid URL {loc:?}: {e}");
                Error::new(ErrorKind::Network, msg)
            })?;
            if hops >= self.max_redirects {
                let msg = format!(
                    "too many redirects: more than {} (the last one: HTTP {code} to {:?})",
                    self.max_redirects,
                    super::redact(next.as_str())
                );
                return Err(Error::new(ErrorKind::TooManyRedirects, msg));
            }
            hops += 1;
            if !matches!(next.scheme(), "http" | "https") {
                let msg =
                    format!("the server redirected to {next}, which is not an http or https URL");
                return Err(Error::new(ErrorKind::UnsupportedScheme, msg));
            }
            if url.scheme() == "https" && next.scheme() == "http" && !self.allow_https_downgrade {
                return Err(super::downgrade_refused(&url, &next));
            }
            // Fetch: 303 (and 301/302 after POST) turn into a GET without body.
            let to_get = (code == 303 && !matches!(hop.method, "GET" | "HEAD"))
                || (matches!(code, 301 | 302) && hop.method == "POST");
            if to_get {
                hop.method = "GET";
                hop.body = None;
                hop.body_dropped = true;
            }
            if next.origin() != url.origin() {
                hop.cross_origin = true;
            }
            drop(resp);
            url = next;
        }
    }

    /// One request/response on a new connection.
    async fn exchange(
        &self,
        url: &Url,
        req: &Request<'_>,
        hop: &Hop<'_>,
    ) -> Result<Response, Error> {
        let proxy = self.proxies.for_url(url);
        let proxy = proxy.as_ref();
        let tls = || tls::config(&self.tls, tls::Alpn::Http1);
        let est = connect::establish(url, proxy, tls);
        let (mut io, absolute) = match self.connect_timeout {
            Some(t) => tokio::time::timeout(t, est).await.map_err(|_| {
                let to = match proxy {
                    Some(p) => format!("proxy {}", p.shown()),
                    None => url.host_str().unwrap_or("").to_owned(),
                };
                let msg = format!("cannot connect to {to} within the connect timeout ({t:?})");
                Error::new(ErrorKind::Timeout, msg)
            })??,
            None => est.await?,
        };
        let cookie = req.jar.and_then(|j| j.header(url));
        let request = write_request(url, absolute, proxy, req, hop, cookie);
        // A server that stops reading the request must not hold the source for ever: each
        // piece of it must go within the read timeout (else the connect timeout).
        let stall = req.read_timeout.or(self.connect_timeout);
        for piece in request.chunks(64 << 10) {
            let sent = match stall {
                Some(t) => tokio::time::timeout(t, io.write_all(piece)).await.map_err(|_| {
                    let msg = format!(
                        "cannot send the request to {}: the server took no data for {t:?}",
                        url.host_str().unwrap_or("")
                    );
                    Error::new(ErrorKind::Timeout, msg)
                })?,
                None => io.write_all(piece).await,
            };
            sent.map_err(|e| {
                let msg =
                    format!("cannot send the request to {}: {e}", url.host_str().unwrap_or(""));
                Error::new(ErrorKind::Network, msg).with_source(e)
            })?;
        }
        drop(request);
        let mut body = Body { io, buf: BytesMut::new(), next: MIN_READ, decoder: Decoder::Close };
        let head = match req.head_timeout() {
            Some((t, err)) => {
                tokio::time::timeout(t, body.read_head()).await.map_err(|_| err())??
            }
            None => body.read_head().await?,
        };
        if let Some(j) = req.jar {
            for v in head.all("set-cookie") {
                j.store(url, v);
            }
        }
        body.decoder = http1::decoder_for(&head)
            .map_err(|m| Error::new(ErrorKind::Network, format!("malformed HTTP response: {m}")))?;
        Ok(Response {
            status: head.status,
            reason: http1::reason(head.status, &head.reason),
            origin: url.origin().ascii_serialization(),
            location: head.get("location").map(|l| String::from_utf8_lossy(l).into_owned()),
            headers: head
                .headers
                .into_iter()
                .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                .collect(),
            body,
        })
    }
}

/// What changes along a redirect chain.
struct Hop<'a> {
    method: &'a str,
    body: Option<&'a Bytes>,
    /// A hop went to another origin: credentials headers are no longer sent.
    cross_origin: bool,
    /// The method became GET: request-body headers are no longer sent.
    body_dropped: bool,
}

fn is(name: &str, list: &[&str]) -> bool {
    list.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Serializes the request head and body into a temporary buffer.
fn write_request(
    url: &Url,
    absolute: bool,
    proxy: Option<&Proxy>,
    req: &Request<'_>,
    hop: &Hop<'_>,
    cookie: Option<String>,
) -> Vec<u8> {
    let body = hop.body.map_or(&[][..], |b| &b[..]);
    let mut out = Vec::with_capacity(256 + body.len());
    let path = &url[Position::BeforePath..Position::AfterQuery];
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    // The absolute form (to a proxy) never carries the URL's user info (RFC 9110 §4.2.4): the
    // credentials go in `Authorization`, below.
    let absolute_target;
    let target = if absolute {
        absolute_target = format!("{}://{host}{path}", url.scheme());
        &absolute_target
    } else {
        path
    };
    let mut user_host = None;
    let mut user_auth = false;
    let mut user_cookie = None;
    let (mut cache_control, mut pragma) = (false, false);
    let mut kept: Vec<&(String, String)> = Vec::with_capacity(req.headers.len());
    for h in req.headers {
        let n = h.0.as_str();
        if is(n, &["accept", "content-length", "transfer-encoding", "connection"])
            || (hop.cross_origin
                && is(n, &["authorization", "cookie", "host", "proxy-authorization"]))
            || (hop.body_dropped
                && is(
                    n,
                    &["content-type", "content-encoding", "content-language", "content-location"],
                ))
        {
            continue;
        }
        if is(n, &["host"]) {
            user_host = Some(h.1.as_str());
            continue;
        }
        if is(n, &["cookie"]) {
            user_cookie = Some(h.1.as_str());
            continue;
        }
        user_auth |= is(n, &["authorization"]);
        cache_control |= is(n, &["cache-control"]);
        pragma |= is(n, &["pragma"]);
        kept.push(h);
    }
    out.extend_from_slice(hop.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    line("Host", user_host.unwrap_or(&host).as_bytes());
    line("Accept", b"text/event-stream");
    if !cache_control {
        line("Cache-Control", b"no-cache");
    }
    if !pragma {
        line("Pragma", b"no-cache");
    }
    for (n, v) in kept {
        line(n, v.as_bytes());
    }
    if !user_auth && !url.username().is_empty() {
        let auth = connect::basic_auth(
            &connect::pct_decode(url.username()),
            &connect::pct_decode(url.password().unwrap_or("")),
        );
        line("Authorization", auth.as_bytes());
    }
    match (user_cookie, cookie) {
        (Some(u), Some(j)) => line("Cookie", format!("{u}; {j}").as_bytes()),
        (Some(c), None) => line("Cookie", c.as_bytes()),
        (None, Some(c)) => line("Cookie", c.as_bytes()),
        (None, None) => {}
    }
    if let Some(id) = req.last_event_id {
        line("Last-Event-ID", id);
    }
    if absolute && let Some(a) = proxy.and_then(|p| p.auth.as_deref()) {
        line("Proxy-Authorization", a.as_bytes());
    }
    if hop.body.is_some() || matches!(hop.method, "POST" | "PUT" | "PATCH") {
        line("Content-Length", body.len().to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The response body: the connection and its read buffer.
pub(crate) struct Body {
    io: Io,
    /// Unconsumed bytes; empty (no allocation) while the stream is idle.
    buf: BytesMut,
    /// The size of the next read buffer, adapted to how much each read gets.
    next: usize,
    decoder: Decoder,
}

impl Body {
    /// Waits for the next bytes from the network and appends them to the buffer. `Ok(false)`
    /// at end of file. A plain TCP connection takes a buffer only once data is ready, and
    /// gives it back whenever the socket is drained and the buffer is empty.
    pub(crate) async fn read(&mut self) -> io::Result<bool> {
        use tokio::io::AsyncReadExt;
        loop {
            match &mut self.io {
                Io::Plain(tcp) => {
                    // Not `readable()`: its future (a waiter node) would sit in every idle
                    // source's task; the reader's waker slot of the socket is enough.
                    std::future::poll_fn(|cx| tcp.poll_read_ready(cx)).await?;
                    let spare = reserve(&mut self.buf, self.next);
                    match tcp.try_read_buf(&mut self.buf) {
                        Ok(0) => return Ok(false),
                        Ok(n) => {
                            self.next = adapt(self.next, n, spare);
                            return Ok(true);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if self.buf.is_empty() {
                                self.buf = BytesMut::new();
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Io::Tls(tls) => {
                    if self.buf.is_empty() && self.buf.capacity() < MIN_SPARE {
                        self.buf = BytesMut::new();
                    }
                    let spare = reserve(&mut self.buf, self.next);
                    let n = tls.read_buf(&mut self.buf).await?;
                    if n == 0 {
                        return Ok(false);
                    }
                    self.next = adapt(self.next, n, spare);
                    return Ok(true);
                }
            }
        }
    }

    /// Reads and parses the response head, skipping interim (1xx) responses.
    async fn read_head(&mut self) -> Result<Head, Error> {
        let network = |msg: String| Error::new(ErrorKind::Network, msg);
        let mut interim = 0;
        let mut scanned = 0;
        loop {
            // Parse only once a blank line may have arrived (bounded work per byte).
            if has_blank_line(&self.buf, scanned) {
                match http1::parse_head(&mut self.buf) {
                    Ok(Some(h)) if h.status == 101 => {
                        return Err(network(
                            "the server switched protocols (101) without being asked".into(),
                        ));
                    }
                    Ok(Some(h)) if (100..200).contains(&h.status) => {
                        interim += 1;
                        if interim > MAX_INTERIM {
                            return Err(network(format!(
                                "more than {MAX_INTERIM} interim (1xx) responses"
                            )));
                        }
                        scanned = 0;
                        continue;
                    }
                    Ok(Some(h)) if h.status < 100 => {
                        return Err(network(format!(
                            "malformed HTTP response: status code {:03}",
                            h.status
                        )));
                    }
                    Ok(Some(h)) => return Ok(h),
                    Ok(None) => {}
                    Err(m) => return Err(network(format!("malformed HTTP response: {m}"))),
                }
            } else if self.buf.len() >= http1::MAX_HEAD {
                return Err(network(format!(
                    "malformed HTTP response: the response head is larger than {} KiB",
                    http1::MAX_HEAD / 1024
                )));
            }
            scanned = self.buf.len();
            match self.read().await {
                Ok(true) => {}
                Ok(false) => {
                    let msg = if self.buf.is_empty() && interim == 0 {
                        "the server closed the connection without a response".to_owned()
                    } else {
                        "the server closed the connection inside the response head".to_owned()
                    };
                    return Err(network(msg));
                }
                Err(e) => {
                    let msg = format!("the connection broke before the response head: {e}");
                    return Err(network(msg).with_source(e));
                }
            }
        }
    }

    /// Takes the buffered body bytes out, handing each piece (a slice of the read buffer) to
    /// `data`. True once the body is complete.
    pub(crate) fn decode(&mut self, data: &mut impl FnMut(Bytes)) -> Result<bool, Error> {
        self.decoder
            .decode(&mut self.buf, data)
            .map_err(|m| Error::new(ErrorKind::Network, format!("malformed response body: {m}")))
    }

    /// The error for the connection closing here: a clean end of a close-delimited body, or a
    /// body cut short.
    pub(crate) fn eof_error(&self) -> Error {
        match self.decoder.eof_is_end() {
            Ok(()) => Error::new(ErrorKind::StreamEnded, "the server ended the stream"),
            Err(m) => Error::new(ErrorKind::Network, m),
        }
    }
}

/// Makes room for a read; returns the free room.
fn reserve(buf: &mut BytesMut, next: usize) -> usize {
    if buf.capacity() - buf.len() < MIN_SPARE {
        buf.reserve(next);
    }
    buf.capacity() - buf.len()
}

/// The next read size: grows when a read fills the room, shrinks when reads are small.
fn adapt(next: usize, got: usize, room: usize) -> usize {
    if got >= room && got >= next / 2 {
        (next * 2).min(MAX_READ)
    } else if got < next / 8 {
        (next / 2).max(MIN_READ)
    } else {
        next
    }
}

/// Whether `buf` holds an empty line (LF LF or LF CR LF) ending at or after `from`.
fn has_blank_line(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(2);
    memchr::memchr_iter(b'\n', &buf[start..]).any(|i| {
        let i = start + i;
        (i >= 1 && buf[i - 1] == b'\n') || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n')
    })
}
