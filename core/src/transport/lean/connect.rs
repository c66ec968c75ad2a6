//! Getting a byte stream to the server: DNS, TCP (TCP_NODELAY), an HTTP proxy (absolute-form
//! requests for http, CONNECT for https), and TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Host, Url};

use super::http1;
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

/// Proxy settings: the `proxy` option, or the environment as curl reads it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proxies {
    all: Option<Proxy>,
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: Vec<String>,
}

/// The first of `names` set to something, with its name.
fn env<'a>(names: &[&'a str]) -> Option<(&'a str, String)> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
}

impl Proxies {
    pub(crate) fn explicit(p: Proxy) -> Proxies {
        Proxies { all: Some(p), ..Proxies::default() }
    }

    /// `http_proxy`, `HTTPS_PROXY`/`https_proxy`, `ALL_PROXY`/`all_proxy`, `NO_PROXY`/`no_proxy`.
    /// Like curl, the uppercase `HTTP_PROXY` is not read (CGI sets it from a request header).
    /// A proxy set there that this client cannot use is an error, never bypassed: connecting
    /// directly would go around a proxy the user meant to use.
    pub(crate) fn from_env() -> Result<Proxies, String> {
        let parse = |names: &[&str]| -> Result<Option<Proxy>, String> {
            let Some((name, v)) = env(names) else { return Ok(None) };
            Proxy::parse(&v).map(Some).map_err(|e| {
                format!(
                    "the environment's {name} cannot be used by the lean transport ({e}); use \
                     the default transport, or unset {name}"
                )
            })
        };
        let all = parse(&["all_proxy", "ALL_PROXY"])?;
        Ok(Proxies {
            http: parse(&["http_proxy"])?.or_else(|| all.clone()),
            https: parse(&["https_proxy", "HTTPS_PROXY"])?.or_else(|| all.clone()),
            all: None,
            no_proxy: env(&["no_proxy", "NO_PROXY"])
                .map(|(_, v)| {
                    v.split(',')
                        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    pub(crate) fn for_url(&self, url: &Url) -> Option<&Proxy> {
        if let Some(p) = &self.all {
            return Some(p);
        }
        let p = if url.scheme() == "https" { self.https.as_ref() } else { self.http.as_ref() }?;
        if no_proxy_matches(&self.no_proxy, url) { None } else { Some(p) }
    }
}

/// curl's NO_PROXY: `*`, host names matching exactly or as a domain suffix, IPs and CIDRs.
fn no_proxy_matches(list: &[String], url: &Url) -> bool {
    let host = match url.host() {
        Some(Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => return false,
    };
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    list.iter().any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.trim_start_matches('.').trim_start_matches('[').trim_end_matches(']');
        if let Some(ip) = ip {
            if let Some((net, bits)) = entry.split_once('/') {
                return cidr_contains(net, bits, ip);
            }
            return entry.parse::<std::net::IpAddr>().is_ok_and(|e| e == ip);
        }
        host == entry || host.ends_with(&format!(".{entry}"))
    })
}

fn cidr_contains(net: &str, bits: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

pub(crate) fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn basic_auth(user: &str, pass: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{pass}");
    let mut out = String::from("Basic ");
    for c in input.as_bytes().chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    fn no_proxy_like_curl() {
        let list: Vec<String> = ["example.com", ".internal", "10.0.0.0/8", "::1", "192.168.1.1"]
            .map(String::from)
            .into();
        for hit in [
            "http://example.com/",
            "http://a.example.com/",
            "https://x.internal:8443/",
            "http://10.1.2.3/",
            "http://[::1]:80/",
            "http://192.168.1.1/",
        ] {
            assert!(no_proxy_matches(&list, &u(hit)), "{hit}");
        }
        for miss in ["http://notexample.com/", "http://11.0.0.1/", "http://192.168.1.2/"] {
            assert!(!no_proxy_matches(&list, &u(miss)), "{miss}");
        }
        assert!(no_proxy_matches(&["*".to_owned()], &u("http://any/")));
        let p = Proxy::parse("http://p:1").unwrap();
        let proxies = Proxies {
            all: None,
            http: Some(p.clone()),
            https: None,
            no_proxy: vec!["skip.me".into()],
        };
        assert!(proxies.for_url(&u("http://a/")).is_some());
        assert!(proxies.for_url(&u("http://skip.me/")).is_none());
        assert!(proxies.for_url(&u("https://a/")).is_none());
        // An explicit proxy applies to everything.
        assert!(Proxies::explicit(p).for_url(&u("https://skip.me/")).is_some());
    }
}
