//! `/load/*`: many idle streams, broadcasts to all of them, and steady-rate streams, for the
//! scale and latency benchmarks.
//!
//! Every event is `data: {"seq":S,"t":T}` where `T` is `CLOCK_MONOTONIC` in nanoseconds, read
//! when the body hands the write to hyper (just before the socket write): a client on the same
//! machine reads the same clock in its callback, and the difference is the latency from the
//! server's write to the user's code.
//!
//! Bounded so that a forgotten run cannot eat the machine: at most `max_streams` load streams
//! (broadcast and rate) are open at once (more get a 503), and each ends after `max_secs`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::{Response, StatusCode};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::body::Out;
use crate::query::Query;
use crate::routes::{Ctx, State, plain, sse};

/// Default bound on open load streams (`--max-load-streams`).
pub const DEFAULT_MAX_STREAMS: usize = 20_000;
/// Default lifetime of a load stream, in seconds (`--max-load-secs`).
pub const DEFAULT_MAX_SECS: u64 = 600;
/// A stream that fell behind several broadcasts catches up in writes of at most this many
/// events (about 8 KiB).
const MAX_EVENTS_PER_WRITE: u64 = 256;

/// `CLOCK_MONOTONIC` in nanoseconds: the clock every face's benchmark reads on arrival.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we pass; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The load streams of one server.
#[derive(Debug)]
pub(crate) struct Hub {
    max_streams: usize,
    max_secs: u64,
    /// Broadcast events so far; the next broadcast event has number `seq + 1`.
    seq: AtomicU64,
    /// Load streams opened so far (broadcast and rate).
    opened: AtomicU64,
    /// Write-paced broadcasts: how many streams wrote since the last event, how many must.
    round_written: AtomicU64,
    round_want: AtomicU64,
    round_done: Notify,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// The open broadcast streams: who to wake on a broadcast.
    listeners: HashMap<u64, Listening>,
    /// Connection id → (HTTP/2, broadcast streams open on it).
    conns: HashMap<u64, (bool, usize)>,
    rate_streams: usize,
}

#[derive(Debug)]
struct Listening {
    conn: u64,
    waker: Option<Waker>,
}

impl Hub {
    pub(crate) fn new(max_streams: usize, max_secs: u64) -> Hub {
        Hub {
            max_streams,
            max_secs,
            seq: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            round_written: AtomicU64::new(0),
            round_want: AtomicU64::new(u64::MAX),
            round_done: Notify::new(),
            inner: Mutex::default(),
        }
    }

    /// Adds `n` broadcast events and wakes every stream. Returns the last event's number and
    /// how many streams are open.
    fn bump(&self, n: u64) -> (u64, usize) {
        let seq = self.seq.fetch_add(n, Ordering::AcqRel) + n;
        let (streams, wakers) = {
            let mut inner = self.lock();
            let wakers: Vec<Waker> =
                inner.listeners.values_mut().filter_map(|l| l.waker.take()).collect();
            (inner.listeners.len(), wakers)
        };
        for w in wakers {
            w.wake();
        }
        (seq, streams)
    }

    /// A stream wrote: the pacer waits for all of them.
    fn wrote(&self) {
        let written = self.round_written.fetch_add(1, Ordering::AcqRel) + 1;
        if written == self.round_want.load(Ordering::Acquire) {
            self.round_done.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a stream may live: `secs` if asked (at least 1), never above `max_secs`.
    fn lifetime(&self, q: &Query) -> Duration {
        let secs = q.num("secs").unwrap_or(self.max_secs).clamp(1, self.max_secs.max(1));
        Duration::from_secs(secs)
    }
}

impl Inner {
    fn open(&self) -> usize {
        self.listeners.len() + self.rate_streams
    }
}

fn unavailable(hub: &Hub) -> Response<Out> {
    let text = format!("too many load streams (at most {} open)\n", hub.max_streams);
    plain(StatusCode::SERVICE_UNAVAILABLE, &text)
}

/// `GET /load/stream[?secs=S]`: stays open and silent until a broadcast.
pub(crate) fn stream(state: &State, ctx: &Ctx<'_>, q: &Query) -> Response<Out> {
    let hub = &state.load;
    let lifetime = hub.lifetime(q);
    let mut inner = hub.lock();
    if inner.open() >= hub.max_streams {
        return unavailable(hub);
    }
    inner.next_id += 1;
    let id = inner.next_id;
    let conn = ctx.conn.id;
    inner.listeners.insert(id, Listening { conn, waker: None });
    let h2 = ctx.version == hyper::Version::HTTP_2;
    inner.conns.entry(conn).or_insert((h2, 0)).1 += 1;
    // Under the lock: a broadcast either counts this stream or comes after `seen`.
    let seen = hub.seq.load(Ordering::Acquire);
    drop(inner);
    hub.opened.fetch_add(1, Ordering::Relaxed);
    let body = LoadBody::Listen(Listen {
        hub: state.load.clone(),
        id,
        seen,
        deadline: Box::pin(tokio::time::sleep(lifetime)),
        buf: BytesMut::new(),
    });
    sse(Out::load(body))
}

/// `POST /load/broadcast[?n=K][&every_us=U | &paced=1]`: K events (default 1) to every open
/// broadcast stream. At once by default (a stream writes the events it has not written yet
/// together, up to 256 per write); with `every_us` one event every U µs, with `paced=1` one
/// event at a time, the next once every stream has written the last (one event per write, as
/// fast as the streams take them). Paced broadcasts run on a task of their own: the answer
/// comes at once, with the number the last event will have.
pub(crate) fn broadcast(state: &State, method: &hyper::Method, q: &Query) -> Response<Out> {
    if method != hyper::Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "POST /load/broadcast?n=K\n");
    }
    let n = q.num("n").unwrap_or(1).clamp(1, 1_000_000);
    let hub = state.load.clone();
    let every = q.num("every_us").filter(|&us| us > 0).map(Duration::from_micros);
    let (seq, streams) = if every.is_some() || q.flag("paced") {
        let seq = hub.seq.load(Ordering::Acquire) + n;
        let streams = hub.lock().listeners.len();
        tokio::spawn(pace(hub, n, every));
        (seq, streams)
    } else {
        hub.bump(n)
    };
    json(format!("{{\"seq\":{seq},\"streams\":{streams}}}\n"))
}

/// Broadcasts `n` events one at a time: `every` apart, or each once every stream wrote the
/// last (a stream that does not within a second is not waited for). Ends at the time bound.
async fn pace(hub: Arc<Hub>, n: u64, every: Option<Duration>) {
    let start = Instant::now();
    let end = start + Duration::from_secs(hub.max_secs);
    for i in 0..n {
        if Instant::now() >= end {
            return;
        }
        if let Some(every) = every {
            tokio::time::sleep_until(start + every * i as u32).await;
            hub.bump(1);
            continue;
        }
        hub.round_want.store(u64::MAX, Ordering::Release);
        hub.round_written.store(0, Ordering::Release);
        let want = hub.lock().listeners.len() as u64;
        hub.round_want.store(want, Ordering::Release);
        hub.bump(1);
        while hub.round_written.load(Ordering::Acquire) < want {
            let waited = tokio::time::timeout(Duration::from_secs(1), hub.round_done.notified());
            if waited.await.is_err() {
                break;
            }
        }
    }
}

/// `GET /load/rate?hz=200&count=N[&secs=S]`: N events (0 = until the time bound) at a steady
/// rate of `hz` per second, numbered from 1.
pub(crate) fn rate(state: &State, q: &Query) -> Response<Out> {
    let hub = &state.load;
    let hz = q.text("hz").map_or(200.0, |v| v.trim().parse::<f64>().unwrap_or(f64::NAN));
    if !(hz.is_finite() && hz > 0.0 && hz <= 1_000_000.0) {
        return plain(StatusCode::BAD_REQUEST, "GET /load/rate needs 0 < hz <= 1000000\n");
    }
    let lifetime = hub.lifetime(q);
    {
        let mut inner = hub.lock();
        if inner.open() >= hub.max_streams {
            return unavailable(hub);
        }
        inner.rate_streams += 1;
    }
    hub.opened.fetch_add(1, Ordering::Relaxed);
    let body = LoadBody::Rate(Rate {
        hub: state.load.clone(),
        hz,
        count: q.num("count").unwrap_or(2000),
        next: 1,
        started: Instant::now(),
        sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        deadline: Box::pin(tokio::time::sleep(lifetime)),
        buf: BytesMut::new(),
    });
    sse(Out::load(body))
}

/// `GET /load/stats`: the open load streams and the connections they use.
pub(crate) fn stats(state: &State) -> Response<Out> {
    let hub = &state.load;
    let (listeners, rate_streams, h1, h2) = {
        let inner = hub.lock();
        let h2 = inner.conns.values().filter(|(h2, _)| *h2).count();
        (inner.listeners.len(), inner.rate_streams, inner.conns.len() - h2, h2)
    };
    let out = format!(
        "{{\"open_streams\":{listeners},\"rate_streams\":{rate_streams},\"opened\":{},\
         \"broadcasts\":{},\"connections\":{{\"http1\":{h1},\"http2\":{h2}}},\
         \"open_connections\":{},\"max_streams\":{},\"max_secs\":{}}}\n",
        hub.opened.load(Ordering::Relaxed),
        hub.seq.load(Ordering::Acquire),
        state.conns.open.load(Ordering::Relaxed),
        hub.max_streams,
        hub.max_secs,
    );
    json(out)
}

fn json(body: String) -> Response<Out> {
    let mut resp = Response::new(Out::full(body));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The body of a load stream.
pub(crate) enum LoadBody {
    Listen(Listen),
    Rate(Rate),
}

impl LoadBody {
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self {
            LoadBody::Listen(l) => l.poll_next(cx),
            LoadBody::Rate(r) => r.poll_next(cx),
        }
    }
}

/// A broadcast stream: writes the broadcasts it has not written yet, stamped now.
pub(crate) struct Listen {
    hub: Arc<crate::load::Hub>,
    id: u64,
    /// The last broadcast event written.
    seen: u64,
    deadline: Pin<Box<Sleep>>,
    buf: BytesMut,
}

impl Listen {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        loop {
            let seq = self.hub.seq.load(Ordering::Acquire);
            if seq > self.seen {
                let last = seq.min(self.seen + MAX_EVENTS_PER_WRITE);
                let t = monotonic_ns();
                for s in self.seen + 1..=last {
                    put_event(&mut self.buf, s, t);
                }
                self.seen = last;
                self.hub.wrote();
                return Poll::Ready(Some(self.buf.split().freeze()));
            }
            {
                let mut inner = self.hub.lock();
                let Some(l) = inner.listeners.get_mut(&self.id) else { return Poll::Ready(None) };
                match &l.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => l.waker = Some(cx.waker().clone()),
                }
            }
            // A broadcast between the load above and the waker's registration: go again.
            if self.hub.seq.load(Ordering::Acquire) == self.seen {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        if let Some(l) = inner.listeners.remove(&self.id)
            && let Some(c) = inner.conns.get_mut(&l.conn)
        {
            c.1 -= 1;
            if c.1 == 0 {
                inner.conns.remove(&l.conn);
            }
        }
    }
}

/// A steady-rate stream: event `i` is due `(i - 1) / hz` seconds after the start; the events
/// due when it is polled go out in one write, stamped then.
pub(crate) struct Rate {
    hub: Arc<Hub>,
    hz: f64,
    /// Events to send; 0 = until the deadline.
    count: u64,
    next: u64,
    started: Instant,
    sleep: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    buf: BytesMut,
}

impl Rate {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        loop {
            if self.count != 0 && self.next > self.count {
                return Poll::Ready(None);
            }
            let due = (self.started.elapsed().as_secs_f64() * self.hz).floor() as u64 + 1;
            let last = if self.count == 0 { due } else { due.min(self.count) };
            if last >= self.next {
                let t = monotonic_ns();
                for s in self.next..=last.min(self.next + MAX_EVENTS_PER_WRITE - 1) {
                    put_event(&mut self.buf, s, t);
                    self.next = s + 1;
                }
                return Poll::Ready(Some(self.buf.split().freeze()));
            }
            let at = self.started + Duration::from_secs_f64((self.next - 1) as f64 / self.hz);
            self.sleep.as_mut().reset(at);
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Rate {
    fn drop(&mut self) {
        self.hub.lock().rate_streams -= 1;
    }
}

/// Appends `data: {"seq":S,"t":T}\n\n`.
fn put_event(buf: &mut BytesMut, seq: u64, t: u64) {
    buf.reserve(64);
    buf.put_slice(b"data: {\"seq\":");
    put_u64(buf, seq);
    buf.put_slice(b",\"t\":");
    put_u64(buf, t);
    buf.put_slice(b"}\n\n");
}

fn put_u64(buf: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_sequence_and_the_stamp() {
        let mut buf = BytesMut::new();
        put_event(&mut buf, 7, 1_234_567_890_123);
        put_event(&mut buf, 0, 0);
        assert_eq!(
            &buf[..],
            b"data: {\"seq\":7,\"t\":1234567890123}\n\ndata: {\"seq\":0,\"t\":0}\n\n"
        );
    }

    #[test]
    fn the_clock_is_monotonic_and_in_nanoseconds() {
        let a = monotonic_ns();
        std::thread::sleep(Duration::from_millis(2));
        let b = monotonic_ns();
        assert!(b - a >= 2_000_000, "{a} {b}");
    }
}
