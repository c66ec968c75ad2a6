//! The connection task: the spec's processing model (HTML §9.2.3–9.2.5) — request, response
//! checks, announce, fail, reestablish with the reconnection time and backoff.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::handler::{Batch, Handler};
use super::request::RequestSpec;
use super::{DISPATCHING, Shared, lock};
use crate::parser::{Parser, Sink};
use crate::text;
use bytes::{Bytes, BytesMut};

use crate::transport::{Body, Jar, Request, Response, Transport};
use crate::{Error, ErrorEvent, ErrorKind, Event, MessageEvent, Options, ReadyState, Text};

// ---------------------------------------------------------------------------------------------
// The connection task: the spec's processing model.

pub(super) struct Connection {
    shared: Arc<Shared>,
    client: Arc<dyn Transport>,
    request: RequestSpec,
    /// The cookie jar of a `with_credentials` source.
    jar: Option<Arc<Jar>>,
    handler: Box<dyn Handler>,
    parser: Parser,
    /// The reconnection time (spec), changed by `retry:`.
    reconnection_time: Duration,
    max_retry: Duration,
    backoff: f64,
    read_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    /// Consecutive attempts that did not give a healthy connection, for backoff.
    failures: u32,
    /// When the current connection was announced, if it was.
    opened_at: Option<Instant>,
    /// A connection was announced at least once.
    ever_opened: bool,
    policy: Policy,
    max_error_body: usize,
    rng: u64,
}

/// A connection open at least this long resets the backoff (LaunchDarkly's "backoff reset
/// threshold"). Short, so that a server that ends every stream after a while on purpose is
/// reconnected to at the reconnection time; long enough to catch a server that closes at once.
const BACKOFF_RESET: Duration = Duration::from_secs(5);

/// The least delay of a reconnection after the first in a run of failures (× backoff each).
const BACKOFF_FLOOR: Duration = Duration::from_millis(100);

/// How long the body of a fatal response is waited for (it usually comes with the head).
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);

/// When the source reconnects (the `reconnect`, `max_reconnects` and `retry_initial` options).
struct Policy {
    reconnect: bool,
    /// The user left `reconnect` unset and the method is not GET: say why it stops.
    body_not_resent: bool,
    max_reconnects: Option<u32>,
    retry_initial: bool,
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
    pub(super) fn new(
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
        let is_get = request.method == "GET";
        let policy = Policy {
            reconnect: o.reconnect.unwrap_or(is_get),
            body_not_resent: o.reconnect.is_none() && !is_get,
            max_reconnects: o.max_reconnects,
            retry_initial: o.retry_initial,
        };
        Connection {
            jar: o.with_credentials.then(Default::default),
            shared,
            client,
            request,
            handler,
            parser,
            reconnection_time: o.retry,
            max_retry: o.max_retry,
            backoff: o.backoff,
            read_timeout: o.read_timeout,
            response_timeout: o.response_timeout,
            failures: 0,
            opened_at: None,
            ever_opened: false,
            policy,
            max_error_body: o.max_error_body,
            rng: seed | 1,
        }
    }

    /// The source's task. Not an `async fn`: that would hold `self` twice for the task's whole
    /// life (the argument and its binding), and every idle source keeps its task's full size.
    #[allow(clippy::manual_async_fn)] // see above
    pub(super) fn run(mut self) -> impl Future<Output = ()> + Send + 'static {
        async move { self.main().await }
    }

    async fn main(&mut self) {
        if let Some(e) = self.unsupported_scheme() {
            return self.fail(e).await;
        }
        loop {
            log::debug!(target: LOG, "{}: connecting", self.shared.url);
            let outcome = self.attempt().await;
            // Boxed: failing and waiting to reconnect are not what an idle source waits in.
            if !Box::pin(self.goes_on(outcome)).await {
                return;
            }
        }
    }

    /// After an attempt: fail, stop, or announce CONNECTING and wait to reconnect (true).
    async fn goes_on(&mut self, outcome: Outcome) -> bool {
        let e = match outcome {
            Outcome::Fail(e) => {
                self.fail(e).await;
                return false;
            }
            Outcome::Closed => return false,
            Outcome::Reestablish(e) => e,
        };
        // Only a connection that stayed open a while ends a run of failures: one that dies at
        // once counts as failed, so backoff holds against a server that answers 200 and closes.
        if self.opened_at.take().is_some_and(|t| t.elapsed() >= BACKOFF_RESET) {
            self.failures = 0;
        }
        if let Some(why) = self.gives_up() {
            let msg = format!("{}; {why}", e.message());
            self.fail(e.with_message(msg)).await;
            return false;
        }
        let delay = self.next_delay();
        let msg = format!("{}; reconnecting in {} ms", e.message(), delay.as_millis());
        log::warn!(target: LOG, "{}: {msg}", self.shared.url);
        self.shared.set_state(ReadyState::Connecting);
        let error = e.with_message(msg);
        self.deliver(Event::Error(ErrorEvent { ready_state: ReadyState::Connecting, error })).await;
        tokio::time::sleep(delay).await;
        true
    }

    fn unsupported_scheme(&self) -> Option<Error> {
        let scheme = self.shared.url.scheme();
        (scheme != "http" && scheme != "https").then(|| {
            let msg = format!(
                "unsupported URL scheme {scheme:?}: EventSource connects only over http and https"
            );
            Error::new(ErrorKind::UnsupportedScheme, msg)
        })
    }

    /// Why the source does not reconnect after this end or failure, if it does not.
    fn gives_up(&self) -> Option<String> {
        let p = &self.policy;
        if !p.reconnect {
            return Some(if p.body_not_resent {
                format!(
                    "a {} stream is not sent again (set reconnect to resend it)",
                    self.request.method
                )
            } else {
                "reconnect is off".to_owned()
            });
        }
        if !self.ever_opened && !p.retry_initial {
            return Some("the first connection failed and retry_initial is off".to_owned());
        }
        match p.max_reconnects {
            Some(max) if self.failures >= max => Some(format!(
                "giving up after {max} reconnection attempt{} in a row (max_reconnects)",
                if max == 1 { "" } else { "s" }
            )),
            _ => None,
        }
    }

    /// Fail the connection: CLOSED, one error event, no more requests.
    async fn fail(&mut self, error: Error) {
        log::error!(target: LOG, "{}: failed: {}", self.shared.url, error.message());
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

    // An idle source's task keeps the size of its largest await point, so each step below is
    // a future of its own, and what one step needs is not kept in the state of another: an open
    // stream waits with its body, the read and the connection's fields, nothing else.

    /// One connection attempt: request, checks, announce, stream.
    async fn attempt(&mut self) -> Outcome {
        let body = match self.connect().await {
            Ok(body) => body,
            Err(end) => return end,
        };
        self.stream(body).await
    }

    /// Sends the request, checks the response and announces the connection: the body to
    /// stream, or how the attempt ended.
    async fn connect(&mut self) -> Result<Body, Outcome> {
        let opened = self.client.open(&self.request()).await;
        let Response { status, reason, headers, origin, mut body } =
            opened.map_err(request_error)?;
        if let Err(e) = check_response(status, &reason, &headers) {
            let kept = Box::pin(read_error_body(&mut body, self.max_error_body, status)).await;
            return Err(Outcome::Fail(e.with_answer(headers, kept)));
        }
        log::info!(target: LOG, "{}: open", self.shared.url);
        self.shared.set_response_headers(&headers);
        drop((headers, reason));
        self.parser.begin_stream(Text::from(origin));
        // Announce the connection.
        self.opened_at = Some(Instant::now());
        self.ever_opened = true;
        self.shared.set_state(ReadyState::Open);
        self.deliver(Event::Open).await;
        Ok(body)
    }

    fn request(&self) -> Request<'_> {
        let id = self.parser.last_event_id().as_bytes();
        // The parser never produces CR, LF or NUL in an id, and the option is checked; other
        // control characters cannot go in a header, so such an id is not sent.
        let id = (!id.is_empty() && !id.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f))
            .then_some(id);
        Request {
            url: &self.shared.url,
            method: &self.request.method,
            headers: &self.request.headers,
            body: self.request.body.as_ref(),
            last_event_id: id,
            read_timeout: self.read_timeout,
            response_timeout: self.response_timeout,
            jar: self.jar.as_ref(),
        }
    }

    /// Parses and delivers the body's events until the stream ends or fails. (Not an `async
    /// fn`, which would keep the body twice.)
    #[allow(clippy::manual_async_fn)] // see above
    fn stream(&mut self, mut body: Body) -> impl Future<Output = Outcome> + Send + '_ {
        async move {
            loop {
                if let Some(end) = self.deliver_buffered(&mut body).await {
                    return end;
                }
                // Before waiting: don't let a quiet stream pin the last read buffer.
                self.parser.detach();
                {
                    let read = match self.read_timeout {
                        Some(t) => tokio::time::timeout(t, body.fill()).await,
                        None => Ok(body.fill().await),
                    };
                    match read {
                        Ok(Ok(true)) => {}
                        Ok(Ok(false)) => return Outcome::Reestablish(body.end_error()),
                        Ok(Err(e)) => return Outcome::Reestablish(e),
                        Err(_) => return Outcome::Reestablish(self.read_timed_out()),
                    }
                }
                // Share the worker with other sources: a fast stream is always readable.
                tokio::task::consume_budget().await;
            }
        }
    }

    fn read_timed_out(&self) -> Error {
        let t = self.read_timeout.unwrap_or_default();
        Error::new(ErrorKind::Timeout, format!("no data for {t:?} (read timeout)"))
    }

    /// Parses what the body has buffered (the bytes that came with the head, then each read)
    /// and delivers its events; how the stream ended, if it did.
    async fn deliver_buffered(&mut self, body: &mut Body) -> Option<Outcome> {
        let mut batch = spare::take();
        let (read, end) = self.parse_buffered(body, &mut batch);
        self.deliver_batch(&mut batch, read).await;
        spare::give(batch);
        // close() also aborts this task, but a stream that is always readable may not
        // yield for a while: stop here, and drop the socket, as soon as it is closed.
        if self.shared.cancelled.load(Ordering::Acquire) {
            return Some(Outcome::Closed);
        }
        end
    }

    /// Parses what the body has buffered into `batch`: the bytes read, and how the stream
    /// ended, if it did. (Not in `deliver_buffered`: what the parse borrows would be kept in
    /// its future.)
    fn parse_buffered(
        &mut self,
        body: &mut Body,
        batch: &mut Vec<Event>,
    ) -> (usize, Option<Outcome>) {
        let mut retry = None;
        let mut parse_error = None;
        let mut read = 0;
        let parser = &mut self.parser;
        let framing = body.drain(&mut |bytes| {
            if parse_error.is_some() {
                return;
            }
            read += bytes.len();
            let res = parser.feed_to(bytes, &mut Batcher { events: batch, retry: &mut retry });
            if let Err(e) = res {
                parse_error = Some(e);
            }
        });
        if let Some(ms) = retry {
            self.reconnection_time = Duration::from_millis(ms);
        }
        let end = match (parse_error, framing) {
            (Some(e), _) => Some(Outcome::Fail(e)),
            (None, Ok(false)) => None,
            (None, Ok(true)) => Some(Outcome::Reestablish(Error::new(
                ErrorKind::StreamEnded,
                "the server ended the stream",
            ))),
            (None, Err(e)) => Some(Outcome::Reestablish(e)),
        };
        (read, end)
    }

    /// Delivers one event. (Not an `async fn`, which would keep the event twice.)
    fn deliver(&mut self, event: Event) -> impl Future<Output = ()> + Send + '_ {
        let mut batch = spare::take();
        batch.push(event);
        async move {
            self.deliver_batch(&mut batch, 0).await;
            spare::give(batch);
        }
    }

    /// Hands a batch (parsed from `bytes` body bytes) to the handler, after waiting for it to
    /// have room, then empties it.
    async fn deliver_batch(&mut self, batch: &mut Vec<Event>, bytes: usize) {
        if batch.is_empty() {
            return;
        }
        std::future::poll_fn(|cx| self.handler.poll_ready(cx)).await;
        let shared = &*self.shared;
        {
            let _guard = lock(&shared.dispatch);
            if !shared.cancelled.load(Ordering::Acquire) {
                let prev = DISPATCHING.with(|d| d.replace(shared as *const Shared));
                let mut b = Batch::whole(&mut *batch, shared, bytes);
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

/// The vector a read's events are parsed into belongs to the worker thread, not to the
/// source: an idle source holds none, and a busy thread reuses one.
mod spare {
    use super::{Cell, Event};

    /// A larger vector (a burst of tiny events) is not kept.
    const KEEP: usize = 4096;

    thread_local! {
        static SPARE: Cell<Vec<Event>> = const { Cell::new(Vec::new()) };
    }

    pub(super) fn take() -> Vec<Event> {
        SPARE.try_with(Cell::take).unwrap_or_default()
    }

    /// Gives an emptied vector back (a task that waited for its handler may have taken it on
    /// another thread: it stays with this one).
    pub(super) fn give(v: Vec<Event>) {
        debug_assert!(v.is_empty());
        if v.capacity() == 0 || v.capacity() > KEEP {
            return;
        }
        let _ = SPARE.try_with(|s| {
            let kept = s.take();
            // Of two, the larger stays.
            s.set(if kept.capacity() > v.capacity() { kept } else { v });
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_thread_reuses_its_vector_and_keeps_no_burst() {
            let _ = take();
            let mut v = take();
            assert_eq!(v.capacity(), 0, "nothing was given back yet");
            v.push(Event::Open);
            let cap = v.capacity();
            let at = v.as_ptr();
            v.clear();
            give(v);
            // The next read on this thread parses into the same allocation.
            let again = take();
            assert_eq!((again.as_ptr(), again.capacity()), (at, cap));
            assert_eq!(take().capacity(), 0, "one vector, handed out once");
            // A smaller one does not replace it.
            give(again);
            give(Vec::with_capacity(1));
            let kept = take();
            assert_eq!(kept.as_ptr(), at);
            // A burst's vector is let go.
            give(Vec::with_capacity(KEEP + 1));
            assert_eq!(take().capacity(), 0);
        }
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

/// The target of the core's log records (`log` crate).
const LOG: &str = "eventsource_native";

/// Status and Content-Type checks of HTML §9.2.4.
fn check_response(status: u16, reason: &str, headers: &[(String, String)]) -> Result<(), Error> {
    if status != 200 {
        let msg = match status {
            204 => "the server answered 204 No Content: it asks the client to stop reconnecting"
                .to_owned(),
            s => format!("the server answered HTTP {s} {reason} (EventSource needs 200)"),
        };
        return Err(Error::new(ErrorKind::HttpStatus, msg).with_status(status));
    }
    let essence = mime_essence(headers);
    if essence.as_deref() != Some("text/event-stream") {
        let values: Vec<&str> =
            headers.iter().filter(|(n, _)| n == "content-type").map(|(_, v)| v.as_str()).collect();
        let got = match values.as_slice() {
            [] => "no Content-Type".to_owned(),
            [one] => format!("{one:?}"),
            many => format!("{:?}", many.join(", ")),
        };
        let msg = format!(
            "the response is not an event stream: Content-Type is {got}, expected text/event-stream"
        );
        return Err(Error::new(ErrorKind::ContentType, msg).with_status(200));
    }
    Ok(())
}

/// The MIME type essence of the response, as Fetch extracts it from every `Content-Type` value:
/// the last value that parses as `type/subtype` wins.
fn mime_essence(headers: &[(String, String)]) -> Option<String> {
    let mut essence = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-type") {
        for part in v.split(',') {
            let e = part.split(';').next().unwrap_or("").trim_matches([' ', '\t']);
            if let Some((t, sub)) = e.split_once('/')
                && !t.is_empty()
                && !sub.is_empty()
                && !e.contains([' ', '\t'])
            {
                essence = Some(e.to_ascii_lowercase());
            }
        }
    }
    essence
}

/// The first `limit` bytes of a fatal response's body, waiting at most `ERROR_BODY_WAIT`.
async fn read_error_body(body: &mut Body, limit: usize, status: u16) -> Bytes {
    let mut kept = BytesMut::new();
    if limit == 0 || status == 204 {
        return kept.freeze();
    }
    let deadline = tokio::time::Instant::now() + ERROR_BODY_WAIT;
    loop {
        let done = body.drain(&mut |b| {
            let room = limit - kept.len();
            kept.extend_from_slice(&b[..b.len().min(room)]);
        });
        if !matches!(done, Ok(false)) || kept.len() >= limit {
            break;
        }
        match tokio::time::timeout_at(deadline, body.fill()).await {
            Ok(Ok(true)) => {}
            _ => break,
        }
    }
    kept.freeze()
}

/// Classifies an error from opening the stream (before any response was accepted): fatal ones
/// (too many redirects, a redirect to another scheme, bad TLS settings) fail the connection.
fn request_error(e: Error) -> Outcome {
    if e.is_fatal() { Outcome::Fail(e) } else { Outcome::Reestablish(e) }
}
