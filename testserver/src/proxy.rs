//! The HTTP forward proxy, in clear (`http`) or behind TLS (`https`): absolute-form requests
//! for `http://` targets are forwarded (one upstream connection per request), `CONNECT` opens a
//! byte tunnel. Every request is recorded in the proxy log before anything else happens.
//!
//! Only loopback targets are ever contacted (`loopback`): this machine must never send traffic
//! elsewhere, whatever a client asks for.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::log::ProxyEntry;
use crate::routes::State;

type ProxyBody = Either<Incoming, Full<Bytes>>;

/// The address to connect to for `host:port`, if `host` is a loopback name: `127.0.0.1`,
/// `localhost` (taken as 127.0.0.1, never resolved) or `::1` (with or without brackets).
pub(crate) fn loopback(host: &str, port: u16) -> Option<SocketAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    let ok = match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == std::net::Ipv6Addr::LOCALHOST,
    };
    ok.then_some(SocketAddr::new(ip, port))
}

/// Whether `user`/`password` satisfy the configured proxy credentials (anything does when none
/// are configured).
pub(crate) fn credentials_ok(state: &State, user: Option<&str>, password: Option<&str>) -> bool {
    match &state.proxy_auth {
        None => true,
        Some((u, p)) => user == Some(u.as_str()) && password == Some(p.as_str()),
    }
}

/// Serves one client connection to the proxy.
pub(crate) async fn serve(stream: TcpStream, tls: Option<TlsAcceptor>, id: u64, state: Arc<State>) {
    let kind = if tls.is_some() { "https" } else { "http" };
    let svc = service_fn(move |req| handle(state.clone(), kind, id, req));
    let builder = http1::Builder::new();
    match tls {
        None => {
            let _ = builder.serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
        }
        Some(acceptor) => {
            let Ok(stream) = acceptor.accept(stream).await else { return };
            let _ = builder.serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
        }
    }
}

/// `Basic BASE64(user:password)` → (user, password).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8_lossy(&decoded);
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn answer(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(text.to_owned()))));
    *resp.status_mut() = status;
    resp
}

async fn handle(
    state: Arc<State>,
    kind: &'static str,
    conn: u64,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let auth = req
        .headers()
        .get(PROXY_AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (user, password) = auth.as_deref().and_then(basic_credentials).unzip();
    let authority = req.uri().authority().cloned();
    let connect = req.method() == Method::CONNECT;
    // The port the target is reached on: CONNECT must name it, http:// defaults to 80.
    let port = authority.as_ref().and_then(|a| a.port_u16()).or((!connect).then_some(80));
    let target = match (&authority, port) {
        (Some(a), Some(port)) => format!("{}:{port}", a.host()),
        (Some(a), None) => a.to_string(),
        (None, _) => String::new(),
    };
    // Recorded before anything else, so that a request whose answer never comes is seen too.
    let index = state.proxy_log.record(ProxyEntry {
        kind: kind.to_owned(),
        conn,
        request: format!("{} {} {:?}", req.method(), req.uri(), req.version()),
        target,
        proxy_authorization: auth,
        user: user.clone(),
        password: password.clone(),
        allowed: false,
        status: 0,
        at_ms: state.log.now_ms(),
    });
    let forward = |allowed: bool| state.proxy_log.update(index, |e| e.allowed = allowed);

    let resp = 'resp: {
        let Some(authority) = authority else {
            let text = "not a proxy request: send absolute-form http://HOST:PORT/... or CONNECT\n";
            break 'resp answer(StatusCode::BAD_REQUEST, text);
        };
        if !connect && req.uri().scheme_str() != Some("http") {
            let text = "absolute-form requests must be http://; use CONNECT for https\n";
            break 'resp answer(StatusCode::BAD_REQUEST, text);
        }
        let Some(port) = port else {
            break 'resp answer(StatusCode::BAD_REQUEST, "CONNECT needs HOST:PORT\n");
        };
        if !credentials_ok(&state, user.as_deref(), password.as_deref()) {
            let mut resp = answer(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "proxy credentials\n");
            resp.headers_mut()
                .insert(PROXY_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"testserver\""));
            break 'resp resp;
        }
        let Some(addr) = loopback(authority.host(), port) else {
            let text = "refused: this proxy only forwards to 127.0.0.1, localhost and [::1]\n";
            break 'resp answer(StatusCode::FORBIDDEN, text);
        };
        match forward_to(addr, connect, req, &forward).await {
            Ok(resp) => resp,
            Err(e) => answer(StatusCode::BAD_GATEWAY, &format!("{authority}: {e}\n")),
        }
    };
    let status = resp.status().as_u16();
    state.proxy_log.update(index, |e| e.status = status);
    Ok(resp)
}

/// Opens the tunnel (CONNECT) or forwards the request in origin-form to `addr`.
async fn forward_to(
    addr: SocketAddr,
    connect: bool,
    mut req: Request<Incoming>,
    forwarded: &impl Fn(bool),
) -> Result<Response<ProxyBody>, Box<dyn std::error::Error + Send + Sync>> {
    let upstream = TcpStream::connect(addr).await?;
    let _ = upstream.set_nodelay(true);
    forwarded(true);
    if connect {
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(req).await {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        return Ok(answer(StatusCode::OK, ""));
    }
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await?;
    tokio::spawn(connection);
    // Origin-form towards the target, and no proxy credentials past the proxy.
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *req.uri_mut() = path.parse()?;
    req.headers_mut().remove(PROXY_AUTHORIZATION);
    req.headers_mut().remove("proxy-connection");
    Ok(sender.send_request(req).await?.map(Either::Left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert_eq!(loopback("127.0.0.1", 80), Some(SocketAddr::from(([127, 0, 0, 1], 80))));
        assert_eq!(loopback("LocalHost", 81), Some(SocketAddr::from(([127, 0, 0, 1], 81))));
        assert!(loopback("[::1]", 82).is_some_and(|a| a.is_ipv6()));
        assert!(loopback("::1", 82).is_some_and(|a| a.is_ipv6()));
        for host in ["127.0.0.2", "10.0.0.1", "example.com", "localhost.example.com", "0.0.0.0", ""]
        {
            assert_eq!(loopback(host, 80), None, "{host}");
        }
    }

    #[test]
    fn decodes_basic_credentials() {
        assert_eq!(basic_credentials("Basic dTpwOnE="), Some(("u".into(), "p:q".into())));
        assert_eq!(basic_credentials("basic  dTpw "), Some(("u".into(), "p".into())));
        assert_eq!(basic_credentials("Bearer dTpw"), None);
        assert_eq!(basic_credentials("Basic !!"), None);
    }
}
