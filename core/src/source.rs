//! The EventSource: request, response checks, announce/fail/reestablish, and delivery.
//!
//! One tokio task per source runs the spec's processing model (HTML §9.2.3–9.2.5) and hands the
//! events of each network read, in order, to a [`Handler`]. Pull mode is just a handler that
//! queues; push mode calls the user's handler on the runtime thread. Either way, `close()` is
//! synchronous: it flips `readyState` to CLOSED, aborts the task (which drops the socket), and —
//! unless called from inside the source's own handler — waits for an in-flight handler call to
//! return, so that after `close()` no callback of the source runs.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use once_cell::sync::Lazy;
use tokio::task::JoinHandle;
use url::Url;

use crate::parser::{Item, Parser};
use crate::transport::{Client, CookieJar, RequestParts, Response};
use crate::{Error, ErrorEvent, ErrorKind, Event, Options, ReadyState, Text};

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
    events: std::vec::Drain<'a, Event>,
    shared: &'a Shared,
}

impl Iterator for Batch<'_> {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        if self.shared.cancelled.load(Ordering::Acquire) {
            return None;
        }
        self.events.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.events.size_hint().1)
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
        if DISPATCHING.with(|d| d.get()) != me {
            drop(lock(&self.dispatch));
        }
        if let Some(q) = &self.queue {
            q.finish(true);
        }
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
        let client = client_for(&options)?;
        let shared = Arc::new(Shared {
            url,
            with_credentials: options.with_credentials,
            state: AtomicU8::new(ReadyState::Connecting as u8),
            cancelled: AtomicBool::new(false),
            dispatch: Mutex::new(()),
            task: Mutex::new(None),
            queue,
        });
        let conn = Connection::new(shared.clone(), client, request, &options, handler);
        // Hold the task slot while spawning so a racing close() sees the handle.
        let mut slot = lock(&shared.task);
        *slot = Some(crate::runtime::handle().spawn(conn.run()));
        drop(slot);
        Ok(EventSource { shared })
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
    pub fn close(&self) {
        self.shared.close();
    }

    fn queue(&self) -> Option<&Queue> {
        self.shared.queue.as_deref()
    }

    /// Waits for the next event (pull mode). `None` once the source is closed or failed and
    /// its queue is drained; always `None` for a push-mode source.
    pub async fn recv(&self) -> Option<Event> {
        let q = self.queue()?;
        std::future::poll_fn(|cx| q.poll_recv(cx)).await
    }

    /// Waits for at least one event and moves up to `max` queued events into `buf`.
    /// Returns how many were added; 0 means closed and drained.
    pub async fn recv_many(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        let Some(q) = self.queue() else { return 0 };
        std::future::poll_fn(|cx| q.poll_recv_many(cx, buf, max)).await
    }

    /// Blocks the calling thread for the next event, for at most `timeout` (`None`: no limit).
    /// Do not call it from inside an async task.
    pub fn recv_timeout(&self, timeout: Option<Duration>) -> Recv {
        match self.queue() {
            Some(q) => q.recv_timeout(timeout),
            None => Recv::Closed,
        }
    }

    /// Moves up to `max` already-queued events into `buf` without waiting; returns how many.
    pub fn try_recv_many(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        self.queue().map_or(0, |q| q.drain_into(buf, max))
    }

    /// True once the source is closed or failed and every queued event was received.
    pub fn is_finished(&self) -> bool {
        self.queue().is_none_or(|q| q.is_finished())
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
        match self.queue() {
            Some(q) => q.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pull mode: a bounded queue of events.

/// Above this many queued events the connection stops reading until the consumer catches up.
const QUEUE_HIGH_WATER: usize = 8192;

#[derive(Default)]
struct Queue {
    inner: Mutex<QueueInner>,
    ready: Condvar,
    notify: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

#[derive(Default)]
struct QueueInner {
    events: VecDeque<Event>,
    finished: bool,
    consumer: Option<Waker>,
    producer: Option<Waker>,
}

impl Queue {
    /// Appends events (producer side) and wakes whoever waits.
    fn push(&self, events: &mut Batch<'_>) {
        let mut inner = lock(&self.inner);
        let was_empty = inner.events.is_empty();
        inner.events.extend(events);
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
        drop(inner);
        self.ready.notify_all();
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

    fn take_locked(&self, inner: &mut QueueInner, buf: &mut Vec<Event>, max: usize) -> usize {
        let n = max.min(inner.events.len());
        buf.extend(inner.events.drain(..n));
        if n > 0 && inner.events.len() < QUEUE_HIGH_WATER / 2 {
            wake_producer(inner);
        }
        n
    }

    fn drain_into(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        let mut inner = lock(&self.inner);
        self.take_locked(&mut inner, buf, max)
    }

    fn poll_recv_many(
        &self,
        cx: &mut Context<'_>,
        buf: &mut Vec<Event>,
        max: usize,
    ) -> Poll<usize> {
        let mut inner = lock(&self.inner);
        let n = self.take_locked(&mut inner, buf, max.max(1));
        if n > 0 || inner.finished {
            return Poll::Ready(n);
        }
        inner.consumer = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut inner = lock(&self.inner);
        if let Some(ev) = inner.events.pop_front() {
            if inner.events.len() < QUEUE_HIGH_WATER / 2 {
                wake_producer(&mut inner);
            }
            return Poll::Ready(Some(ev));
        }
        if inner.finished {
            return Poll::Ready(None);
        }
        inner.consumer = Some(cx.waker().clone());
        Poll::Pending
    }

    fn recv_timeout(&self, timeout: Option<Duration>) -> Recv {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inner = lock(&self.inner);
        loop {
            let mut one = Vec::with_capacity(1);
            if self.take_locked(&mut inner, &mut one, 1) == 1 {
                return Recv::Event(one.pop().expect("one event"));
            }
            if inner.finished {
                return Recv::Closed;
            }
            inner = match deadline {
                None => self.ready.wait(inner).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Recv::Timeout;
                    }
                    self.ready.wait_timeout(inner, d - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }

    fn is_finished(&self) -> bool {
        let inner = lock(&self.inner);
        inner.finished && inner.events.is_empty()
    }
}

fn wake_producer(inner: &mut QueueInner) {
    if let Some(p) = inner.producer.take() {
        p.wake();
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
// Transport clients, shared between sources with the same transport settings.

#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    connect_timeout: Option<Duration>,
    max_redirects: usize,
    proxy: Option<String>,
    ca_certs: Option<std::path::PathBuf>,
    accept_invalid_certs: bool,
}

static CLIENTS: Lazy<Mutex<HashMap<ClientKey, Arc<Client>>>> = Lazy::new(Default::default);

fn client_for(o: &Options) -> Result<Arc<Client>, Error> {
    let key = ClientKey {
        connect_timeout: o.connect_timeout,
        max_redirects: o.max_redirects,
        proxy: o.proxy.clone(),
        ca_certs: o.ca_certs.clone(),
        accept_invalid_certs: o.accept_invalid_certs,
    };
    let mut clients = lock(&CLIENTS);
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let client = Arc::new(Client::new(o)?);
    if clients.len() < 64 {
        clients.insert(key, client.clone());
    }
    Ok(client)
}

// ---------------------------------------------------------------------------------------------
// The connection task: the spec's processing model.

struct Connection {
    shared: Arc<Shared>,
    client: Arc<Client>,
    request: RequestSpec,
    /// The cookie jar of a `with_credentials` source.
    jar: Option<CookieJar>,
    handler: Box<dyn Handler>,
    parser: Parser,
    /// The reconnection time (spec), changed by `retry:`.
    reconnection_time: Duration,
    max_retry: Duration,
    backoff: f64,
    read_timeout: Option<Duration>,
    /// Consecutive attempts without a successful open, for backoff.
    failures: u32,
    rng: u64,
    batch: Vec<Event>,
}

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
        client: Arc<Client>,
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
            jar: o.with_credentials.then(CookieJar::default),
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
        if n == 0 || self.backoff <= 1.0 {
            return base; // the spec: the first delay is the reconnection time
        }
        let cap = self.max_retry.max(base);
        let grown = base.as_secs_f64() * self.backoff.powi(n.min(64) as i32);
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
        let req = RequestParts {
            method: &self.request.method,
            headers: &self.request.headers,
            body: self.request.body.as_ref(),
            last_event_id: id,
        };
        // Boxed: connecting (DNS, TLS handshake) needs far more state than streaming.
        let opened = Box::pin(self.client.open(
            &self.shared.url,
            &req,
            self.jar.as_mut(),
            self.read_timeout,
        ))
        .await;
        let response = match opened {
            Ok(r) => r,
            Err(e) => return request_error(e),
        };
        if let Err(e) = check_response(&response) {
            return Outcome::Fail(e);
        }
        let Response { origin, mut body, .. } = response;
        // Announce the connection.
        self.failures = 0;
        self.shared.set_state(ReadyState::Open);
        self.deliver(Event::Open).await;
        self.parser.begin_stream(Text::from(origin));
        loop {
            // Parse what is buffered (the bytes that came with the head, then each read).
            let mut batch = std::mem::take(&mut self.batch);
            let mut retry = None;
            let mut parse_error = None;
            let parser = &mut self.parser;
            let framing = body.decode(&mut |bytes| {
                if parse_error.is_some() {
                    return;
                }
                let res = parser.feed(bytes, &mut |item| match item {
                    Item::Message(m) => batch.push(Event::Message(m)),
                    Item::Retry(ms) => retry = Some(ms),
                });
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
                Some(t) => match tokio::time::timeout(t, body.read()).await {
                    Ok(r) => r,
                    Err(_) => {
                        let msg = format!("no data for {t:?} (read timeout)");
                        return Outcome::Reestablish(Error::new(ErrorKind::Timeout, msg));
                    }
                },
                None => body.read().await,
            };
            // Share the worker with other sources: a fast stream is always readable.
            tokio::task::consume_budget().await;
            match read {
                Ok(true) => {}
                Ok(false) => return Outcome::Reestablish(body.eof_error()),
                Err(e) => {
                    let msg = format!("the connection broke while reading the stream: {e}");
                    return Outcome::Reestablish(
                        Error::new(ErrorKind::Network, msg).with_source(e),
                    );
                }
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
                let mut b = Batch { events: batch.drain(..), shared };
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
