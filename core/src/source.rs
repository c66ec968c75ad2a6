//! The EventSource: request, response checks, announce/fail/reestablish, and delivery.
//!
//! One tokio task per source runs the spec's processing model (HTML §9.2.3–9.2.5) and hands the
//! events of each network read, in order, to a [`Handler`]. Pull mode is just a handler that
//! queues; push mode calls the user's handler on the runtime thread. Either way, `close()` is
//! synchronous: it flips `readyState` to CLOSED, aborts the task (which drops the socket), and —
//! unless called from inside the source's own handler — waits for an in-flight handler call to
//! return, so that after `close()` no callback of the source runs.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;
use url::Url;

use crate::parser::{Parser, Sink};
use crate::text;
use crate::transport::{self, Request, Response, SourceJar, Transport};
use crate::{Error, ErrorEvent, ErrorKind, Event, MessageEvent, Options, ReadyState, Text};

// ---------------------------------------------------------------------------------------------
// Handler: how events leave the connection task.

/// Receives a source's events on the library's runtime thread.
///
/// Calls for one source never overlap and come in stream order. `on_events` gets everything
/// parsed from one network read; the [`Batch`] stops yielding as soon as the source is closed,
/// so `close()` from inside the handler drops the rest. Keep handlers quick: they run on one of
/// the runtime's two worker threads.
pub trait Handler: Send + 'static {
    /// Consume the events of one read. The batch is drained after the call either way.
    fn on_events(&mut self, events: &mut Batch<'_>);

    /// Backpressure: return `Pending` (and wake `cx` later) to stop reading the network until
    /// the handler can take more. Default: always ready.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// A closure taking one [`Event`] at a time is a handler.
impl<F: FnMut(Event) + Send + 'static> Handler for F {
    fn on_events(&mut self, events: &mut Batch<'_>) {
        for event in events {
            self(event);
        }
    }
}

/// The events of one network read, in order. Ends early once the source is closed.
pub struct Batch<'a> {
    events: BatchEvents<'a>,
    shared: &'a Shared,
}

enum BatchEvents<'a> {
    /// Not iterated yet: the queue of a pull-mode source can take the whole vector.
    Whole(&'a mut Vec<Event>),
    Draining(std::vec::Drain<'a, Event>),
    Taken,
}

impl<'a> Batch<'a> {
    /// The whole vector of events, if nothing was iterated yet (the caller must leave it empty).
    /// The connection checked `cancelled` just before handing the batch over, under the
    /// dispatch lock that `close()` waits for.
    fn take_all(&mut self) -> Option<&'a mut Vec<Event>> {
        match std::mem::replace(&mut self.events, BatchEvents::Taken) {
            BatchEvents::Whole(v) => Some(v),
            other => {
                self.events = other;
                None
            }
        }
    }
}

impl Iterator for Batch<'_> {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        if self.shared.cancelled.load(Ordering::Acquire) {
            return None;
        }
        if let Some(v) = self.take_all() {
            self.events = BatchEvents::Draining(v.drain(..));
        }
        match &mut self.events {
            BatchEvents::Draining(d) => d.next(),
            _ => None,
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.events {
            BatchEvents::Whole(v) => (0, Some(v.len())),
            BatchEvents::Draining(d) => (0, d.size_hint().1),
            BatchEvents::Taken => (0, Some(0)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state between the handle(s) and the connection task.

#[doc(hidden)]
pub struct Shared {
    url: Url,
    with_credentials: bool,
    state: AtomicU8,
    /// Set by `close()` only (a failed connection is CLOSED but not cancelled: its error
    /// event must still be delivered).
    cancelled: AtomicBool,
    /// Held while the handler runs; `close()` from another thread takes it to wait for the
    /// in-flight call to finish.
    dispatch: Mutex<()>,
    /// The handler of this source is inside `close()` of another source, waiting for that
    /// source's in-flight callback (see `Shared::close`).
    closing_other: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
    queue: Option<Arc<Queue>>,
}

thread_local! {
    /// The source whose handler this thread is running, so `close()` from inside it does not
    /// wait for itself.
    static DISPATCHING: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

impl Shared {
    fn set_state(&self, state: ReadyState) {
        self.state.store(state as u8, Ordering::Release);
    }

    fn close(&self) {
        self.set_state(ReadyState::Closed);
        if self.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        let me = self as *const Shared;
        let caller = DISPATCHING.with(|d| d.get());
        if caller.is_null() {
            drop(lock(&self.dispatch));
        } else if caller != me {
            // SAFETY: `DISPATCHING` points at the source whose handler runs on this thread,
            // alive while it runs.
            self.wait_from_callback(unsafe { &*caller });
        }
        if let Some(q) = &self.queue {
            q.finish(true);
        }
    }

    /// `close()` called from inside `caller`'s handler waits for this source's in-flight
    /// callback, unless that callback is itself waiting in a `close()`: handlers that close
    /// each other at the same moment would otherwise wait for each other for ever. Then only
    /// the callback stuck in that cycle may finish after `close()` returns; no new one starts.
    fn wait_from_callback(&self, caller: &Shared) {
        caller.closing_other.store(true, Ordering::SeqCst);
        let mut spins = 0u32;
        loop {
            match self.dispatch.try_lock() {
                Ok(_) | Err(std::sync::TryLockError::Poisoned(_)) => break,
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
            if self.closing_other.load(Ordering::SeqCst) {
                break;
            }
            // A callback usually finishes within microseconds; then back off.
            spins += 1;
            if spins < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        caller.closing_other.store(false, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a user handler must not poison the source for good.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The public handle.

/// An EventSource: connects at once, reconnects per the spec, and delivers events in order.
///
/// Dropping the last handle closes the source.
pub struct EventSource {
    shared: Arc<Shared>,
    /// Pull mode: the consumer's side of the queue. A receive takes everything queued at once
    /// into this buffer and serves the next events from it without touching the shared queue;
    /// the `Stream` impl reaches it through `&mut self`, without even locking this mutex.
    local: Mutex<VecDeque<Event>>,
}

/// What a blocking receive got.
#[derive(Debug)]
pub enum Recv {
    Event(Event),
    /// The timeout elapsed with no event.
    Timeout,
    /// The source is closed and every queued event was received.
    Closed,
}

impl EventSource {
    /// A pull-mode source with default options; see [`EventSource::with_options`].
    pub fn new(url: &str) -> Result<EventSource, Error> {
        EventSource::with_options(url, Options::default())
    }

    /// A pull-mode source: events queue up until received through `Stream`, [`recv`](Self::recv),
    /// [`recv_timeout`](Self::recv_timeout) or [`try_recv_many`](Self::try_recv_many).
    /// The queue is bounded: when it is full the source stops reading the network.
    ///
    /// Errors (synchronously) only for an unparseable URL (`InvalidUrl`) or a bad option
    /// (`InvalidOption`); everything else arrives as an error event.
    pub fn with_options(url: &str, options: Options) -> Result<EventSource, Error> {
        let queue = Arc::new(Queue::default());
        EventSource::start(url, options, Some(queue.clone()), Box::new(QueueHandler(queue)))
    }

    /// A push-mode source: `handler` is called on the library's runtime thread.
    pub fn with_handler(
        url: &str,
        options: Options,
        handler: impl Handler,
    ) -> Result<EventSource, Error> {
        EventSource::start(url, options, None, Box::new(handler))
    }

    fn start(
        url: &str,
        options: Options,
        queue: Option<Arc<Queue>>,
        handler: Box<dyn Handler>,
    ) -> Result<EventSource, Error> {
        let url = Url::parse(url).map_err(|e| {
            Error::new(ErrorKind::InvalidUrl, format!("invalid URL {url:?}: {e}")).with_source(e)
        })?;
        let request = RequestSpec::new(&options)?;
        let client = transport::for_options(&options)?;
        let shared = Arc::new(Shared {
            url,
            with_credentials: options.with_credentials,
            state: AtomicU8::new(ReadyState::Connecting as u8),
            cancelled: AtomicBool::new(false),
            dispatch: Mutex::new(()),
            closing_other: AtomicBool::new(false),
            task: Mutex::new(None),
            queue,
        });
        let conn = Connection::new(shared.clone(), client, request, &options, handler);
        // Hold the task slot while spawning so a racing close() sees the handle.
        let mut slot = lock(&shared.task);
        *slot = Some(crate::runtime::handle().spawn(conn.run()));
        drop(slot);
        Ok(EventSource { shared, local: Mutex::default() })
    }

    /// The serialized URL given to the constructor (never changes, even after redirects).
    pub fn url(&self) -> &str {
        self.shared.url.as_str()
    }

    /// The connection's live state. Each [`Event`] also carries the state its listener sees.
    pub fn ready_state(&self) -> ReadyState {
        ReadyState::from_u8(self.shared.state.load(Ordering::Acquire))
    }

    pub fn with_credentials(&self) -> bool {
        self.shared.with_credentials
    }

    /// Closes the source: readyState becomes CLOSED at once, the connection and any pending
    /// reconnection are dropped, and no event is delivered afterwards (queued ones are
    /// discarded). Safe from any thread, from inside a handler, and more than once.
    ///
    /// From another thread it waits for a handler call in flight to finish, so none runs
    /// after it returns. From inside the handler of another source it waits too, except for a
    /// handler that is itself waiting in `close()` (handlers closing each other at the same
    /// moment): that one finishes after the call returns, and no new call starts.
    pub fn close(&self) {
        self.shared.close();
        // The queue is finished and emptied: nothing can refill the consumer's buffer.
        lock(&self.local).clear();
        text::release_held();
    }

    fn queue(&self) -> Option<&Queue> {
        self.shared.queue.as_deref()
    }

    /// Waits for the next event (pull mode). `None` once the source is closed or failed and
    /// its queue is drained; always `None` for a push-mode source.
    pub async fn recv(&self) -> Option<Event> {
        let q = self.queue()?;
        std::future::poll_fn(|cx| q.poll_recv(&mut lock(&self.local), cx)).await
    }

    /// Waits for at least one event and moves up to `max` queued events into `buf`.
    /// Returns how many were added; 0 means closed and drained.
    pub async fn recv_many(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        let Some(q) = self.queue() else { return 0 };
        std::future::poll_fn(|cx| q.poll_recv_many(&mut lock(&self.local), cx, buf, max)).await
    }

    /// Blocks the calling thread for the next event, for at most `timeout` (`None`: no limit).
    /// Do not call it from inside an async task.
    pub fn recv_timeout(&self, timeout: Option<Duration>) -> Recv {
        match self.queue() {
            Some(q) => q.recv_timeout(&self.local, timeout),
            None => Recv::Closed,
        }
    }

    /// Moves up to `max` already-queued events into `buf` without waiting; returns how many.
    pub fn try_recv_many(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        let n = self.queue().map_or(0, |q| q.fill(&mut lock(&self.local), buf, max));
        if n == 0 {
            // Nothing to handle: let go of what the events handled so far held back.
            text::release_held();
        }
        n
    }

    /// True once the source is closed or failed and every queued event was received.
    pub fn is_finished(&self) -> bool {
        self.queue().is_none_or(|q| {
            let local = lock(&self.local);
            local.is_empty() && q.is_finished()
        })
    }

    /// Pull mode: `notify` is called (from any thread, without locks held) whenever the queue
    /// goes from empty to non-empty and when the source finishes — to wake an event loop,
    /// e.g. by writing to an eventfd. It must not block. Replaces any previous notifier.
    pub fn set_notify(&self, notify: Option<Box<dyn Fn() + Send + Sync>>) {
        if let Some(q) = self.queue() {
            *lock(&q.notify) = notify.map(Arc::from);
        }
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("url", &self.url())
            .field("ready_state", &self.ready_state())
            .field("with_credentials", &self.with_credentials())
            .finish()
    }
}

impl futures_core::Stream for EventSource {
    type Item = Event;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        // `&mut self`: no other receive can run, so the consumer's buffer needs no lock.
        let local = this.local.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(ev) = local.pop_front() {
            return Poll::Ready(Some(ev));
        }
        match this.shared.queue.as_deref() {
            Some(q) => q.poll_recv(local, cx),
            None => Poll::Ready(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pull mode: a bounded queue of events.
//
// The connection task appends the events of one network read under one lock (handing over its
// whole vector when the queue is empty) and wakes the consumer only when the queue goes from
// empty to non-empty. The consumer takes the whole queue at once (swapping vectors) into the
// handle's own buffer and serves events from there, so the per-event cost of the hand-off is a
// pop from a local deque. The vectors' allocations circulate: connection → queue → consumer →
// queue → connection.

/// Above this many queued events the connection stops reading until the consumer takes them.
/// The consumer's buffer holds at most one such queue-full more.
const QUEUE_HIGH_WATER: usize = 4096;

/// Vectors of up to this many events are reused whatever the traffic (larger ones only while
/// batches of at least an eighth of their size keep coming).
const SPARE_KEEP: usize = 256;

#[derive(Default)]
struct Queue {
    inner: Mutex<QueueInner>,
    ready: Condvar,
    notify: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

#[derive(Default)]
struct QueueInner {
    events: Vec<Event>,
    finished: bool,
    consumer: Option<Waker>,
    producer: Option<Waker>,
    /// Threads blocked in `recv_timeout` (the condvar is signalled only when there are some).
    sleepers: usize,
    /// The largest recent batch taken, decaying by 1/16 per refill: a vector given back that
    /// is far larger than that is let go.
    peak: usize,
}

impl Queue {
    /// Appends the events of one read (producer side) and wakes whoever waits.
    fn push(&self, batch: &mut Batch<'_>) {
        let mut inner = lock(&self.inner);
        let was_empty = inner.events.is_empty();
        match batch.take_all() {
            // Hand over the whole vector; the connection gets the queue's empty one back.
            Some(v) if was_empty => std::mem::swap(v, &mut inner.events),
            Some(v) => inner.events.append(v),
            None => inner.events.extend(batch),
        }
        if was_empty && !inner.events.is_empty() {
            self.wake(inner);
        }
    }

    /// Marks the end of the stream; `discard` drops what is queued (close()).
    fn finish(&self, discard: bool) {
        let mut inner = lock(&self.inner);
        if discard {
            inner.events.clear();
        }
        inner.finished = true;
        if let Some(p) = inner.producer.take() {
            p.wake();
        }
        self.wake(inner);
    }

    fn wake(&self, mut inner: MutexGuard<'_, QueueInner>) {
        let waker = inner.consumer.take();
        let sleepers = inner.sleepers > 0;
        drop(inner);
        if sleepers {
            self.ready.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        let notify = lock(&self.notify).clone();
        if let Some(n) = notify {
            n();
        }
    }

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.inner);
        if inner.events.len() < QUEUE_HIGH_WATER || inner.finished {
            Poll::Ready(())
        } else {
            inner.producer = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Moves the whole queue into the consumer's (empty) buffer, swapping vectors.
    fn refill(inner: &mut QueueInner, local: &mut VecDeque<Event>) {
        debug_assert!(local.is_empty());
        if inner.events.is_empty() {
            return;
        }
        // Both conversions are O(1): `local` is empty, and a Vec becomes a deque in place.
        let mut spare = Vec::from(std::mem::take(local));
        // A burst's allocation is let go once events keep coming in small batches; one small
        // batch among large ones is just a short read (dropping the vector then would make the
        // connection grow a new one, copying and faulting in pages, over and over).
        inner.peak = inner.events.len().max(inner.peak - inner.peak / 16);
        if spare.capacity() > SPARE_KEEP && spare.capacity() > 8 * inner.peak {
            spare = Vec::new();
        }
        *local = VecDeque::from(std::mem::replace(&mut inner.events, spare));
        if let Some(p) = inner.producer.take() {
            p.wake();
        }
    }

    /// Moves up to `max` events into `buf`: first the consumer's buffer, then the queue.
    fn fill(&self, local: &mut VecDeque<Event>, buf: &mut Vec<Event>, max: usize) -> usize {
        let mut n = 0;
        loop {
            let k = (max - n).min(local.len());
            if k == 0 {
                // Nothing buffered: keep the caller's vector (trading it for the empty buffer
                // would hand the caller a smaller one, and the next batch would be copied).
            } else if k == local.len() {
                // All of it: in bulk (an event is too big for moves one by one to be cheap),
                // and the deque keeps an allocation.
                let mut all = Vec::from(std::mem::take(local));
                if buf.is_empty() && buf.capacity() >= all.len() {
                    // The caller's vector is big enough: trade vectors instead of copying.
                    std::mem::swap(buf, &mut all);
                } else {
                    buf.append(&mut all);
                }
                *local = VecDeque::from(all);
            } else {
                buf.extend(local.drain(..k));
            }
            n += k;
            if n == max {
                return n;
            }
            let mut inner = lock(&self.inner);
            Queue::refill(&mut inner, local);
            if local.is_empty() {
                return n;
            }
        }
    }

    fn poll_recv_many(
        &self,
        local: &mut VecDeque<Event>,
        cx: &mut Context<'_>,
        buf: &mut Vec<Event>,
        max: usize,
    ) -> Poll<usize> {
        let n = self.fill(local, buf, max.max(1));
        if n > 0 {
            return Poll::Ready(n);
        }
        let mut inner = lock(&self.inner);
        Queue::refill(&mut inner, local);
        if !local.is_empty() {
            drop(inner);
            return Poll::Ready(self.fill(local, buf, max.max(1)));
        }
        if inner.finished {
            return Poll::Ready(0);
        }
        set_waker(&mut inner.consumer, cx);
        text::release_held();
        Poll::Pending
    }

    /// The next event: from the consumer's buffer, else the whole queue is taken into it.
    fn poll_recv(&self, local: &mut VecDeque<Event>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if let Some(ev) = local.pop_front() {
            return Poll::Ready(Some(ev));
        }
        let mut inner = lock(&self.inner);
        Queue::refill(&mut inner, local);
        if let Some(ev) = local.pop_front() {
            return Poll::Ready(Some(ev));
        }
        if inner.finished {
            return Poll::Ready(None);
        }
        set_waker(&mut inner.consumer, cx);
        text::release_held();
        Poll::Pending
    }

    /// Blocking receive. The consumer's buffer is not locked while waiting, so `close()`,
    /// `try_recv_many` and `is_finished` from other threads never wait for a sleeping receive.
    fn recv_timeout(&self, local: &Mutex<VecDeque<Event>>, timeout: Option<Duration>) -> Recv {
        // Read the clock only when there is nothing to take (not once per event).
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            let mut l = lock(local);
            if let Some(ev) = l.pop_front() {
                return Recv::Event(ev);
            }
            let mut inner = lock(&self.inner);
            Queue::refill(&mut inner, &mut l);
            if let Some(ev) = l.pop_front() {
                return Recv::Event(ev);
            }
            if inner.finished {
                return Recv::Closed;
            }
            drop(l);
            // The queue lock is held from the check to the wait: a push cannot slip between.
            text::release_held();
            inner.sleepers += 1;
            inner = match timeout {
                None => self.ready.wait(inner).unwrap_or_else(|e| e.into_inner()),
                Some(t) => {
                    let now = Instant::now();
                    // `None` inside: a timeout too long to add to the clock waits forever.
                    match *deadline.get_or_insert_with(|| now.checked_add(t)) {
                        None => self.ready.wait(inner).unwrap_or_else(|e| e.into_inner()),
                        Some(d) if now >= d => {
                            inner.sleepers -= 1;
                            return Recv::Timeout;
                        }
                        Some(d) => {
                            let r = self.ready.wait_timeout(inner, d - now);
                            r.unwrap_or_else(|e| e.into_inner()).0
                        }
                    }
                }
            };
            inner.sleepers -= 1;
        }
    }

    fn is_finished(&self) -> bool {
        let inner = lock(&self.inner);
        inner.finished && inner.events.is_empty()
    }
}

/// Stores the consumer's waker, cloning it only when it changed.
fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

struct QueueHandler(Arc<Queue>);

impl Handler for QueueHandler {
    fn on_events(&mut self, events: &mut Batch<'_>) {
        self.0.push(events);
    }
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_ready(cx)
    }
}

impl Drop for QueueHandler {
    // The task is over (failed, or aborted by close()): receivers must not wait forever.
    fn drop(&mut self) {
        self.0.finish(false);
    }
}

// ---------------------------------------------------------------------------------------------
// The request, validated once.

struct RequestSpec {
    method: String,
    /// The user's headers, validated (ours are added by the transport).
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
}

/// RFC 9110 `token` (header names, methods).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl RequestSpec {
    fn new(o: &Options) -> Result<RequestSpec, Error> {
        let invalid = |msg: String| Error::new(ErrorKind::InvalidOption, msg);
        if !is_token(&o.method) {
            return Err(invalid(format!("invalid HTTP method {:?}", o.method)));
        }
        let mut headers = Vec::with_capacity(o.headers.len());
        for (name, value) in &o.headers {
            if !is_token(name) {
                return Err(invalid(format!("invalid header name {name:?}")));
            }
            if name.eq_ignore_ascii_case("last-event-id") {
                return Err(invalid(
                    "set Last-Event-ID with the last_event_id option, not as a header".into(),
                ));
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b >= 0x7f) {
                return Err(invalid(format!(
                    "invalid value for header {name:?}: control characters or non-ASCII are not allowed"
                )));
            }
            // The spec's Accept is fixed: a user Accept is dropped by the transport.
            headers.push((name.clone(), value.clone()));
        }
        if o.last_event_id.as_ref().is_some_and(|id| id.contains(['\r', '\n', '\0'])) {
            return Err(invalid("last_event_id must not contain CR, LF or NUL".into()));
        }
        if o.max_event_size == 0 {
            return Err(invalid("max_event_size must be at least 1 byte".into()));
        }
        if !(o.backoff >= 1.0 && o.backoff.is_finite()) {
            return Err(invalid(format!(
                "backoff must be a finite number >= 1.0, got {}",
                o.backoff
            )));
        }
        Ok(RequestSpec { method: o.method.clone(), headers, body: o.body.clone().map(Bytes::from) })
    }
}

// ---------------------------------------------------------------------------------------------
// The connection task: the spec's processing model.

struct Connection {
    shared: Arc<Shared>,
    client: Arc<dyn Transport>,
    request: RequestSpec,
    /// The cookie jar of a `with_credentials` source, where the transport keeps one per source.
    jar: Option<SourceJar>,
    handler: Box<dyn Handler>,
    parser: Parser,
    /// The reconnection time (spec), changed by `retry:`.
    reconnection_time: Duration,
    max_retry: Duration,
    backoff: f64,
    read_timeout: Option<Duration>,
    /// Consecutive attempts that did not give a healthy connection, for backoff.
    failures: u32,
    /// When the current connection was announced, if it was.
    opened_at: Option<Instant>,
    rng: u64,
    batch: Vec<Event>,
}

/// A connection open at least this long resets the backoff (LaunchDarkly's "backoff reset
/// threshold"). Short, so that a server that ends every stream after a while on purpose is
/// reconnected to at the reconnection time; long enough to catch a server that closes at once.
const BACKOFF_RESET: Duration = Duration::from_secs(5);

/// The least delay of a reconnection after the first in a run of failures (× backoff each).
const BACKOFF_FLOOR: Duration = Duration::from_millis(100);

/// How a connection attempt ended.
enum Outcome {
    /// Network error or end of stream: announce CONNECTING, wait, try again.
    Reestablish(Error),
    /// Fatal: announce CLOSED, stop.
    Fail(Error),
    /// `close()` was called: stop without a word.
    Closed,
}

impl Connection {
    fn new(
        shared: Arc<Shared>,
        client: Arc<dyn Transport>,
        request: RequestSpec,
        o: &Options,
        handler: Box<dyn Handler>,
    ) -> Connection {
        let mut parser = Parser::new(o.max_event_size);
        if let Some(id) = &o.last_event_id {
            parser.set_last_event_id(Text::from(id.as_str()));
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = now.as_nanos() as u64 ^ (Arc::as_ptr(&shared) as u64);
        Connection {
            jar: if o.with_credentials { client.new_jar() } else { None },
            shared,
            client,
            request,
            handler,
            parser,
            reconnection_time: o.retry,
            max_retry: o.max_retry,
            backoff: o.backoff,
            read_timeout: o.read_timeout,
            failures: 0,
            opened_at: None,
            rng: seed | 1,
            batch: Vec::new(),
        }
    }

    async fn run(mut self) {
        let scheme = self.shared.url.scheme();
        if scheme != "http" && scheme != "https" {
            let msg = format!(
                "unsupported URL scheme {scheme:?}: EventSource connects only over http and https"
            );
            return self.fail(Error::new(ErrorKind::UnsupportedScheme, msg)).await;
        }
        loop {
            match self.connect_and_stream().await {
                Outcome::Fail(e) => return self.fail(e).await,
                Outcome::Closed => return,
                Outcome::Reestablish(e) => {
                    // Only a connection that stayed open a while ends a run of failures: one
                    // that dies at once counts as failed, so backoff holds against a server
                    // that answers 200 and closes.
                    if self.opened_at.take().is_some_and(|t| t.elapsed() >= BACKOFF_RESET) {
                        self.failures = 0;
                    }
                    let delay = self.next_delay();
                    let e = Error::new(
                        e.kind(),
                        format!("{}; reconnecting in {} ms", e.message(), delay.as_millis()),
                    );
                    self.shared.set_state(ReadyState::Connecting);
                    let ev = ErrorEvent { ready_state: ReadyState::Connecting, error: e };
                    self.deliver(Event::Error(ev)).await;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Fail the connection: CLOSED, one error event, no more requests.
    async fn fail(&mut self, error: Error) {
        self.shared.set_state(ReadyState::Closed);
        self.deliver(Event::Error(ErrorEvent { ready_state: ReadyState::Closed, error })).await;
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.reconnection_time;
        let n = self.failures;
        self.failures = self.failures.saturating_add(1);
        if n == 0 {
            return base; // the spec: the first delay is the reconnection time
        }
        // Repeated failures wait at least the floor (growing with the backoff), so that a
        // reconnection time of 0 cannot turn a server that fails at once into a request storm.
        if self.backoff <= 1.0 {
            return base.max(BACKOFF_FLOOR);
        }
        let floor = BACKOFF_FLOOR.as_secs_f64() * self.backoff.powi((n - 1).min(64) as i32);
        let cap = self.max_retry.max(base).max(BACKOFF_FLOOR);
        let grown = (base.as_secs_f64() * self.backoff.powi(n.min(64) as i32)).max(floor);
        // xorshift: jitter of up to +25% spreads reconnect storms.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = (self.rng % 1024) as f64 / 4096.0;
        let secs = (grown * (1.0 + jitter)).min(cap.as_secs_f64());
        Duration::from_secs_f64(secs)
    }

    async fn connect_and_stream(&mut self) -> Outcome {
        let id = self.parser.last_event_id().as_bytes();
        // The parser never produces CR, LF or NUL in an id, and the option is checked; other
        // control characters cannot go in a header, so such an id is not sent.
        let id = (!id.is_empty() && !id.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f))
            .then_some(id);
        let req = Request {
            url: &self.shared.url,
            method: &self.request.method,
            headers: &self.request.headers,
            body: self.request.body.as_ref(),
            last_event_id: id,
            read_timeout: self.read_timeout,
        };
        let opened = self.client.open(&req, self.jar.as_mut()).await;
        let response = match opened {
            Ok(r) => r,
            Err(e) => return request_error(e),
        };
        if let Err(e) = check_response(&response) {
            return Outcome::Fail(e);
        }
        let Response { origin, mut body, .. } = response;
        // Announce the connection.
        self.opened_at = Some(Instant::now());
        self.shared.set_state(ReadyState::Open);
        self.deliver(Event::Open).await;
        self.parser.begin_stream(Text::from(origin));
        loop {
            // Parse what is buffered (the bytes that came with the head, then each read).
            let mut batch = std::mem::take(&mut self.batch);
            let mut retry = None;
            let mut parse_error = None;
            let parser = &mut self.parser;
            let framing = body.drain(&mut |bytes| {
                if parse_error.is_some() {
                    return;
                }
                let res =
                    parser.feed_to(bytes, &mut Batcher { events: &mut batch, retry: &mut retry });
                if let Err(e) = res {
                    parse_error = Some(e);
                }
            });
            if let Some(ms) = retry {
                self.reconnection_time = Duration::from_millis(ms);
            }
            self.deliver_batch(&mut batch).await;
            self.batch = batch;
            // close() also aborts this task, but a stream that is always readable may not
            // yield for a while: stop here, and drop the socket, as soon as it is closed.
            if self.shared.cancelled.load(Ordering::Acquire) {
                return Outcome::Closed;
            }
            if let Some(e) = parse_error {
                return Outcome::Fail(e);
            }
            match framing {
                Ok(false) => {}
                Ok(true) => {
                    return Outcome::Reestablish(Error::new(
                        ErrorKind::StreamEnded,
                        "the server ended the stream",
                    ));
                }
                Err(e) => return Outcome::Reestablish(e),
            }
            // Before waiting: don't let a quiet stream pin the last read buffer.
            self.parser.detach();
            let read = match self.read_timeout {
                Some(t) => match tokio::time::timeout(t, body.fill()).await {
                    Ok(r) => r,
                    Err(_) => {
                        let msg = format!("no data for {t:?} (read timeout)");
                        return Outcome::Reestablish(Error::new(ErrorKind::Timeout, msg));
                    }
                },
                None => body.fill().await,
            };
            // Share the worker with other sources: a fast stream is always readable.
            tokio::task::consume_budget().await;
            match read {
                Ok(true) => {}
                Ok(false) => return Outcome::Reestablish(body.end_error()),
                Err(e) => return Outcome::Reestablish(e),
            }
        }
    }

    async fn deliver(&mut self, event: Event) {
        let mut batch = std::mem::take(&mut self.batch);
        batch.push(event);
        self.deliver_batch(&mut batch).await;
        self.batch = batch;
    }

    /// Hands a batch to the handler (after waiting for it to have room), then empties it.
    async fn deliver_batch(&mut self, batch: &mut Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        std::future::poll_fn(|cx| self.handler.poll_ready(cx)).await;
        let shared = &*self.shared;
        {
            let _guard = lock(&shared.dispatch);
            if !shared.cancelled.load(Ordering::Acquire) {
                let prev = DISPATCHING.with(|d| d.replace(shared as *const Shared));
                let mut b = Batch { events: BatchEvents::Whole(&mut *batch), shared };
                // A panicking handler must not take the runtime thread with it.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.handler.on_events(&mut b);
                }));
                drop(b);
                DISPATCHING.with(|d| d.set(prev));
                if r.is_err() {
                    eprintln!("eventsource: an event handler panicked; the event was dropped");
                }
            }
        }
        batch.clear();
        // The events of this read are handled: their chunk's counts go back at once.
        text::release_held();
    }
}

/// The parser's sink on a connection: the events of one read, and its last `retry:`.
struct Batcher<'a> {
    events: &'a mut Vec<Event>,
    retry: &'a mut Option<u64>,
}

impl Sink for Batcher<'_> {
    #[inline(always)]
    fn message(&mut self, event_type: Text, data: Text, last_event_id: Text, origin: &Text) {
        // Room first, so that the event is built where it is kept (no copies on the stack).
        self.events.reserve(1);
        self.events.spare_capacity_mut()[0].write(Event::Message(MessageEvent {
            event_type,
            data,
            last_event_id,
            origin: origin.clone(),
        }));
        // SAFETY: the element after the length was just written.
        unsafe { self.events.set_len(self.events.len() + 1) };
    }

    #[inline(always)]
    fn retry(&mut self, ms: u64) {
        *self.retry = Some(ms);
    }
}

/// Status and Content-Type checks of HTML §9.2.4.
fn check_response(response: &Response) -> Result<(), Error> {
    let status = response.status;
    if status != 200 {
        let msg = match status {
            204 => "the server answered 204 No Content: it asks the client to stop reconnecting"
                .to_owned(),
            s => {
                format!("the server answered HTTP {s} {} (EventSource needs 200)", response.reason)
            }
        };
        return Err(Error::new(ErrorKind::HttpStatus, msg).with_status(status));
    }
    let ctype = response.content_type.as_deref();
    let essence = ctype.and_then(|v| std::str::from_utf8(v).ok()).map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim_matches(|c| c == ' ' || c == '\t')
            .to_ascii_lowercase()
    });
    if essence.as_deref() != Some("text/event-stream") {
        let got = match ctype {
            Some(v) => format!("{:?}", String::from_utf8_lossy(v)),
            None => "no Content-Type".to_owned(),
        };
        let msg = format!(
            "the response is not an event stream: Content-Type is {got}, expected text/event-stream"
        );
        return Err(Error::new(ErrorKind::ContentType, msg).with_status(200));
    }
    Ok(())
}

/// Classifies an error from opening the stream (before any response was accepted): fatal ones
/// (too many redirects, a redirect to another scheme, bad TLS settings) fail the connection.
fn request_error(e: Error) -> Outcome {
    if e.is_fatal() { Outcome::Fail(e) } else { Outcome::Reestablish(e) }
}

#[cfg(test)]
mod tests {
    //! The pull-mode queue on its own (its hand-offs, order, backpressure, wake-ups), and
    //! close() against the consumer's buffer over a real connection.

    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use crate::MessageEvent;

    fn msg(i: usize) -> Event {
        Event::Message(MessageEvent {
            event_type: Text::from_static("message"),
            data: Text::from(i.to_string()),
            last_event_id: Text::default(),
            origin: Text::default(),
        })
    }

    fn data(e: &Event) -> usize {
        match e {
            Event::Message(m) => m.data.parse().unwrap(),
            other => panic!("not a message: {other:?}"),
        }
    }

    fn shared() -> Shared {
        Shared {
            url: Url::parse("http://127.0.0.1/").unwrap(),
            with_credentials: false,
            state: AtomicU8::new(0),
            cancelled: AtomicBool::new(false),
            dispatch: Mutex::new(()),
            closing_other: AtomicBool::new(false),
            task: Mutex::new(None),
            queue: None,
        }
    }

    /// What the connection does with one read's events: `v` is left empty, holding the vector
    /// the connection parses its next read into.
    fn push_vec(q: &Queue, s: &Shared, v: &mut Vec<Event>) {
        let mut b = Batch { events: BatchEvents::Whole(v), shared: s };
        q.push(&mut b);
        drop(b);
        assert!(v.is_empty(), "the queue took every event");
    }

    fn push(q: &Queue, s: &Shared, range: std::ops::Range<usize>) {
        push_vec(q, s, &mut range.map(msg).collect());
    }

    /// Receives everything queued, one event at a time.
    fn recv_all(q: &Queue, local: &Mutex<VecDeque<Event>>) -> Vec<usize> {
        let mut got = Vec::new();
        while let Recv::Event(e) = q.recv_timeout(local, Some(Duration::ZERO)) {
            got.push(data(&e));
        }
        got
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn woken(w: &Arc<CountingWaker>) -> usize {
        w.0.load(Ordering::SeqCst)
    }

    #[test]
    fn order_is_kept_across_every_way_of_receiving() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let w = Arc::new(CountingWaker::default());
        let waker = Waker::from(w.clone());
        let mut cx = Context::from_waker(&waker);
        push(&q, &s, 0..10);
        let Recv::Event(e) = q.recv_timeout(&local, Some(Duration::ZERO)) else { panic!() };
        assert_eq!(data(&e), 0);
        let mut buf = Vec::new();
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 3), 3);
        // Pushed while the consumer's buffer still holds 4..10: served after them.
        push(&q, &s, 10..20);
        let Poll::Ready(Some(e)) = q.poll_recv(&mut lock(&local), &mut cx) else { panic!() };
        assert_eq!(data(&e), 4);
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 100), 15);
        assert_eq!(
            buf.iter().map(data).collect::<Vec<_>>(),
            [1, 2, 3].into_iter().chain(5..20).collect::<Vec<_>>()
        );
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 100), 0);
        assert!(q.poll_recv(&mut lock(&local), &mut cx).is_pending());
        assert!(matches!(q.recv_timeout(&local, Some(Duration::from_millis(5))), Recv::Timeout));
        // One wake-up per batch, not per event.
        push(&q, &s, 20..30);
        assert_eq!(woken(&w), 1);
        let mut many = Vec::new();
        let Poll::Ready(n) = q.poll_recv_many(&mut lock(&local), &mut cx, &mut many, 4) else {
            panic!()
        };
        assert_eq!((n, many.iter().map(data).collect::<Vec<_>>()), (4, vec![20, 21, 22, 23]));
        push(&q, &s, 30..40);
        assert_eq!(woken(&w), 1, "nobody waits: no wake-up");
        q.finish(false);
        let mut rest = Vec::new();
        while let Poll::Ready(Some(e)) = q.poll_recv(&mut lock(&local), &mut cx) {
            rest.push(data(&e));
        }
        assert_eq!(rest, (24..40).collect::<Vec<_>>());
        assert!(q.is_finished() && lock(&local).is_empty());
        assert!(matches!(q.recv_timeout(&local, None), Recv::Closed));
    }

    #[test]
    fn a_roomy_empty_buffer_is_traded_not_copied_into() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        for round in 0..3 {
            let base = round * 10;
            let mut v: Vec<Event> = (base..base + 10).map(msg).collect();
            let parsed_into = v.as_ptr();
            push_vec(&q, &s, &mut v);
            let mut buf = Vec::with_capacity(64);
            assert_eq!(q.fill(&mut lock(&local), &mut buf, 64), 10);
            assert_eq!(buf.as_ptr(), parsed_into, "the events were not copied");
            assert_eq!(
                buf.iter().map(data).collect::<Vec<_>>(),
                (base..base + 10).collect::<Vec<_>>()
            );
            assert!(lock(&local).is_empty());
        }
    }

    #[test]
    fn producer_stops_at_high_water_until_the_consumer_takes_the_queue() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let w = Arc::new(CountingWaker::default());
        let waker = Waker::from(w.clone());
        let mut cx = Context::from_waker(&waker);
        push(&q, &s, 0..QUEUE_HIGH_WATER - 1);
        assert!(q.poll_ready(&mut cx).is_ready());
        push(&q, &s, QUEUE_HIGH_WATER - 1..QUEUE_HIGH_WATER);
        assert!(q.poll_ready(&mut cx).is_pending());
        let mut buf = Vec::new();
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 1), 1);
        assert_eq!(woken(&w), 1, "taking the queue wakes the producer");
        assert!(q.poll_ready(&mut cx).is_ready());
        // The consumer's buffer holds the rest; the queue fills again up to the mark.
        assert_eq!(lock(&local).len(), QUEUE_HIGH_WATER - 1);
    }

    #[test]
    fn a_blocked_receive_wakes_on_push_and_on_finish() {
        let (q, s, local) =
            (Arc::new(Queue::default()), Arc::new(shared()), Arc::new(Mutex::default()));
        let (q2, s2) = (q.clone(), s.clone());
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            push(&q2, &s2, 0..3);
            std::thread::sleep(Duration::from_millis(50));
            q2.finish(false);
        });
        let Recv::Event(e) = q.recv_timeout(&local, None) else { panic!() };
        assert_eq!(data(&e), 0);
        // Another consumer is not held up by the buffer while one sleeps.
        assert_eq!(q.fill(&mut lock(&local), &mut Vec::new(), 10), 2);
        assert!(matches!(q.recv_timeout(&local, Some(Duration::from_secs(10))), Recv::Closed));
        pusher.join().unwrap();
    }

    #[test]
    fn a_read_reaches_the_consumer_in_the_vector_it_was_parsed_into() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let mut a: Vec<Event> = (0..100).map(msg).collect();
        let pa = a.as_ptr();
        push_vec(&q, &s, &mut a);
        let Recv::Event(e) = q.recv_timeout(&local, Some(Duration::ZERO)) else { panic!() };
        assert_eq!(data(&e), 0);
        assert_eq!(lock(&local).as_slices().0.as_ptr(), pa.wrapping_add(1));
        // Queued while the consumer still serves the first read: appended after it.
        push(&q, &s, 100..103);
        let mut b: Vec<Event> = (103..200).map(msg).collect();
        push_vec(&q, &s, &mut b);
        assert_eq!(recv_all(&q, &local), (1..200).collect::<Vec<_>>());
        let mut c: Vec<Event> = (200..300).map(msg).collect();
        let pc = c.as_ptr();
        push_vec(&q, &s, &mut c);
        let Recv::Event(e) = q.recv_timeout(&local, Some(Duration::ZERO)) else { panic!() };
        assert_eq!(data(&e), 200);
        assert_eq!(lock(&local).as_slices().0.as_ptr(), pc.wrapping_add(1));
    }

    #[test]
    fn the_connection_parses_into_the_vectors_the_consumer_emptied() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let mut v: Vec<Event> = (0..100).map(msg).collect();
        let first = v.as_ptr();
        push_vec(&q, &s, &mut v);
        assert_eq!(recv_all(&q, &local), (0..100).collect::<Vec<_>>());
        v.extend((100..200).map(msg));
        push_vec(&q, &s, &mut v);
        // Taking the second batch gave the first vector back: the connection's next one.
        assert_eq!(recv_all(&q, &local), (100..200).collect::<Vec<_>>());
        v.extend((200..300).map(msg));
        push_vec(&q, &s, &mut v);
        assert_eq!((v.as_ptr(), v.capacity() >= 100), (first, true));
        assert_eq!(recv_all(&q, &local), (200..300).collect::<Vec<_>>());
    }

    #[test]
    fn a_burst_vector_survives_a_short_read_but_not_a_slow_stream() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let mut v: Vec<Event> = (0..4000).map(msg).collect();
        let burst = v.as_ptr();
        push_vec(&q, &s, &mut v);
        assert_eq!(recv_all(&q, &local).len(), 4000);
        let mut next = 4000;
        let mut round = |v: &mut Vec<Event>, n: usize| {
            v.extend((next..next + n).map(msg));
            push_vec(&q, &s, v);
            assert_eq!(recv_all(&q, &local), (next..next + n).collect::<Vec<_>>());
            next += n;
        };
        // Where the vectors are: the connection's, the queue's and the consumer's.
        let caps = |q: &Queue, v: &Vec<Event>, local: &Mutex<VecDeque<Event>>| {
            let queued = &lock(&q.inner).events;
            [(v.as_ptr(), v.capacity()), (queued.as_ptr(), queued.capacity()), {
                let l = lock(local);
                (l.as_slices().0.as_ptr(), l.capacity())
            }]
        };
        round(&mut v, 40);
        round(&mut v, 40);
        assert!(
            caps(&q, &v, &local).iter().any(|&(p, _)| p == burst),
            "a short read after a burst let the burst's vector go"
        );
        for _ in 0..100 {
            round(&mut v, 40);
        }
        // A stream of short reads lets it go.
        let caps = caps(&q, &v, &local);
        assert!(caps.iter().all(|&(_, c)| c <= SPARE_KEEP), "{caps:?}");
    }

    #[test]
    fn a_receive_blocked_without_timeout_gets_a_lone_event_followed_by_silence() {
        // One small read per event, 100 ms apart, then the connection stays open and silent:
        // each event must reach a consumer that is already asleep, with no later read to
        // flush it out.
        let server = testserver::Server::start();
        let es = Arc::new(
            EventSource::new(&server.url("/stream?count=3&size=16&rate=10&hold=1")).unwrap(),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let consumer = {
            let es = es.clone();
            std::thread::spawn(move || {
                for _ in 0..4 {
                    let got = es.recv_timeout(None);
                    let done = !matches!(got, Recv::Event(_));
                    tx.send(got).unwrap();
                    if done {
                        break;
                    }
                }
            })
        };
        let next = || rx.recv_timeout(Duration::from_secs(10)).expect("an event was not delivered");
        assert!(matches!(next(), Recv::Event(Event::Open)));
        for i in 1..=3 {
            match next() {
                Recv::Event(Event::Message(_)) => {}
                other => panic!("message {i}: {other:?}"),
            }
        }
        consumer.join().unwrap();
        es.close();
    }

    #[test]
    fn close_discards_what_the_consumer_already_took() {
        let server = testserver::Server::start();
        let es = EventSource::new(&server.url("/stream?count=5000&size=16&hold=1")).unwrap();
        let mut got = 0;
        while got < 2 {
            match es.recv_timeout(Some(Duration::from_secs(10))) {
                Recv::Event(_) => got += 1,
                other => panic!("{other:?}"),
            }
        }
        // Make sure the consumer's buffer holds events when close() comes.
        for _ in 0..1000 {
            if !lock(&es.local).is_empty() {
                break;
            }
            assert!(matches!(es.recv_timeout(Some(Duration::from_secs(10))), Recv::Event(_)));
        }
        assert!(!lock(&es.local).is_empty());
        es.close();
        assert!(lock(&es.local).is_empty());
        assert!(es.is_finished());
        assert_eq!(es.try_recv_many(&mut Vec::new(), 100), 0);
        assert!(matches!(es.recv_timeout(Some(Duration::from_secs(1))), Recv::Closed));
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut es = es;
        let next =
            futures_core::Stream::poll_next(Pin::new(&mut es), &mut Context::from_waker(&waker));
        assert!(matches!(next, Poll::Ready(None)));
    }
}
