//! The request log: every request whose query has `t=TOKEN` is recorded under TOKEN.

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
