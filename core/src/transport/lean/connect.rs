//! Getting a byte stream to the server: DNS, TCP (TCP_NODELAY), an HTTP proxy (absolute-form
//! requests for http, CONNECT for https), and TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Host, Url};

use hyper_util::client::proxy::matcher::Matcher;

use super::http1;
use crate::transport::env_proxy;
use crate::{Error, ErrorKind};

/// A connection: plain TCP or TLS over TCP (boxed: rustls state is large).
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Io {
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(bytes).await,
            Io::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }
}

/// An HTTP proxy.
#[derive(Clone, Debug)]
pub(crate) struct Proxy {
    pub url: Url,
    /// `Proxy-Authorization` value, from the proxy URL's user info.
    pub auth: Option<String>,
}

impl Proxy {
    /// The proxy's URL for messages: without its password.
    pub(crate) fn shown(&self) -> String {
        crate::transport::redact(self.url.as_str())
    }

    /// Parses a proxy setting: `http://[user:pass@]host[:port]`, or a bare `host:port`.
    pub(crate) fn parse(s: &str) -> Result<Proxy, String> {
        let s = s.trim();
        let url = if s.contains("://") {
            Url::parse(s).ok()
        } else {
            Url::parse(&format!("http://{s}")).ok()
        }
        .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
        .ok_or_else(|| format!("invalid proxy URL {:?}", super::super::redact(s)))?;
        if url.scheme() != "http" {
            return Err(format!(
                "unsupported proxy URL {:?}: the lean transport supports only http:// proxies",
                super::super::redact(s)
            ));
        }
        let auth = (!url.username().is_empty()).then(|| {
            basic_auth(&pct_decode(url.username()), &pct_decode(url.password().unwrap_or("")))
        });
        Ok(Proxy { url, auth })
    }

    fn host_port(&self) -> (Host<&str>, u16) {
        (
            self.url.host().unwrap_or(Host::Domain("")),
            self.url.port_or_known_default().unwrap_or(80),
        )
    }
}

/// Proxy settings: the `proxy` option, or the environment (as reqwest reads it).
#[derive(Debug, Default)]
pub(crate) enum Proxies {
    #[default]
    Direct,
    /// The `proxy` option: every request.
    Explicit(Proxy),
    /// The environment's proxies, `NO_PROXY` included.
    Env(Box<Matcher>),
}

impl Proxies {
    /// The environment's proxies (see `transport::env_proxy`). A proxy set there that this
    /// client cannot use (anything but http://) is an error, never bypassed: connecting
    /// directly would go around a proxy the user meant to use.
    pub(crate) fn from_env() -> Result<Proxies, String> {
        Ok(match env_proxy::matcher("lean", &["http"])? {
            Some(m) => Proxies::Env(Box::new(m)),
            None => Proxies::Direct,
        })
    }

    pub(crate) fn for_url(&self, url: &Url) -> Option<Proxy> {
        match self {
            Proxies::Direct => None,
            Proxies::Explicit(p) => Some(p.clone()),
            Proxies::Env(m) => {
                let i = m.intercept(&url.as_str().parse().ok()?)?;
                Some(Proxy {
                    // http:// with a host and no user info (`env_proxy::matcher` checked it).
                    url: Url::parse(&i.uri().to_string()).ok()?,
                    auth: i.basic_auth().and_then(|h| h.to_str().ok()).map(str::to_owned),
                })
            }
        }
    }
}

pub(crate) fn pct_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `Basic` credentials (RFC 7617).
pub(crate) fn basic_auth(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

fn connect_error(msg: String) -> Error {
    Error::new(ErrorKind::Connect, msg)
}

/// Resolves `host` and connects to its addresses in order until one answers.
async fn tcp(host: Host<&str>, port: u16) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::from((ip, port))],
        Host::Ipv6(ip) => vec![SocketAddr::from((ip, port))],
        Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| {
                connect_error(format!("cannot resolve host {name:?}: {e}")).with_source(e)
            })?
            .collect(),
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) => connect_error(format!("cannot connect to {addr}: {e}")).with_source(e),
        None => connect_error(format!("host {host} has no address")),
    })
}

/// `host:port` as written in a request target or Host header (IPv6 in brackets).
pub(crate) fn authority(host: &Host<&str>, port: u16) -> String {
    match host {
        Host::Ipv6(ip) => format!("[{ip}]:{port}"),
        h => format!("{h}:{port}"),
    }
}

/// Opens the connection for `url`; true when requests must use the absolute form (proxied http).
pub(crate) async fn establish(
    url: &Url,
    proxy: Option<&Proxy>,
    tls: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, String>,
) -> Result<(Io, bool), Error> {
    let host = url.host().ok_or_else(|| connect_error(format!("the URL {url} has no host")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let https = url.scheme() == "https";
    let tcp = match proxy {
        None => tcp(host.clone(), port).await?,
        Some(p) => {
            let (ph, pp) = p.host_port();
            let mut s = tcp(ph, pp).await.map_err(|e| {
                Error::new(e.kind(), format!("proxy {}: {}", p.shown(), e.message()))
            })?;
            if !https {
                return Ok((Io::Plain(s), true));
            }
            tunnel(&mut s, &authority(&host, port), p).await?;
            s
        }
    };
    if !https {
        return Ok((Io::Plain(tcp), false));
    }
    let config = tls().map_err(|m| Error::new(ErrorKind::InvalidOption, m))?;
    let name = match host {
        Host::Domain(d) => rustls::pki_types::ServerName::try_from(d.to_owned())
            .map_err(|e| connect_error(format!("invalid TLS server name {d:?}: {e}")))?,
        Host::Ipv4(ip) => rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
        Host::Ipv6(ip) => rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
    };
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
        connect_error(format!("TLS handshake with {} failed: {e}", url.host_str().unwrap_or("")))
            .with_source(e)
    })?;
    Ok((Io::Tls(Box::new(tls)), false))
}

/// HTTP CONNECT through the proxy.
async fn tunnel(s: &mut TcpStream, target: &str, p: &Proxy) -> Result<(), Error> {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = &p.auth {
        req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    let broke = |e: io::Error| {
        connect_error(format!("proxy {}: CONNECT {target} failed: {e}", p.shown())).with_source(e)
    };
    s.write_all(req.as_bytes()).await.map_err(broke)?;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match http1::parse_head(&mut buf) {
            Ok(Some(h)) if (200..300).contains(&h.status) => {
                if !buf.is_empty() {
                    return Err(connect_error(format!(
                        "proxy {}: unexpected bytes after the CONNECT response",
                        p.shown()
                    )));
                }
                return Ok(());
            }
            Ok(Some(h)) if (100..200).contains(&h.status) => continue,
            Ok(Some(h)) => {
                return Err(connect_error(format!(
                    "proxy {} refused CONNECT {target}: HTTP {} {}",
                    p.shown(),
                    h.status,
                    http1::reason(h.status, &h.reason)
                ))
                .with_status(h.status));
            }
            Ok(None) => {}
            Err(m) => return Err(connect_error(format!("proxy {}: {m}", p.shown()))),
        }
        buf.reserve(1024);
        if s.read_buf(&mut buf).await.map_err(broke)? == 0 {
            return Err(connect_error(format!(
                "proxy {} closed the connection during CONNECT {target}",
                p.shown()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn proxy_urls() {
        assert_eq!(Proxy::parse("127.0.0.1:3128").unwrap().url.as_str(), "http://127.0.0.1:3128/");
        let p = Proxy::parse("http://u%20x:p@proxy:8080").unwrap();
        assert_eq!(p.auth.as_deref(), Some("Basic dSB4OnA="));
        for bad in ["::not a url", "https://p:1", "socks5://p:1", "http://", ""] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_proxies_by_the_matcher() {
        let m = Matcher::builder()
            .http("http://u%20x:p@proxy:8080".to_owned())
            .no("skip.me, 10.0.0.0/8".to_owned())
            .build();
        let proxies = Proxies::Env(Box::new(m));
        let p = proxies.for_url(&u("http://a/")).unwrap();
        assert_eq!(p.url.as_str(), "http://proxy:8080/");
        assert_eq!(p.auth.as_deref(), Some("Basic dSB4OnA="));
        for direct in ["http://skip.me/", "http://a.skip.me/", "http://10.1.2.3/", "https://a/"] {
            assert!(proxies.for_url(&u(direct)).is_none(), "{direct}");
        }
        // An explicit proxy applies to everything.
        let p = Proxy::parse("http://p:1").unwrap();
        assert!(Proxies::Explicit(p).for_url(&u("https://skip.me/")).is_some());
    }
}
