//! The default transport: reqwest (hyper) — HTTP/1.1 and HTTP/2 (ALPN on https, or h2c with
//! prior knowledge), http, https and socks5 proxies (the option, or the environment as reqwest
//! reads it), client certificates, a cookie store, or a `reqwest::Client` of the user's.
//!
//! TLS is our rustls configuration (`tls.rs`, ring), handed to reqwest preconfigured, so both
//! transports trust, present and refuse the same certificates. Redirects follow reqwest's
//! policy (credentials are dropped on a cross-origin hop) with our limit and scheme check.
//! The body is pulled by the source's own task on the runtime: no thread outside it is woken
//! per chunk.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{BoxFuture, Request, Transport, cookies, env_proxy, redact, tls};
use crate::{Error, ErrorKind};

/// The reqwest clients of the sources with the same settings.
///
/// Usually one: sources to one origin share its connection pool, and over HTTP/2 one
/// connection. A server's `SETTINGS_MAX_CONCURRENT_STREAMS` caps the streams of a connection,
/// and hyper queues a request beyond it until a stream ends — for ever, with event streams. So
/// the streams per origin of each client are counted; a GET whose head has not come within
/// [`STALL`], while the same client holds other HTTP/2 streams to that origin and no head came
/// on that client in the last [`STALL`], is taken to be queued: that count becomes the client's
/// limit for the origin, and the request moves to another client (another connection). A
/// server that is slow but still answering is left to answer. Requests of other methods are
/// never sent twice: they only go where a learned limit leaves room.
pub(crate) struct Client {
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Builds another client; `None` for a user's own client (then there is only that one).
    settings: Option<Settings>,
    /// Admission of requests to an origin, by a hash of the origin (see [`OPENING`]).
    opening: [Semaphore; OPENING_STRIPES],
}

/// At most this many requests to one origin wait for their response head at a time; the rest
/// wait their turn before they are sent. A request in flight holds about 7 KB in hyper, h2 and
/// reqwest until its head comes. Freed, that memory stays resident in pieces between the
/// sources' long-lived allocations. Opening 10,000 sources at once (`bench/src/bin/scale.rs`),
/// RSS per source was 13.5 KiB over HTTP/2 and 23.7 KiB over HTTP/1.1; with at most 256 waiting
/// at a time, 3.6 and 18.3 KiB, in the same time to open them all. A request gives its turn up
/// after [`STALL`] (once the stall check has spoken), so a server that answers late never
/// holds back the other sources for long.
const OPENING: usize = 256;
/// Origins share an admission count only when their hashes meet here.
const OPENING_STRIPES: usize = 16;

/// How long a GET's response head may take, with other HTTP/2 streams on its connection and no
/// other head coming meanwhile, before it is taken to be queued behind the server's stream
/// limit.
const STALL: Duration = Duration::from_secs(1);

/// HTTP/2 flow-control windows (see `Settings::build`).
const H2_STREAM_WINDOW: u32 = 128 << 10;
const H2_CONNECTION_WINDOW: u32 = 128 << 20;

/// At most this many clients (connections per origin) for one set of settings.
const MAX_SHARDS: usize = 64;

struct Settings {
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Option<Duration>,
    max_redirects: usize,
    allow_https_downgrade: bool,
    proxy: Option<reqwest::Proxy>,
    http2_prior_knowledge: bool,
}

impl Settings {
    fn build(&self) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured((*self.tls).clone())
            .redirect(redirect_policy(self.max_redirects, self.allow_https_downgrade))
            .tcp_nodelay(true)
            // Event streams are long-lived: keep-alive pings find dead HTTP/2 connections.
            .http2_keep_alive_interval(Some(Duration::from_secs(30)))
            .http2_keep_alive_while_idle(false)
            // h2 charges every small DATA frame that waits unread against a budget of half the
            // connection window, and ends the whole connection (GOAWAY, "too_many_data_frames")
            // when it runs out: a source whose consumer pauses during a flood of tiny events
            // would take its neighbours down with it. A stream window of 128 KiB bounds what
            // one paused stream holds; a large connection window (nothing is allocated for it)
            // makes the budget hold many of them.
            .http2_initial_stream_window_size(H2_STREAM_WINDOW)
            .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
            .cookie_provider(Arc::new(cookies::SourceJars));
        if let Some(t) = self.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(p) = &self.proxy {
            b = b.proxy(p.clone());
        }
        if self.http2_prior_knowledge {
            b = b.http2_prior_knowledge();
        }
        b.build().map_err(|e| format!("cannot set up the HTTP client: {}", chain(&e)))
    }
}

/// One reqwest client and the load it carries per origin.
struct Shard {
    client: reqwest::Client,
    origins: Mutex<HashMap<String, Load>>,
}

#[derive(Default)]
struct Load {
    /// Requests sent or streaming.
    active: usize,
    /// Requests whose response head came: streams the server has taken.
    open: usize,
    /// When the last response head came: while heads keep coming, the server is answering.
    last_head: Option<Instant>,
    /// Learned from a stalled request: the most streams the server allows this connection.
    limit: Option<usize>,
    /// The origin answered over HTTP/2 on this client.
    h2: bool,
}

impl Shard {
    fn new(client: reqwest::Client) -> Arc<Shard> {
        Arc::new(Shard { client, origins: Mutex::default() })
    }

    fn with_load<R>(&self, origin: &str, f: impl FnOnce(&mut Load) -> R) -> R {
        let mut map = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(map.entry(origin.to_owned()).or_default());
        map.retain(|_, l| l.active > 0 || l.limit.is_some() || l.h2);
        r
    }
}

/// A request's place on a shard, given back when the stream ends (dropped with the body).
struct Slot {
    shard: Arc<Shard>,
    origin: String,
    open: bool,
}

impl Slot {
    /// The response head came over `version`.
    fn opened(&mut self, version: reqwest::Version) {
        self.open = true;
        self.shard.with_load(&self.origin, |l| {
            l.open += 1;
            l.last_head = Some(Instant::now());
            l.h2 |= version == reqwest::Version::HTTP_2;
        });
    }

    /// When this client last received a response head from the origin.
    fn last_head(&self) -> Option<Instant> {
        self.shard.with_load(&self.origin, |l| l.last_head)
    }

    /// The head has not come in time: if this looks like a request queued behind the
    /// connection's stream limit, learn the limit and say so.
    fn seems_queued(&self) -> bool {
        self.shard.with_load(&self.origin, |l| {
            let queued = l.h2 && l.open > 0;
            if queued {
                l.limit = Some(l.limit.map_or(l.open, |max| max.min(l.open)));
            }
            queued
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let open = self.open;
        self.shard.with_load(&self.origin, |l| {
            l.active = l.active.saturating_sub(1);
            if open {
                l.open = l.open.saturating_sub(1);
            }
        });
    }
}

impl Client {
    /// A client with the source's settings. A bad proxy URL or TLS file is an `InvalidOption`.
    pub(crate) fn new(
        connect_timeout: Option<Duration>,
        max_redirects: usize,
        allow_https_downgrade: bool,
        proxy: Option<&str>,
        tls: &tls::Settings,
        http2_prior_knowledge: bool,
    ) -> Result<Client, Error> {
        let invalid = |msg: String| Error::new(ErrorKind::InvalidOption, msg);
        let proxy = match proxy {
            Some(p) => Some(reqwest::Proxy::all(p).map_err(|e| {
                invalid(format!("invalid proxy URL {:?}: {}", redact(p), chain(&e)))
            })?),
            // reqwest reads the environment itself; a proxy set there that it would skip
            // (unparseable, unknown scheme) is refused here instead.
            None => {
                env_proxy::check("default", env_proxy::REQWEST_SCHEMES).map_err(invalid)?;
                None
            }
        };
        let settings = Settings {
            tls: tls::config(tls, tls::Alpn::H2AndHttp1).map_err(invalid)?,
            connect_timeout,
            max_redirects,
            allow_https_downgrade,
            proxy,
            http2_prior_knowledge,
        };
        let first = settings.build().map_err(invalid)?;
        Ok(Client::with_shards(Shard::new(first), Some(settings)))
    }

    /// The user's own client, used as given.
    pub(crate) fn given(inner: reqwest::Client) -> Client {
        Client::with_shards(Shard::new(inner), None)
    }

    fn with_shards(first: Arc<Shard>, settings: Option<Settings>) -> Client {
        Client {
            shards: Mutex::new(vec![first]),
            settings,
            opening: std::array::from_fn(|_| Semaphore::new(OPENING)),
        }
    }

    /// The admission count of `origin`'s requests.
    fn opening(&self, origin: &str) -> &Semaphore {
        let mut h = std::hash::DefaultHasher::new();
        origin.hash(&mut h);
        &self.opening[h.finish() as usize % OPENING_STRIPES]
    }

    /// A place for one more stream to `origin`: on the first client with room, else on a new one.
    fn slot(&self, origin: &str) -> Result<Slot, Error> {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        // A server gives every connection the same limit: one learned on any client applies to
        // the others too, so a crowd of queued requests spreads at once, not one client a round.
        let learned = shards.iter().filter_map(|s| s.with_load(origin, |l| l.limit)).min();
        let room = |s: &Arc<Shard>| {
            s.with_load(origin, |l| {
                let free = l.limit.or(learned).is_none_or(|max| l.active < max);
                if free {
                    l.active += 1;
                }
                free
            })
        };
        let shard = match shards.iter().find(|s| room(s)) {
            Some(s) => s.clone(),
            None => match &self.settings {
                Some(settings) if shards.len() < MAX_SHARDS => {
                    let client = settings.build().map_err(|m| Error::new(ErrorKind::Connect, m))?;
                    let shard = Shard::new(client);
                    room(&shard);
                    shards.push(shard.clone());
                    shard
                }
                // A user's own client, or too many: wait in the first client's queue.
                _ => {
                    let s = shards[0].clone();
                    s.with_load(origin, |l| l.active += 1);
                    s
                }
            },
        };
        Ok(Slot { shard, origin: origin.to_owned(), open: false })
    }

    async fn send(&self, req: &Request<'_>) -> Result<super::Response, Error> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| {
            Error::new(ErrorKind::InvalidOption, format!("invalid HTTP method {:?}", req.method))
        })?;
        let origin = req.url.origin().ascii_serialization();
        let idempotent = method == reqwest::Method::GET;
        // Never closed, so never an error.
        let mut turn = self.opening(&origin).acquire().await.ok();
        let turn_ends = Instant::now() + STALL;
        let (slot, resp) = 'send: loop {
            let slot = self.slot(&origin)?;
            // The request is made here, not through a builder: a builder would copy the
            // headers into a map of its own, and every request in flight held both.
            let mut request = reqwest::Request::new(method.clone(), req.url.clone());
            *request.headers_mut() = headers(req)?;
            *request.body_mut() = req.body.map(|b| b.clone().into());
            let mut sent = std::pin::pin!(slot.shard.client.execute(request));
            // The head must come within the head timeout. Meanwhile, a wait of STALL with no
            // head on this client in the last STALL tells a request queued behind the server's
            // stream limit.
            let head = req.head_timeout();
            let deadline = head.as_ref().map(|(t, _)| Instant::now() + *t);
            let mut check = (idempotent && self.settings.is_some()).then(|| Instant::now() + STALL);
            let result = loop {
                let turn_timer = (turn.is_some() && check.is_none()).then_some(turn_ends);
                let until = [check, deadline, turn_timer].into_iter().flatten().min();
                let Some(until) = until else { break sent.as_mut().await };
                if let Ok(r) = tokio::time::timeout_at(until, sent.as_mut()).await {
                    break r;
                }
                let now = Instant::now();
                if let Some((_, err)) = &head
                    && deadline.is_some_and(|d| d <= now)
                {
                    return Err(err());
                }
                if check.is_some_and(|c| c <= now) {
                    check = match slot.last_head() {
                        // Another head came lately: the server is slow, not full.
                        Some(h) if h + STALL > now => Some(h + STALL),
                        _ if slot.seems_queued() => continue 'send, // to another client
                        _ => None,
                    };
                }
                // The turn ends with its time, but not while the stall check is pending: the
                // requests admitted next would join the same queue before it learns the limit.
                if turn_ends <= now && check.is_none() {
                    turn = None; // a late head no longer holds back the other requests
                }
            };
            break (slot, result.map_err(|e| classify(&e, req))?);
        };
        let mut slot = slot;
        slot.opened(resp.version());
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
            })
            .collect();
        let status = resp.status();
        Ok(super::Response {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
            headers,
            origin: resp.url().origin().ascii_serialization(),
            // Only the body is kept: the response's headers, URL and extensions go now.
            body: super::Body::Http(Box::new(Body {
                body: reqwest::Body::from(resp),
                pending: None,
                ended: false,
                _slot: slot,
            })),
        })
    }
}

impl Transport for Client {
    fn open<'a>(&'a self, req: &'a Request<'a>) -> BoxFuture<'a, Result<super::Response, Error>> {
        // reqwest reads and stores cookies (on every hop) while this future is polled.
        Box::pin(cookies::with_jar(req.jar, self.send(req)))
    }
}

/// The request headers: the spec's `Accept` and `Cache-Control`, the user's, `Last-Event-ID`.
fn headers(req: &Request<'_>) -> Result<HeaderMap, Error> {
    let mut h = HeaderMap::with_capacity(req.headers.len() + 4);
    h.insert(header::ACCEPT, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    let mut user = HeaderMap::new();
    for (name, value) in req.headers {
        let n = HeaderName::from_bytes(name.as_bytes());
        let v = HeaderValue::from_str(value);
        let (Ok(n), Ok(v)) = (n, v) else {
            let msg = format!("invalid header {name:?}");
            return Err(Error::new(ErrorKind::InvalidOption, msg));
        };
        // Framing is the client's; the spec's Accept is fixed.
        if [header::ACCEPT, header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION]
            .contains(&n)
        {
            continue;
        }
        user.append(n, v);
    }
    // A user's Cache-Control or Pragma replaces ours; other names add up.
    for name in user.keys() {
        h.remove(name);
    }
    for (n, v) in user.iter() {
        h.append(n.clone(), v.clone());
    }
    if let Some(id) = req.last_event_id
        && let Ok(v) = HeaderValue::from_bytes(id)
    {
        h.insert("last-event-id", v);
    }
    Ok(h)
}

/// Why a redirect chain was refused (carried inside reqwest's error).
#[derive(Debug)]
struct RedirectRefused {
    kind: ErrorKind,
    msg: String,
}

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for RedirectRefused {}

/// reqwest's follow-up policy with the same checks and messages as the lean client's.
fn redirect_policy(max: usize, allow_https_downgrade: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let next = attempt.url();
        let refused = if !matches!(next.scheme(), "http" | "https") {
            let msg = format!(
                "the server redirected to {}, which is not an http or https URL",
                redact(next.as_str())
            );
            Some(RedirectRefused { kind: ErrorKind::UnsupportedScheme, msg })
        } else if attempt.previous().len() > max {
            let msg = format!(
                "too many redirects: more than {max} (the last one: HTTP {} to {:?})",
                attempt.status().as_u16(),
                redact(next.as_str())
            );
            Some(RedirectRefused { kind: ErrorKind::TooManyRedirects, msg })
        } else if let Some(from) = attempt.previous().last()
            && from.scheme() == "https"
            && next.scheme() == "http"
            && !allow_https_downgrade
        {
            let e = super::downgrade_refused(from, next);
            Some(RedirectRefused { kind: e.kind(), msg: e.message().to_owned() })
        } else {
            None
        };
        match refused {
            Some(r) => attempt.error(r),
            None => attempt.follow(),
        }
    })
}

/// The error's message followed by its causes: reqwest's own is terse ("error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        cur = s.source();
    }
    msg
}

/// Maps a reqwest error to our kinds: refused redirects fail the connection; the rest
/// reconnect, as network errors do.
fn classify(e: &reqwest::Error, req: &Request<'_>) -> Error {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<RedirectRefused>() {
            return Error::new(r.kind, r.msg.clone());
        }
        cur = err.source();
    }
    let host = req.url.host_str().unwrap_or("");
    // The URL is in our own words already (and may carry credentials): not reqwest's.
    let detail = chain(&clone_without_url(e));
    let tls = is_tls_error(e);
    let (kind, msg) = if e.is_timeout() {
        (ErrorKind::Timeout, format!("timed out connecting to {host}: {detail}"))
    } else if e.is_connect() && tls {
        (ErrorKind::Connect, format!("the TLS handshake with {host} failed: {detail}"))
    } else if e.is_connect() {
        (ErrorKind::Connect, format!("cannot connect to {host}: {detail}"))
    } else if e.is_builder() {
        (ErrorKind::InvalidOption, format!("cannot build the request: {detail}"))
    } else {
        (ErrorKind::Network, format!("the request to {host} failed: {detail}"))
    };
    Error::new(kind, msg)
}

/// The error's text without the request URL reqwest adds to it.
fn clone_without_url(e: &reqwest::Error) -> impl std::error::Error + '_ {
    struct NoUrl<'a>(&'a reqwest::Error);
    impl std::fmt::Debug for NoUrl<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            std::fmt::Display::fmt(self, f)
        }
    }
    impl std::fmt::Display for NoUrl<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let text = self.0.to_string();
            // "error sending request for url (URL)" → "error sending request".
            match (text.find(" for url ("), self.0.url()) {
                (Some(i), Some(_)) => f.write_str(&text[..i]),
                _ => f.write_str(&text),
            }
        }
    }
    impl std::error::Error for NoUrl<'_> {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.0.source()
        }
    }
    NoUrl(e)
}

/// Whether a TLS error (rustls's, possibly inside an I/O error) is among `e`'s causes.
fn is_tls_error(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        // An I/O error's `source()` skips the error it wraps: look inside, however deep.
        let mut inner = Some(err);
        while let Some(i) = inner {
            if i.is::<rustls::Error>() {
                return true;
            }
            inner = i.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as _);
        }
        cur = err.source();
    }
    false
}

/// A reqwest response body, pulled chunk by chunk.
pub(crate) struct Body {
    body: reqwest::Body,
    /// The chunk received and not yet handed to the parser.
    pending: Option<Bytes>,
    ended: bool,
    /// The stream's place on its client, given back when the body goes.
    _slot: Slot,
}

impl Body {
    pub(crate) fn drain(&mut self, data: &mut impl FnMut(Bytes)) -> bool {
        if let Some(b) = self.pending.take() {
            data(b);
        }
        self.ended
    }

    /// Waits for the next chunk. (Taking whatever else was ready at once, with a second poll,
    /// measured no faster: hyper's body channel wakes its connection task on every poll.)
    pub(crate) async fn fill(&mut self) -> Result<bool, Error> {
        use http_body::Body as _;
        while !self.ended {
            let body = &mut self.body;
            match std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await {
                None => self.ended = true,
                Some(Err(e)) => return Err(body_error(&e)),
                // Trailers and empty frames carry no event bytes.
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => {
                        self.pending = Some(data);
                        return Ok(true);
                    }
                    _ => {}
                },
            }
        }
        Ok(false)
    }
}

fn body_error(e: &reqwest::Error) -> Error {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Network };
    Error::new(kind, format!("the connection broke while reading the stream: {}", chain(e)))
}
