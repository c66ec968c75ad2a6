//! `/stream`: the workload generator for the demo and the benchmarks.
//!
//! Built for speed: the padding is pre-built once per request, each HTTP write is assembled in a
//! reused `BytesMut` (its storage is reclaimed once hyper has written and dropped earlier
//! chunks) and frozen into one `Bytes`; numbers are formatted by hand, never with `format!`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::{Instant, Sleep};

use crate::query::Query;

const DATA_HEAD: &[u8] = b"data: {\"seq\":";
const PAYLOAD_HEAD: &[u8] = b",\"payload\":\"";
const DATA_TAIL: &[u8] = b"\"}\n\n";
/// The JSON text around the padding, not counting the digits of `seq`.
const JSON_FIXED: usize = DATA_HEAD.len() - b"data: ".len() + PAYLOAD_HEAD.len() + 2;

/// How events are grouped into HTTP body writes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chunking {
    /// One write per event.
    Event,
    /// Coalesce into writes of about this many bytes.
    Bytes(usize),
}

/// The parameters and state of one `/stream` response.
pub(crate) struct StreamGen {
    /// Number of events to send; `None` = endless.
    count: Option<u64>,
    /// The next sequence number (1-based).
    seq: u64,
    /// `event: T\n`, or empty.
    event_line: Bytes,
    with_id: bool,
    /// The wanted size of each `data:` value.
    size: usize,
    /// `size` bytes of padding.
    pad: Bytes,
    chunking: Chunking,
    /// Events per second; 0 = as fast as possible.
    rate: f64,
    started: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    buf: BytesMut,
    hold: bool,
}

impl StreamGen {
    pub(crate) fn from_query(q: &Query) -> Self {
        let size = q.num("size").unwrap_or(16).min(64 << 20) as usize;
        let chunking = match q.text("chunk").as_deref() {
            Some("event") => Chunking::Event,
            Some(n) => Chunking::Bytes(n.trim().parse::<usize>().unwrap_or(16384).max(1)),
            None => Chunking::Bytes(16384),
        };
        let rate = q.text("rate").and_then(|r| r.trim().parse::<f64>().ok()).unwrap_or(0.0);
        let event_line = match q.get("type") {
            Some(t) if !t.is_empty() => {
                let mut line = b"event: ".to_vec();
                line.extend(t.iter().filter(|&&b| b != b'\r' && b != b'\n'));
                line.push(b'\n');
                Bytes::from(line)
            }
            _ => Bytes::new(),
        };
        let mut buf = BytesMut::new();
        if let Some(retry) = q.num("retry") {
            buf.put_slice(b"retry: ");
            put_u64(&mut buf, retry);
            buf.put_u8(b'\n');
        }
        Self {
            count: match q.num("count").unwrap_or(10) {
                0 => None,
                n => Some(n),
            },
            seq: 1,
            event_line,
            with_id: q.flag("id"),
            size,
            pad: Bytes::from(vec![b'x'; size]),
            chunking,
            rate: if rate.is_finite() && rate > 0.0 { rate } else { 0.0 },
            started: Instant::now(),
            sleep: None,
            buf,
            hold: q.flag("hold"),
        }
    }

    fn target(&self) -> usize {
        match self.chunking {
            Chunking::Event => 1,
            Chunking::Bytes(n) => n,
        }
    }

    fn finished(&self) -> bool {
        self.count.is_some_and(|n| self.seq > n)
    }

    /// Appends event number `self.seq` to the buffer.
    fn put_event(&mut self) {
        let seq = self.seq;
        let mut digits = [0u8; 20];
        let d = fmt_u64(seq, &mut digits);
        let pad = self.size.saturating_sub(JSON_FIXED + d.len());
        let need = self.event_line.len()
            + 25
            + DATA_HEAD.len()
            + 2 * d.len()
            + PAYLOAD_HEAD.len()
            + pad
            + DATA_TAIL.len();
        if self.buf.capacity() - self.buf.len() < need {
            self.buf.reserve(need.max(self.target().saturating_mul(4)).max(64 << 10));
        }
        let buf = &mut self.buf;
        buf.put_slice(&self.event_line);
        if self.with_id {
            buf.put_slice(b"id: ");
            buf.put_slice(d);
            buf.put_u8(b'\n');
        }
        buf.put_slice(DATA_HEAD);
        buf.put_slice(d);
        buf.put_slice(PAYLOAD_HEAD);
        buf.put_slice(&self.pad[..pad]);
        buf.put_slice(DATA_TAIL);
        self.seq += 1;
    }

    /// The highest sequence number due now (rate-limited streams).
    fn due(&self) -> u64 {
        if self.rate == 0.0 {
            return u64::MAX;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        (elapsed * self.rate).floor() as u64 + 1
    }

    /// The next body write, `Ready(None)` at the end.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if self.finished() {
                if !self.buf.is_empty() {
                    return Poll::Ready(Some(self.buf.split().freeze()));
                }
                if self.hold {
                    // Nothing more, ever; hyper drops the body when the client goes away.
                    return Poll::Pending;
                }
                return Poll::Ready(None);
            }
            let due = self.due();
            let target = self.target();
            let max = self.count.unwrap_or(u64::MAX);
            while self.buf.len() < target && self.seq <= due && self.seq <= max {
                self.put_event();
            }
            if !self.buf.is_empty()
                && (self.buf.len() >= target || self.seq > due || self.finished())
            {
                return Poll::Ready(Some(self.buf.split().freeze()));
            }
            if self.finished() {
                continue;
            }
            // Not due yet: wait until event `seq` is.
            let at = self.started + Duration::from_secs_f64((self.seq - 1) as f64 / self.rate);
            match &mut self.sleep {
                Some(s) => s.as_mut().reset(at),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            if let Some(s) = &mut self.sleep
                && s.as_mut().poll(cx).is_pending()
            {
                return Poll::Pending;
            }
        }
    }
}

/// Formats `n` in decimal into `out`, returning the digits.
fn fmt_u64(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &out[i..]
}

fn put_u64(buf: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    buf.put_slice(fmt_u64(n, &mut digits));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        let mut d = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut d), b"0");
        assert_eq!(fmt_u64(1234567, &mut d), b"1234567");
        assert_eq!(fmt_u64(u64::MAX, &mut d), b"18446744073709551615");
    }

    #[test]
    fn event_has_the_asked_size() {
        let q = Query::parse(Some("size=64&id=1&type=tick"));
        let mut g = StreamGen::from_query(&q);
        g.seq = 123;
        g.put_event();
        let text = std::str::from_utf8(&g.buf).unwrap();
        assert!(text.starts_with("event: tick\nid: 123\ndata: {\"seq\":123,\"payload\":\"xx"));
        let data = text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        assert_eq!(data.len(), 64);
        assert!(text.ends_with("\"}\n\n"));
    }
}
