//! Accepting connections: the accept loops of every listener, TLS handshakes, HTTP/1.1 or
//! HTTP/2 per connection, and the per-connection facts the request log records.
//!
//! Every connection gets an id from one counter (so ids are unique across listeners and the two
//! logs) and a `ConnInfo` that its requests can see. A route can ask for the connection to be
//! reset (`ConnInfo::reset`): the connection task then drops the socket with `SO_LINGER` 0, which
//! makes the kernel send a TCP RST instead of a FIN.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use crate::routes::State;

/// What a listener serves.
#[derive(Clone)]
pub(crate) enum Kind {
    /// HTTP/1.1, and HTTP/2 with prior knowledge (h2c): the preface decides.
    Plain,
    /// TLS, then HTTP/2 or HTTP/1.1 as ALPN decided.
    Tls(TlsAcceptor),
    /// The forward proxy (absolute-form requests and CONNECT), in clear.
    HttpProxy,
    /// The same proxy behind TLS.
    HttpsProxy(TlsAcceptor),
    /// SOCKS5.
    Socks5,
}

/// Connection counters shared by all listeners.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    next_id: AtomicU64,
    /// HTTP connections (plain and TLS listeners) accepted so far.
    pub(crate) accepted: AtomicU64,
    /// HTTP connections still open.
    pub(crate) open: AtomicU64,
}

impl Counters {
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Decrements `open` when the connection ends.
struct OpenGuard(Arc<State>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The facts about one connection that its requests see.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) id: u64,
    pub(crate) tls: bool,
    /// The client presented a certificate (verified against our CA).
    pub(crate) client_cert: bool,
    /// The scheme and port of the listener, for routes that build URLs back to it.
    pub(crate) scheme: &'static str,
    pub(crate) port: u16,
    reset: Arc<Reset>,
}

impl ConnInfo {
    /// Ends the whole connection with a TCP RST, whatever it is doing.
    pub(crate) fn reset(&self) {
        self.reset.requested.store(true, Ordering::SeqCst);
        self.reset.notify.notify_one();
    }
}

#[derive(Debug, Default)]
struct Reset {
    requested: AtomicBool,
    notify: Notify,
}

/// A TCP stream that sets `SO_LINGER` 0 when dropped after a reset was requested.
struct Tcp {
    inner: TcpStream,
    reset: Arc<Reset>,
}

impl Drop for Tcp {
    fn drop(&mut self) {
        if self.reset.requested.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections on `listener` forever, serving each as `kind` on its own task.
pub(crate) fn spawn_accept_loop(
    listener: std::net::TcpListener,
    kind: Kind,
    state: Arc<State>,
) -> io::Result<tokio::task::JoinHandle<()>> {
    let port = listener.local_addr()?.port();
    let listener = TcpListener::from_std(listener)?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let id = state.conns.next_id();
            let (kind, state) = (kind.clone(), state.clone());
            tokio::spawn(async move {
                match kind {
                    Kind::Plain => serve_http(stream, None, id, port, state).await,
                    Kind::Tls(acceptor) => {
                        serve_http(stream, Some(acceptor), id, port, state).await
                    }
                    Kind::HttpProxy => crate::proxy::serve(stream, None, id, state).await,
                    Kind::HttpsProxy(acceptor) => {
                        crate::proxy::serve(stream, Some(acceptor), id, state).await
                    }
                    Kind::Socks5 => crate::socks5::serve(stream, id, state).await,
                }
            });
        }
    }))
}

/// Which HTTP versions a connection may speak.
#[derive(Clone, Copy)]
enum Versions {
    /// Detect the HTTP/2 preface (plain port; TLS without ALPN).
    Auto,
    H1,
    H2,
}

async fn serve_http(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    id: u64,
    port: u16,
    state: Arc<State>,
) {
    state.conns.accepted.fetch_add(1, Ordering::Relaxed);
    state.conns.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(state.clone());
    let reset = Arc::new(Reset::default());
    let tcp = Tcp { inner: stream, reset: reset.clone() };
    let Some(acceptor) = tls else {
        let info = ConnInfo { id, tls: false, client_cert: false, scheme: "http", port, reset };
        return serve_on(tcp, Versions::Auto, info, state).await;
    };
    // A failed handshake (no client certificate on the mTLS port, an untrusted CA...) just
    // closes the connection; rustls has already sent the alert.
    let Ok(tls) = acceptor.accept(tcp).await else { return };
    let session = tls.get_ref().1;
    let client_cert = session.peer_certificates().is_some_and(|c| !c.is_empty());
    let versions = match session.alpn_protocol() {
        Some(b"h2") => Versions::H2,
        Some(_) => Versions::H1,
        None => Versions::Auto,
    };
    let info = ConnInfo { id, tls: true, client_cert, scheme: "https", port, reset };
    serve_on(tls, versions, info, state).await;
}

async fn serve_on<I>(io: I, versions: Versions, info: ConnInfo, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let reset = info.reset.clone();
    let info = Arc::new(info);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    if let Some(n) = state.max_concurrent_streams {
        builder.http2().max_concurrent_streams(n);
    }
    let builder = match versions {
        Versions::Auto => builder,
        Versions::H1 => builder.http1_only(),
        Versions::H2 => builder.http2_only(),
    };
    let svc = service_fn(move |req| crate::routes::handle(state.clone(), info.clone(), req));
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    // Dropping the connection drops the socket; `Tcp` makes that a RST when asked to.
    tokio::select! {
        _ = conn => {}
        _ = reset.notify.notified() => {}
    }
}
