//! The transport boundary: what the connection state machine asks of an HTTP client.
//!
//! The state machine (`source/connection.rs`) hands a [`Transport`] a [`Request`] and gets back a
//! [`Response`]: status, headers, the final URL after redirects, and a [`Body`] of byte
//! chunks. Everything WHATWG — status and Content-Type checks, `origin`, reconnection, `retry:`,
//! `Last-Event-ID`, backoff — stays in the state machine, in one code path for every transport.
//!
//! Two adapters:
//! - [`reqwest_client`]: the default, reqwest over hyper (HTTP/1.1 and HTTP/2, http, https and
//!   socks5 proxies, client certificates, or a `reqwest::Client` of the user's);
//! - [`lean`]: the built-in HTTP/1.1 client, which reads the socket in the source's own task
//!   and holds no buffer while a stream is idle: the least memory and CPU per source.
//!
//! Transports are shared between the sources that have the same settings, so that sources to
//! one origin share reqwest's connection pool (and HTTP/2 connections).

mod cookies;
mod env_proxy;
mod lean;
mod reqwest_client;
mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use once_cell::sync::Lazy;
use url::Url;

use crate::{Error, ErrorKind, Options, TransportKind};

/// What a request carries besides its URL (validated by the caller).
pub(crate) struct Request<'a> {
    pub url: &'a Url,
    pub method: &'a str,
    /// User headers, already validated; `Accept` and the framing headers are the transport's.
    pub headers: &'a [(String, String)],
    pub body: Option<&'a Bytes>,
    /// The `Last-Event-ID` value, if not empty.
    pub last_event_id: Option<&'a [u8]>,
    /// No byte for this long → a timeout (the `read_timeout` option).
    pub read_timeout: Option<Duration>,
    /// Time allowed for the response head once the request is sent (`response_timeout`).
    pub response_timeout: Option<Duration>,
    /// The source's cookie jar, if it keeps one (`with_credentials`).
    pub jar: Option<&'a Arc<Jar>>,
}

impl Request<'_> {
    /// How long the response head may take, and the error when it does not come.
    pub(crate) fn head_timeout(&self) -> Option<(Duration, impl Fn() -> Error + use<>)> {
        let (t, name) = match (self.read_timeout, self.response_timeout) {
            (Some(r), Some(h)) if r < h => (r, "read_timeout"),
            (_, Some(h)) => (h, "response_timeout"),
            (Some(r), None) => (r, "read_timeout"),
            (None, None) => return None,
        };
        let err = move || {
            let msg = format!("no response headers within {t:?} ({name})");
            Error::new(ErrorKind::Timeout, msg)
        };
        Some((t, err))
    }
}

/// A response whose head has been read.
pub(crate) struct Response {
    pub status: u16,
    /// The reason phrase (the server's, or the canonical one).
    pub reason: String,
    /// The header fields: lowercase names, values as (lossy) UTF-8, in the order received.
    pub headers: Vec<(String, String)>,
    /// The serialized origin of the final URL.
    pub origin: String,
    pub body: Body,
}

/// The bytes of a response body, pulled by the connection task. A closed set: the lean
/// client's own reader, or any `http_body::Body` (what reqwest, and every hyper-based client,
/// gives).
pub(crate) enum Body {
    Lean(lean::Body),
    /// Boxed: every source's task holds a `Body`, and the lean one is the small one.
    Http(Box<reqwest_client::Body>),
}

impl Body {
    /// Hands every body byte already received to `data`, in pieces. True once the body is
    /// complete.
    pub(crate) fn drain(&mut self, data: &mut impl FnMut(Bytes)) -> Result<bool, Error> {
        match self {
            Body::Lean(b) => b.decode(data),
            Body::Http(b) => Ok(b.drain(data)),
        }
    }

    /// Waits for more body bytes: `Ok(true)` when some arrived, `Ok(false)` at the end.
    pub(crate) async fn fill(&mut self) -> Result<bool, Error> {
        match self {
            Body::Lean(b) => b.read().await.map_err(|e| {
                let msg = format!("the connection broke while reading the stream: {e}");
                Error::new(ErrorKind::Network, msg).with_source(e)
            }),
            Body::Http(b) => b.fill().await,
        }
    }

    /// The error for the body ending where `fill` said so: a clean end, or a body cut short.
    pub(crate) fn end_error(&self) -> Error {
        match self {
            Body::Lean(b) => b.eof_error(),
            Body::Http(_) => Error::new(ErrorKind::StreamEnded, "the server ended the stream"),
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An HTTP client the state machine can use.
pub(crate) trait Transport: Send + Sync + 'static {
    /// Sends the request, follows redirects, and returns the final response once its head is
    /// in. Errors are fatal or not per [`Error::is_fatal`].
    fn open<'a>(&'a self, req: &'a Request<'a>) -> BoxFuture<'a, Result<Response, Error>>;
}

pub(crate) use cookies::Jar;

/// The settings that make two sources' transports interchangeable.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    /// A forked child never shares its parent's transports: their pooled connections are run by
    /// the parent's runtime, whose threads the child does not have.
    generation: u32,
    kind: TransportKind,
    connect_timeout: Option<Duration>,
    max_redirects: usize,
    allow_https_downgrade: bool,
    proxy: Option<String>,
    tls: tls::Settings,
    http2_prior_knowledge: bool,
}

static TRANSPORTS: Lazy<Mutex<HashMap<Key, Arc<dyn Transport>>>> = Lazy::new(Default::default);

/// At most this many distinct settings keep a shared transport.
const MAX_SHARED: usize = 64;

/// The error for a redirect from https to http, which `allow_https_downgrade` must allow.
fn downgrade_refused(from: &Url, to: &Url) -> Error {
    let msg = format!(
        "the server redirected from {} to {}, from https to plain http: refused (set \
         allow_https_downgrade to follow it)",
        redact(from.as_str()),
        redact(to.as_str())
    );
    Error::new(ErrorKind::UnsupportedScheme, msg)
}

/// The transport for these options: validated here (a bad proxy URL, CA or certificate file,
/// or a combination the chosen transport cannot do, is an `InvalidOption` error), and shared
/// with the other sources that have the same settings.
pub(crate) fn for_options(o: &Options) -> Result<Arc<dyn Transport>, Error> {
    let invalid = |msg: String| Error::new(ErrorKind::InvalidOption, msg);
    let tls = tls::Settings::from_options(o).map_err(invalid)?;
    if let Some(client) = &o.client {
        refuse_client_settings(o, &tls).map_err(invalid)?;
        return Ok(Arc::new(reqwest_client::Client::given(client.clone())));
    }
    let key = Key {
        generation: crate::runtime::generation(),
        kind: o.transport,
        connect_timeout: o.connect_timeout,
        max_redirects: o.max_redirects,
        allow_https_downgrade: o.allow_https_downgrade,
        proxy: o.proxy.clone(),
        tls,
        http2_prior_knowledge: o.http2_prior_knowledge,
    };
    let mut all = TRANSPORTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = all.get(&key) {
        return Ok(t.clone());
    }
    let t: Arc<dyn Transport> = match key.kind {
        TransportKind::Default => Arc::new(reqwest_client::Client::new(
            key.connect_timeout,
            key.max_redirects,
            key.allow_https_downgrade,
            key.proxy.as_deref(),
            &key.tls,
            key.http2_prior_knowledge,
        )?),
        TransportKind::Lean => {
            if key.http2_prior_knowledge {
                return Err(invalid(
                    "http2_prior_knowledge needs the default transport: the lean transport \
                     speaks HTTP/1.1 only"
                        .into(),
                ));
            }
            Arc::new(lean::Client::new(
                key.connect_timeout,
                key.max_redirects,
                key.allow_https_downgrade,
                key.proxy.as_deref(),
                key.tls.clone(),
            )?)
        }
    };
    if all.len() < MAX_SHARED {
        all.insert(key, t.clone());
    }
    Ok(t)
}

/// With a `reqwest::Client` of the user's, the options that configure a client belong to it:
/// setting them too is refused rather than silently ignored.
fn refuse_client_settings(o: &Options, tls: &tls::Settings) -> Result<(), String> {
    let d = Options::default();
    let set: Vec<&str> = [
        ("proxy", o.proxy.is_some()),
        ("ca_certs / accept_invalid_certs / client_cert", !tls.is_default()),
        ("http2_prior_knowledge", o.http2_prior_knowledge),
        ("transport = \"lean\"", o.transport == TransportKind::Lean),
        ("connect_timeout", o.connect_timeout != d.connect_timeout),
        ("max_redirects", o.max_redirects != d.max_redirects),
        ("allow_https_downgrade", o.allow_https_downgrade),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if set.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} cannot be combined with a reqwest::Client of your own: configure the client \
             instead",
            set.join(", ")
        ))
    }
}

/// A URL for messages, with its password hidden (proxy URLs carry credentials).
pub(crate) fn redact(s: &str) -> String {
    match Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}
