//! Options shared by every face (same names, spelled per language). Validated when a source
//! is created, so a bad option is an error at construction, never a surprise later.

use std::path::PathBuf;
use std::time::Duration;

/// Source options. `Options::default()` is the spec's behaviour; every extension is opt-in.
///
/// ```
/// use std::time::Duration;
/// let opts = eventsource_core::Options::default()
///     .header("Authorization", "Bearer t0ken")
///     .retry(Duration::from_millis(500));
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// Keep a cookie jar for this source and send credentials. Reflected by `withCredentials`.
    pub with_credentials: bool,
    /// Extra request headers, sent on every (re)connection. `Accept` and `Cache-Control`
    /// are the spec's and cannot be overridden; `Last-Event-ID` is managed by the source.
    pub headers: Vec<(String, String)>,
    /// Request method (non-standard; for POST-style streams). Default `GET`.
    pub method: String,
    /// Request body, resent on every reconnection. Default none.
    pub body: Option<Vec<u8>>,
    /// Initial `Last-Event-ID` (resume from a stored ID). Must not contain CR, LF or NUL.
    pub last_event_id: Option<String>,
    /// Initial reconnection time; the stream's `retry:` field overrides it. Default 3 s.
    pub retry: Duration,
    /// Ceiling for the backed-off delay after consecutive failures. Default 30 s.
    pub max_retry: Duration,
    /// Delay multiplier after each consecutive failed attempt (1.0 disables growth). Default 2.0.
    /// The first delay is exactly the reconnection time; later ones in a run of failures get up
    /// to +25% jitter and are at least 100 ms × backoff^(n-1), whatever the reconnection time.
    /// A run of failures ends only when a connection has stayed open for 5 s: one that opens
    /// and dies at once still counts as a failure.
    pub backoff: f64,
    /// Time allowed to connect (TCP + TLS). Default 10 s; `None` waits indefinitely.
    pub connect_timeout: Option<Duration>,
    /// No byte for this long on an open stream → network error → reconnect. Default none.
    /// It bounds the wait for the response head too, where it is the shorter.
    pub read_timeout: Option<Duration>,
    /// Time allowed for the response head once the request is sent (per redirect hop): a
    /// server that accepts the connection and never answers fails the attempt with a
    /// `timeout` error (and the source reconnects as after any network error). Default 30 s;
    /// `None` waits indefinitely.
    pub response_timeout: Option<Duration>,
    /// Largest line or event, in bytes; beyond it the connection fails. Default 16 MiB.
    /// Values above `isize::MAX` mean the same as `isize::MAX` (no practical limit).
    pub max_event_size: usize,
    /// Redirects followed before the connection fails. Default 10.
    pub max_redirects: usize,
    /// Follow a redirect from an `https://` URL to an `http://` one. Default false: such a
    /// redirect fails the source (`unsupported_scheme`), since it would send the request, its
    /// body and the `Last-Event-ID` in clear text.
    pub allow_https_downgrade: bool,
    /// Proxy URL for all requests. Default: from the environment (`HTTP_PROXY`, `HTTPS_PROXY`,
    /// `ALL_PROXY`, `NO_PROXY`, as reqwest reads them); a variable set to a proxy the transport
    /// cannot use is an `InvalidOption` error that names it.
    pub proxy: Option<String>,
    /// A PEM file of extra trusted root certificates, added to the system's. Default none.
    pub ca_certs: Option<PathBuf>,
    /// Accept any TLS certificate. Dangerous; for testing only. Default false.
    pub accept_invalid_certs: bool,
    /// A PEM file with the client certificate (chain) for mutual TLS. Default none.
    pub client_cert: Option<PathBuf>,
    /// The PEM file of the client certificate's private key. Default: the key is looked for in
    /// `client_cert`'s file.
    pub client_key: Option<PathBuf>,
    /// Which HTTP client carries the requests. Default [`TransportKind::Default`].
    pub transport: TransportKind,
    /// Speak HTTP/2 without TLS to `http://` URLs (h2c with prior knowledge). Default false.
    /// `https://` URLs negotiate HTTP/2 by ALPN anyway.
    pub http2_prior_knowledge: bool,
    /// Whether the source reconnects. `None` (the default): a GET source reconnects as the spec
    /// says; a source with another method does not, so that its body is never sent twice (an
    /// LLM request billed again): any end or failure of its stream closes it (CLOSED + error).
    /// `Some(true)`: reconnect whatever the method. `Some(false)`: never reconnect.
    pub reconnect: Option<bool>,
    /// Consecutive failed attempts after which the source gives up (CLOSED + an error that
    /// says so). `None` (the default): no limit.
    pub max_reconnects: Option<u32>,
    /// Whether a failure of the very first connection (before any open) is retried. Default
    /// true, as the spec says (a browser retries); false fails the source at once, so a wrong
    /// URL or an unreachable host is reported instead of retried.
    pub retry_initial: bool,
    /// The `User-Agent` header. Default `eventsource-native/<version>`; `None` sends none. A
    /// `User-Agent` in `headers` takes precedence.
    pub user_agent: Option<String>,
    /// How much of a fatal HTTP error's body is kept on the error. Default 64 KiB.
    pub max_error_body: usize,
    /// Rust only: a `reqwest::Client` of your own, used as given (its pool, TLS roots,
    /// proxies, timeouts, cookie store and redirect policy). Options that configure a client
    /// (`proxy`, `ca_certs`, `accept_invalid_certs`, `client_cert`, `http2_prior_knowledge`,
    /// a `max_redirects` other than the default, the lean transport) are then refused.
    pub client: Option<reqwest::Client>,
}

/// Which HTTP client a source uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// reqwest (hyper): HTTP/1.1 and HTTP/2, http/https/socks5 proxies, client certificates.
    #[default]
    Default,
    /// The built-in HTTP/1.1 client: the least memory and CPU per source, for processes that
    /// hold thousands of streams. HTTP/1.1 only; http proxies (and CONNECT) only.
    Lean,
}

impl TransportKind {
    /// The name every face uses: `"default"` or `"lean"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Default => "default",
            TransportKind::Lean => "lean",
        }
    }
}

impl std::str::FromStr for TransportKind {
    type Err = crate::Error;
    /// `"default"` or `"lean"` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<TransportKind, crate::Error> {
        if s.eq_ignore_ascii_case("default") {
            Ok(TransportKind::Default)
        } else if s.eq_ignore_ascii_case("lean") {
            Ok(TransportKind::Lean)
        } else {
            Err(crate::Error::new(
                crate::ErrorKind::InvalidOption,
                format!("unknown transport {s:?}: use \"default\" (reqwest) or \"lean\""),
            ))
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            with_credentials: false,
            headers: Vec::new(),
            method: "GET".to_owned(),
            body: None,
            last_event_id: None,
            retry: Duration::from_secs(3),
            max_retry: Duration::from_secs(30),
            backoff: 2.0,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: None,
            response_timeout: Some(Duration::from_secs(30)),
            max_event_size: 16 << 20,
            max_redirects: 10,
            allow_https_downgrade: false,
            proxy: None,
            ca_certs: None,
            accept_invalid_certs: false,
            client_cert: None,
            client_key: None,
            transport: TransportKind::Default,
            http2_prior_knowledge: false,
            reconnect: None,
            max_reconnects: None,
            retry_initial: true,
            user_agent: Some(format!("eventsource-native/{}", crate::VERSION)),
            max_error_body: 64 << 10,
            client: None,
        }
    }
}

/// One builder method per option, each taking and returning the options. The examples only build
/// options; [`EventSource::with_options`](crate::EventSource::with_options) uses them.
impl Options {
    /// The defaults: the spec's behaviour. The same as `Options::default()`.
    ///
    /// ```
    /// let o = eventsource_core::Options::new();
    /// assert_eq!(o.method, "GET");
    /// ```
    pub fn new() -> Options {
        Options::default()
    }

    /// Send credentials (cookies) and keep the ones the server sets.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().with_credentials(true);
    /// assert!(o.with_credentials);
    /// ```
    pub fn with_credentials(mut self, on: bool) -> Self {
        self.with_credentials = on;
        self
    }

    /// Adds a request header, sent on every (re)connection.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().header("Authorization", "Bearer t0ken");
    /// assert_eq!(o.headers, [("Authorization".to_owned(), "Bearer t0ken".to_owned())]);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request method (POST-style streams). A source whose method is not GET does not
    /// reconnect unless [`reconnect`](Self::reconnect) is on.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().method("POST").body(r#"{"stream":true}"#);
    /// assert_eq!(o.method, "POST");
    /// ```
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// The request body. Without a `Content-Type` header, one is chosen: `application/json`
    /// when it looks like JSON, else `text/plain;charset=UTF-8`.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().method("POST").body(b"{}".to_vec());
    /// assert_eq!(o.body.as_deref(), Some(&b"{}"[..]));
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The initial `Last-Event-ID` (resume from a stored ID).
    ///
    /// ```
    /// let o = eventsource_core::Options::new().last_event_id("42");
    /// assert_eq!(o.last_event_id.as_deref(), Some("42"));
    /// ```
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }

    /// The initial reconnection time; the stream's `retry:` field overrides it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = eventsource_core::Options::new().retry(Duration::from_millis(500));
    /// assert_eq!(o.retry, Duration::from_millis(500));
    /// ```
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// The ceiling of the backed-off delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = eventsource_core::Options::new().max_retry(Duration::from_secs(10));
    /// assert_eq!(o.max_retry, Duration::from_secs(10));
    /// ```
    pub fn max_retry(mut self, max_retry: Duration) -> Self {
        self.max_retry = max_retry;
        self
    }

    /// The delay's growth per consecutive failure (1.0: none).
    ///
    /// ```
    /// let o = eventsource_core::Options::new().backoff(1.5);
    /// assert_eq!(o.backoff, 1.5);
    /// ```
    pub fn backoff(mut self, factor: f64) -> Self {
        self.backoff = factor;
        self
    }

    /// Time allowed to connect (TCP, TLS, proxy); `None` waits indefinitely.
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = eventsource_core::Options::new().connect_timeout(Some(Duration::from_secs(3)));
    /// assert_eq!(o.connect_timeout, Some(Duration::from_secs(3)));
    /// ```
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.connect_timeout = t;
        self
    }

    /// No byte for this long (or no response head) → a network error, then a reconnection.
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = eventsource_core::Options::new().read_timeout(Some(Duration::from_secs(60)));
    /// assert_eq!(o.read_timeout, Some(Duration::from_secs(60)));
    /// ```
    pub fn read_timeout(mut self, t: Option<Duration>) -> Self {
        self.read_timeout = t;
        self
    }

    /// See [`Options::response_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = eventsource_core::Options::new().response_timeout(Some(Duration::from_secs(5)));
    /// assert_eq!(o.response_timeout, Some(Duration::from_secs(5)));
    /// ```
    pub fn response_timeout(mut self, t: Option<Duration>) -> Self {
        self.response_timeout = t;
        self
    }

    /// The largest line or event, in bytes.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().max_event_size(1 << 20);
    /// assert_eq!(o.max_event_size, 1 << 20);
    /// ```
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// Redirects followed before the connection fails.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().max_redirects(3);
    /// assert_eq!(o.max_redirects, 3);
    /// ```
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.max_redirects = n;
        self
    }

    /// See [`Options::allow_https_downgrade`].
    ///
    /// ```
    /// let o = eventsource_core::Options::new().allow_https_downgrade(true);
    /// assert!(o.allow_https_downgrade);
    /// ```
    pub fn allow_https_downgrade(mut self, on: bool) -> Self {
        self.allow_https_downgrade = on;
        self
    }

    /// A proxy for every request: `http://`, `https://`, `socks5://` or `socks5h://` (the lean
    /// transport: `http://` only), with credentials in the URL if needed.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().proxy("socks5h://127.0.0.1:1080");
    /// assert_eq!(o.proxy.as_deref(), Some("socks5h://127.0.0.1:1080"));
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// A PEM file of extra trusted roots.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().ca_certs("/etc/my-ca.pem");
    /// assert!(o.ca_certs.is_some());
    /// ```
    pub fn ca_certs(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.ca_certs = Some(pem_file.into());
        self
    }

    /// Accept any server certificate (testing only).
    ///
    /// ```
    /// let o = eventsource_core::Options::new().accept_invalid_certs(true);
    /// assert!(o.accept_invalid_certs);
    /// ```
    pub fn accept_invalid_certs(mut self, on: bool) -> Self {
        self.accept_invalid_certs = on;
        self
    }

    /// A client certificate for mutual TLS: `cert` holds the certificate chain (PEM), `key`
    /// its private key (PEM; `None`: the key is in `cert`'s file too).
    ///
    /// ```
    /// let o = eventsource_core::Options::new().client_cert("client.pem", Some("client.key".into()));
    /// assert!(o.client_cert.is_some() && o.client_key.is_some());
    /// ```
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: Option<PathBuf>) -> Self {
        self.client_cert = Some(cert.into());
        self.client_key = key;
        self
    }

    /// Which HTTP client carries the requests.
    ///
    /// ```
    /// use eventsource_core::{Options, TransportKind};
    /// let o = Options::new().transport(TransportKind::Lean);
    /// assert_eq!(o.transport.as_str(), "lean");
    /// ```
    pub fn transport(mut self, kind: TransportKind) -> Self {
        self.transport = kind;
        self
    }

    /// HTTP/2 without TLS (h2c with prior knowledge) for `http://` URLs.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().http2_prior_knowledge(true);
    /// assert!(o.http2_prior_knowledge);
    /// ```
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }

    /// Turn reconnection on or off for any method (see [`Options::reconnect`]).
    ///
    /// ```
    /// // A POST stream that is sent again when it ends.
    /// let o = eventsource_core::Options::new().method("POST").reconnect(true);
    /// assert_eq!(o.reconnect, Some(true));
    /// ```
    pub fn reconnect(mut self, on: bool) -> Self {
        self.reconnect = Some(on);
        self
    }

    /// Give up after this many reconnection attempts in a row.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().max_reconnects(5);
    /// assert_eq!(o.max_reconnects, Some(5));
    /// ```
    pub fn max_reconnects(mut self, n: u32) -> Self {
        self.max_reconnects = Some(n);
        self
    }

    /// Whether a failure of the very first connection is retried.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().retry_initial(false);
    /// assert!(!o.retry_initial);
    /// ```
    pub fn retry_initial(mut self, on: bool) -> Self {
        self.retry_initial = on;
        self
    }

    /// The `User-Agent` header; `None` sends none.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().user_agent(Some("my-app/1.0".into()));
    /// assert_eq!(o.user_agent.as_deref(), Some("my-app/1.0"));
    /// ```
    pub fn user_agent(mut self, ua: Option<String>) -> Self {
        self.user_agent = ua;
        self
    }

    /// How much of a fatal response's body the error keeps.
    ///
    /// ```
    /// let o = eventsource_core::Options::new().max_error_body(4096);
    /// assert_eq!(o.max_error_body, 4096);
    /// ```
    pub fn max_error_body(mut self, bytes: usize) -> Self {
        self.max_error_body = bytes;
        self
    }

    /// Use this `reqwest::Client` for the requests, as given.
    ///
    /// ```
    /// // A client of your own builds its own TLS: it needs a process-wide rustls provider.
    /// let _ = rustls::crypto::ring::default_provider().install_default();
    /// let client = reqwest::Client::builder().build().unwrap();
    /// let o = eventsource_core::Options::new().reqwest_client(client);
    /// assert!(o.client.is_some());
    /// ```
    pub fn reqwest_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }
}
