//! The logs: every request whose query has `t=TOKEN` is recorded under TOKEN, and every request
//! a proxy listener sees is recorded in the proxy log.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Entry {
    pub method: String,
    pub path: String,
    /// The raw query, still percent-encoded, without `?`.
    pub query: String,
    /// Lowercased header names with their values (repeated headers joined by `, `), in order.
    pub headers: Vec<(String, String)>,
    /// The request body, decoded as lossy UTF-8.
    pub body: String,
    /// Milliseconds since the server started, when the request head arrived.
    pub at_ms: f64,
    /// Milliseconds since the server started, when the server was done with the response: the
    /// body ended, or the connection went away. `None` while the response is still running.
    pub done_ms: Option<f64>,
    /// `"HTTP/1.1"` or `"HTTP/2.0"` (`"HTTP/1.0"` for a 1.0 client).
    pub version: String,
    /// The id of the TCP connection the request came on (unique per server, from 1).
    pub conn: u64,
    /// The request came over TLS.
    pub tls: bool,
    /// The client presented a certificate signed by the server's CA.
    pub client_cert: bool,
}

/// Tokens → entries, plus the server's start instant.
#[derive(Debug)]
pub(crate) struct Log {
    start: Instant,
    by_token: Mutex<HashMap<String, Vec<Entry>>>,
}

impl Log {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), by_token: Mutex::new(HashMap::new()) })
    }

    pub(crate) fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    /// Records `entry` under `token`. Returns its index and how many entries under `token`
    /// (this one included) have the same path: the 1-based connection number `k`.
    pub(crate) fn record(&self, token: &str, entry: Entry) -> (usize, usize) {
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(token.to_owned()).or_default();
        let k = 1 + list.iter().filter(|e| e.path == entry.path).count();
        list.push(entry);
        (list.len() - 1, k)
    }

    pub(crate) fn entries(&self, token: &str) -> Vec<Entry> {
        let map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token).cloned().unwrap_or_default()
    }

    fn mark_done(&self, token: &str, index: usize) {
        let now = self.now_ms();
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(token).and_then(|l| l.get_mut(index)) {
            e.done_ms.get_or_insert(now);
        }
    }
}

/// Sets `done_ms` of one entry when dropped (the response body is dropped by hyper when it is
/// fully written or when the connection closes).
#[derive(Debug)]
pub(crate) struct DoneGuard {
    pub(crate) log: Arc<Log>,
    pub(crate) token: String,
    pub(crate) index: usize,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.log.mark_done(&self.token, self.index);
    }
}

/// One request seen by a proxy listener.
#[derive(Debug, Clone)]
pub struct ProxyEntry {
    /// `"http"`, `"https"` (the proxy behind TLS) or `"socks5"`.
    pub kind: String,
    /// The id of the client's connection to the proxy (same counter as `Entry::conn`).
    pub conn: u64,
    /// HTTP proxies: the request line as received (`GET http://127.0.0.1:8080/x HTTP/1.1`,
    /// `CONNECT 127.0.0.1:8443 HTTP/1.1`). SOCKS5: `CONNECT HOST:PORT`; empty when the
    /// authentication failed before any request.
    pub request: String,
    /// The target as `host:port` (`[::1]:PORT` for IPv6), as the client named it.
    pub target: String,
    /// The `Proxy-Authorization` header, if any (HTTP proxies).
    pub proxy_authorization: Option<String>,
    /// The user name: from `Proxy-Authorization: Basic`, or the SOCKS5 user name.
    pub user: Option<String>,
    /// The password, from the same place.
    pub password: Option<String>,
    /// The proxy forwarded the request (or opened the tunnel).
    pub allowed: bool,
    /// What the client was told: the HTTP status of the proxy's own answer (200 for an opened
    /// tunnel, the target's status for a forwarded request, 403 refused, 407 authentication,
    /// 502 unreachable, 400 malformed); for SOCKS5 the reply code (0 success, 2 not allowed,
    /// 5 refused, 7 command not supported, 8 address type not supported), 1 when the user
    /// name/password subnegotiation failed, 255 when no offered method was acceptable.
    /// 0 while an HTTP request is still waiting for the target's answer.
    pub status: u16,
    /// Milliseconds since the server started, when the request arrived.
    pub at_ms: f64,
}

/// Every proxied request, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct ProxyLog {
    entries: Mutex<Vec<ProxyEntry>>,
}

impl ProxyLog {
    /// Appends `entry`; returns its index for `update`.
    pub(crate) fn record(&self, entry: ProxyEntry) -> usize {
        let mut all = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        all.push(entry);
        all.len() - 1
    }

    pub(crate) fn update(&self, index: usize, change: impl FnOnce(&mut ProxyEntry)) {
        let mut all = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = all.get_mut(index) {
            change(e);
        }
    }

    /// All entries, or those whose `user` is `user`.
    pub(crate) fn entries(&self, user: Option<&str>) -> Vec<ProxyEntry> {
        let all = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().filter(|e| user.is_none() || e.user.as_deref() == user).cloned().collect()
    }
}

/// The JSON array served by `GET /proxy-log`.
pub(crate) fn proxy_json(entries: &[ProxyEntry]) -> String {
    let opt = |out: &mut String, v: &Option<String>| match v {
        Some(v) => json_str(out, v),
        None => out.push_str("null"),
    };
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n{\"kind\":");
        json_str(&mut out, &e.kind);
        let _ = write!(out, ",\"conn\":{},\"request\":", e.conn);
        json_str(&mut out, &e.request);
        out.push_str(",\"target\":");
        json_str(&mut out, &e.target);
        out.push_str(",\"proxy_authorization\":");
        opt(&mut out, &e.proxy_authorization);
        out.push_str(",\"user\":");
        opt(&mut out, &e.user);
        out.push_str(",\"password\":");
        opt(&mut out, &e.password);
        let _ = write!(
            out,
            ",\"allowed\":{},\"status\":{},\"at_ms\":{:.3}}}",
            e.allowed, e.status, e.at_ms
        );
    }
    out.push_str("\n]\n");
    out
}

/// The JSON array served by `GET /log?t=TOKEN`.
pub(crate) fn to_json(entries: &[Entry]) -> String {
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n{\"method\":");
        json_str(&mut out, &e.method);
        out.push_str(",\"path\":");
        json_str(&mut out, &e.path);
        out.push_str(",\"query\":");
        json_str(&mut out, &e.query);
        out.push_str(",\"headers\":{");
        for (j, (name, value)) in e.headers.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_str(&mut out, name);
            out.push(':');
            json_str(&mut out, value);
        }
        out.push_str("},\"body\":");
        json_str(&mut out, &e.body);
        let _ = write!(out, ",\"at_ms\":{:.3},\"done_ms\":", e.at_ms);
        match e.done_ms {
            Some(d) => {
                let _ = write!(out, "{d:.3}");
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"version\":");
        json_str(&mut out, &e.version);
        let _ =
            write!(out, ",\"conn\":{},\"tls\":{},\"client_cert\":{}", e.conn, e.tls, e.client_cert);
        out.push('}');
    }
    out.push_str("\n]\n");
    out
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
