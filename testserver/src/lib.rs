//! A real HTTP server-sent-events scenario server for the tests of every binding, the demo and
//! the benchmarks: HTTP/1.1 and h2c on the plain port, and on demand TLS with ALPN (h2 and
//! http/1.1), mTLS, and HTTP, HTTPS and SOCKS5 proxies that only reach loopback. See
//! `testserver/README.md` for the listeners and the URL scheme.
//!
//! ```no_run
//! let server = testserver::Server::start();
//! let url = server.url("script?t=abc&c1=data%3A%20hi%0A%0A");
//! // ... point a client at `url`, then read `server.url("log?t=abc")` ...
//! ```
//!
//! Why a background thread with its own runtime: Rust tests are both `#[test]` and
//! `#[tokio::test]`; a server that owns its runtime works under either without touching the
//! test's runtime, and dropping it shuts everything down.

mod body;
mod conn;
mod load;
mod log;
mod proxy;
mod query;
mod resume;
mod routes;
mod scenario;
mod socks5;
mod stream;
mod tls;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::conn::Kind;
use crate::routes::State;

pub use crate::load::{DEFAULT_MAX_SECS, DEFAULT_MAX_STREAMS, monotonic_ns};
pub use crate::log::{Entry, ProxyEntry};
pub use crate::tls::Certs;

/// The §11 68 "tricky" stream served by `/scenario/tricky`.
///
/// BOM; `data: α…` ended by CRLF; `data: 😀` (4-byte UTF-8) ended by CRLF; `id: 7` ended by CR,
/// then a lone CR (an empty line: dispatch); a comment; `event: x`; a bare `data`; an empty line.
/// Expected, however it is split: `message` with data `"α…\n😀"` and lastEventId `7`, then `x`
/// with data `""` and lastEventId `7`.
pub const TRICKY: &[u8] = b"\xEF\xBB\xBFdata: \xCE\xB1\xE2\x80\xA6\r\ndata: \xF0\x9F\x98\x80\r\nid: 7\r\r: comment\nevent: x\ndata\n\n";

/// What to start besides the plain HTTP listener (which always runs and also speaks h2c).
///
/// ```no_run
/// let server = testserver::Server::start_with(
///     testserver::Options::new().tls().proxies().max_concurrent_streams(2),
/// )
/// .unwrap();
/// let ca = &server.certs().unwrap().ca_pem; // trust this, then GET server.tls_url("...")
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    port: u16,
    threads: usize,
    tls: bool,
    proxies: bool,
    max_concurrent_streams: Option<u32>,
    cert_dir: Option<PathBuf>,
    proxy_auth: Option<(String, String)>,
    max_load_streams: usize,
    max_load_secs: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 0,
            threads: 0,
            tls: false,
            proxies: false,
            max_concurrent_streams: None,
            cert_dir: None,
            proxy_auth: None,
            max_load_streams: DEFAULT_MAX_STREAMS,
            max_load_secs: DEFAULT_MAX_SECS,
        }
    }
}

impl Options {
    /// The plain listener alone on an ephemeral port, on a current-thread runtime.
    pub fn new() -> Options {
        Options::default()
    }

    /// At most this many `/load/*` streams open at once (default 20,000); more get a 503.
    pub fn max_load_streams(mut self, max: usize) -> Options {
        self.max_load_streams = max;
        self
    }

    /// A `/load/*` stream ends after this many seconds (default 600), or sooner if it asks
    /// (`secs=S`).
    pub fn max_load_secs(mut self, secs: u64) -> Options {
        self.max_load_secs = secs;
        self
    }

    /// The plain listener's port on 127.0.0.1 (0 = ephemeral). The other listeners always take
    /// ephemeral ports.
    pub fn port(mut self, port: u16) -> Options {
        self.port = port;
        self
    }

    /// Tokio worker threads; 0 (the default) = one current-thread runtime.
    pub fn threads(mut self, threads: usize) -> Options {
        self.threads = threads;
        self
    }

    /// Also the TLS listener (ALPN `h2`, `http/1.1`; client certificate optional) and the mTLS
    /// listener (client certificate required), with a generated CA (see `Certs`).
    pub fn tls(mut self) -> Options {
        self.tls = true;
        self
    }

    /// Also the three proxies: HTTP, HTTPS (TLS to the proxy) and SOCKS5.
    pub fn proxies(mut self) -> Options {
        self.proxies = true;
        self
    }

    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` on every listener (hyper's default: 200).
    pub fn max_concurrent_streams(mut self, max: u32) -> Options {
        self.max_concurrent_streams = Some(max);
        self
    }

    /// Where to write `ca.pem`, `client.pem` and `client.key` (created if missing, left in place
    /// at the end). Default: a fresh temp dir, removed when the server is dropped.
    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> Options {
        self.cert_dir = Some(dir.into());
        self
    }

    /// Make the proxies require these credentials (`Proxy-Authorization: Basic` → else 407;
    /// SOCKS5 user name/password → else failure). Default: anything is accepted and recorded.
    pub fn proxy_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Options {
        self.proxy_auth = Some((user.into(), password.into()));
        self
    }
}

/// The ports of the optional listeners.
#[derive(Debug, Default, Clone, Copy)]
struct Ports {
    tls: Option<u16>,
    mtls: Option<u16>,
    http_proxy: Option<u16>,
    https_proxy: Option<u16>,
    socks5: Option<u16>,
}

/// A running server. Dropping it stops the server (open connections are cut).
#[derive(Debug)]
pub struct Server {
    port: u16,
    ports: Ports,
    certs: Option<Certs>,
    /// The cert dir is ours (a temp dir) and goes away with the server.
    remove_cert_dir: bool,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on an ephemeral port of 127.0.0.1 on a background thread.
    ///
    /// # Panics
    /// If the socket cannot be bound or the thread cannot be started.
    pub fn start() -> Server {
        Self::start_on(0).expect("testserver: cannot start")
    }

    /// Starts a server on `port` of 127.0.0.1 (0 = ephemeral) on a background thread, running a
    /// current-thread tokio runtime. `localhost` also works where `[::1]` can take the same port.
    pub fn start_on(port: u16) -> io::Result<Server> {
        Self::start_with(Options::new().port(port))
    }

    /// Starts a server with the listeners `options` asks for, on a background thread.
    pub fn start_with(options: Options) -> io::Result<Server> {
        let plain = bind(options.port)?;
        let port = plain[0].local_addr()?.port();
        let mut listeners: Vec<(std::net::TcpListener, Kind)> =
            plain.into_iter().map(|l| (l, Kind::Plain)).collect();
        let (certs, remove_cert_dir) = if options.tls || options.proxies {
            match &options.cert_dir {
                Some(dir) => (Some(Certs::generate(dir)?), false),
                None => {
                    let dir = tls::fresh_temp_dir()?;
                    match Certs::generate(&dir) {
                        Ok(certs) => (Some(certs), true),
                        Err(e) => {
                            let _ = std::fs::remove_dir_all(&dir);
                            return Err(e);
                        }
                    }
                }
            }
        } else {
            (None, false)
        };
        let cleanup = |e: io::Error| {
            if let (true, Some(c)) = (remove_cert_dir, &certs) {
                let _ = std::fs::remove_dir_all(&c.dir);
            }
            e
        };
        let ports = Self::bind_extra(&options, certs.as_ref(), &mut listeners).map_err(cleanup)?;

        let state = State::new(
            log::Log::new(),
            options.max_concurrent_streams,
            options.proxy_auth.clone(),
            load::Hub::new(options.max_load_streams, options.max_load_secs),
        );
        let shared = state.clone();
        let threads = options.threads;
        let (stop, stopped) = oneshot::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("testserver-{port}"))
            .spawn(move || {
                let rt = if threads == 0 {
                    tokio::runtime::Builder::new_current_thread().enable_all().build()
                } else {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(threads)
                        .enable_all()
                        .build()
                };
                let rt = match rt {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut tasks = Vec::new();
                    for (listener, kind) in listeners {
                        match conn::spawn_accept_loop(listener, kind, shared.clone()) {
                            Ok(task) => tasks.push(task),
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        }
                    }
                    let _ = ready_tx.send(Ok(()));
                    let _ = stopped.await;
                    for t in tasks {
                        t.abort();
                    }
                });
            })
            .map_err(cleanup)?;
        let server = Server {
            port,
            ports,
            certs,
            remove_cert_dir,
            state,
            stop: Some(stop),
            thread: Some(thread),
        };
        match ready.recv() {
            Ok(Ok(())) => Ok(server),
            Ok(Err(e)) => Err(e), // dropping `server` joins the thread and removes the dir
            Err(_) => Err(io::Error::other("testserver: the server thread died while starting")),
        }
    }

    /// Binds the optional listeners `options` asks for (each on an ephemeral port).
    fn bind_extra(
        options: &Options,
        certs: Option<&Certs>,
        listeners: &mut Vec<(std::net::TcpListener, Kind)>,
    ) -> io::Result<Ports> {
        let mut add = |kind: Kind| -> io::Result<Option<u16>> {
            let bound = bind(0)?;
            let port = bound[0].local_addr()?.port();
            listeners.extend(bound.into_iter().map(|l| (l, kind.clone())));
            Ok(Some(port))
        };
        let mut ports = Ports::default();
        let Some(certs) = certs else { return Ok(ports) };
        if options.tls {
            let http: &[&[u8]] = &[b"h2", b"http/1.1"];
            ports.tls = add(Kind::Tls(TlsAcceptor::from(certs.server_config(http, false)?)))?;
            ports.mtls = add(Kind::Tls(TlsAcceptor::from(certs.server_config(http, true)?)))?;
        }
        if options.proxies {
            let proxy_tls = TlsAcceptor::from(certs.server_config(&[b"http/1.1"], false)?);
            ports.http_proxy = add(Kind::HttpProxy)?;
            ports.https_proxy = add(Kind::HttpsProxy(proxy_tls))?;
            ports.socks5 = add(Kind::Socks5)?;
        }
        Ok(ports)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/PATH` (a leading `/` in `path` is optional).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// The TLS listener's port (client certificate optional), if started (`Options::tls`).
    pub fn tls_port(&self) -> Option<u16> {
        self.ports.tls
    }

    /// `https://127.0.0.1:TLS_PORT/PATH`.
    ///
    /// # Panics
    /// If the TLS listeners were not started (`Options::tls`).
    pub fn tls_url(&self, path: &str) -> String {
        let port = need(self.ports.tls, "the TLS listener", "tls");
        format!("https://127.0.0.1:{port}/{}", path.trim_start_matches('/'))
    }

    /// The mTLS listener's port (a client certificate signed by the CA is required).
    pub fn mtls_port(&self) -> Option<u16> {
        self.ports.mtls
    }

    /// `https://127.0.0.1:MTLS_PORT/PATH`.
    ///
    /// # Panics
    /// If the TLS listeners were not started (`Options::tls`).
    pub fn mtls_url(&self, path: &str) -> String {
        let port = need(self.ports.mtls, "the mTLS listener", "tls");
        format!("https://127.0.0.1:{port}/{}", path.trim_start_matches('/'))
    }

    /// `http://127.0.0.1:PORT` of the HTTP proxy.
    ///
    /// # Panics
    /// If the proxies were not started (`Options::proxies`).
    pub fn http_proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", need(self.ports.http_proxy, "the HTTP proxy", "proxies"))
    }

    /// `https://127.0.0.1:PORT` of the HTTPS proxy (TLS to the proxy, certificate from the CA).
    ///
    /// # Panics
    /// If the proxies were not started (`Options::proxies`).
    pub fn https_proxy_url(&self) -> String {
        format!("https://127.0.0.1:{}", need(self.ports.https_proxy, "the HTTPS proxy", "proxies"))
    }

    /// `socks5://127.0.0.1:PORT` of the SOCKS5 proxy.
    ///
    /// # Panics
    /// If the proxies were not started (`Options::proxies`).
    pub fn socks5_url(&self) -> String {
        format!("socks5://127.0.0.1:{}", need(self.ports.socks5, "the SOCKS5 proxy", "proxies"))
    }

    /// The generated CA and client identity, when TLS or the proxies were started.
    pub fn certs(&self) -> Option<&Certs> {
        self.certs.as_ref()
    }

    /// The requests recorded under `token` so far, in arrival order: the same data as
    /// `GET /log?t=TOKEN`, without going through HTTP.
    pub fn requests(&self, token: &str) -> Vec<Entry> {
        self.state.log.entries(token)
    }

    /// The distinct connection ids the requests under `token` came on, in order of first use:
    /// the `ids` of `GET /connections?t=TOKEN`.
    pub fn connections(&self, token: &str) -> Vec<u64> {
        let mut ids = Vec::new();
        for e in self.state.log.entries(token) {
            if !ids.contains(&e.conn) {
                ids.push(e.conn);
            }
        }
        ids
    }

    /// Every request the proxies have seen so far, in arrival order (`GET /proxy-log`).
    pub fn proxy_log(&self) -> Vec<ProxyEntry> {
        self.state.proxy_log.entries(None)
    }
}

fn need(port: Option<u16>, what: &str, option: &str) -> u16 {
    port.unwrap_or_else(|| {
        panic!("testserver: {what} is off; start the server with Options::new().{option}()")
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let (true, Some(certs)) = (self.remove_cert_dir, &self.certs) {
            let _ = std::fs::remove_dir_all(&certs.dir);
        }
    }
}

/// Binds `127.0.0.1:port`, and best-effort `[::1]` on the same port (so `localhost` reaches us).
pub fn bind(port: u16) -> io::Result<Vec<std::net::TcpListener>> {
    let v4 = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    let port = v4.local_addr()?.port();
    let mut all = vec![v4];
    if let Ok(v6) = std::net::TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
        all.push(v6);
    }
    for l in &all {
        l.set_nonblocking(true)?;
    }
    Ok(all)
}

/// Serves on already-bound listeners inside the current tokio runtime: the plain listener
/// (HTTP/1.1 and h2c). `_port` is unused (routes read each listener's own port); it stays for
/// existing callers. Returns the accept-loop tasks; connections run as their own tasks and end
/// with the runtime.
pub fn serve(
    listeners: Vec<std::net::TcpListener>,
    _port: u16,
) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let state = State::new(
        log::Log::new(),
        None,
        None,
        load::Hub::new(DEFAULT_MAX_STREAMS, DEFAULT_MAX_SECS),
    );
    listeners.into_iter().map(|l| conn::spawn_accept_loop(l, Kind::Plain, state.clone())).collect()
}
