//! A real HTTP/1.1 server-sent-events scenario server for the tests of every binding, the demo
//! and the benchmarks. See `testserver/README.md` for the URL scheme.
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
mod log;
mod query;
mod routes;
mod stream;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use crate::log::Entry;

/// The §11 68 "tricky" stream served by `/scenario/tricky`.
///
/// BOM; `data: α…` ended by CRLF; `data: 😀` (4-byte UTF-8) ended by CRLF; `id: 7` ended by CR,
/// then a lone CR (an empty line: dispatch); a comment; `event: x`; a bare `data`; an empty line.
/// Expected, however it is split: `message` with data `"α…\n😀"` and lastEventId `7`, then `x`
/// with data `""` and lastEventId `7`.
pub const TRICKY: &[u8] = b"\xEF\xBB\xBFdata: \xCE\xB1\xE2\x80\xA6\r\ndata: \xF0\x9F\x98\x80\r\nid: 7\r\r: comment\nevent: x\ndata\n\n";

/// A running server. Dropping it stops the server (open connections are cut).
#[derive(Debug)]
pub struct Server {
    port: u16,
    log: Arc<log::Log>,
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
        let listeners = bind(port)?;
        let port = listeners[0].local_addr()?.port();
        let (stop, stopped) = oneshot::channel();
        let log = log::Log::new();
        let shared = log.clone();
        let thread =
            std::thread::Builder::new().name(format!("testserver-{port}")).spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("testserver: cannot build the runtime");
                rt.block_on(async move {
                    let tasks =
                        serve_with(listeners, port, shared).expect("testserver: cannot listen");
                    let _ = stopped.await;
                    for t in tasks {
                        t.abort();
                    }
                });
            })?;
        Ok(Server { port, log, stop: Some(stop), thread: Some(thread) })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/PATH` (a leading `/` in `path` is optional).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// The requests recorded under `token` so far, in arrival order: the same data as
    /// `GET /log?t=TOKEN`, without going through HTTP.
    pub fn requests(&self, token: &str) -> Vec<Entry> {
        self.log.entries(token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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

/// Serves on already-bound listeners inside the current tokio runtime. Returns the accept-loop
/// tasks; connections run as their own tasks and end with the runtime.
pub fn serve(
    listeners: Vec<std::net::TcpListener>,
    port: u16,
) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
    serve_with(listeners, port, log::Log::new())
}

fn serve_with(
    listeners: Vec<std::net::TcpListener>,
    port: u16,
    log: Arc<log::Log>,
) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let state = Arc::new(routes::State { log, port });
    let mut tasks = Vec::new();
    for l in listeners {
        let listener = TcpListener::from_std(l)?;
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| routes::handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }));
    }
    Ok(tasks)
}
