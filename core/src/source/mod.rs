//! The EventSource: the public handle and the state it shares with its connection task.
//!
//! - `connection.rs`: the task that runs the processing model (request, checks, announce,
//!   fail, reestablish, backoff);
//! - `request.rs`: the request, validated once;
//! - `handler.rs`: how events leave the task ([`Handler`], [`Batch`]);
//! - `queue.rs`: pull mode's bounded queue.
//!
//! One tokio task per source runs the spec's processing model (HTML §9.2.3–9.2.5) and hands the
//! events of each network read, in order, to a [`Handler`]. Pull mode is just a handler that
//! queues; push mode calls the user's handler on the runtime thread. Either way, `close()` is
//! synchronous: it flips `readyState` to CLOSED, aborts the task (which drops the socket), and —
//! unless called from inside the source's own handler — waits for an in-flight handler call to
//! return, so that after `close()` no callback of the source runs.

mod connection;
mod handler;
mod queue;
mod request;

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::JoinHandle;
use url::Url;

use connection::Connection;
pub use handler::{Batch, Handler};
use queue::{Queue, QueueHandler};
use request::RequestSpec;

use crate::{Error, ErrorEvent, ErrorKind, Event, Options, ReadyState};
use crate::{runtime, text, transport};

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
    /// The header fields of the response that opened the current connection, as
    /// `name:value\n` lines in one allocation (an idle source keeps them: a few hundred bytes,
    /// not an allocation per string).
    response_headers: Mutex<Box<str>>,
    /// The fork generation the source was made in (see `runtime.rs`).
    generation: u32,
    /// In a child of a fork: the error saying so was handed out.
    fork_reported: AtomicBool,
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

    /// True in a child of a `fork()` made after this source: its task and runtime are gone.
    fn forked(&self) -> bool {
        self.generation != runtime::generation()
    }

    fn set_response_headers(&self, headers: &[(String, String)]) {
        let mut lines =
            String::with_capacity(headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (n, v) in headers {
            // Names are tokens and values hold no LF (the transports refuse them).
            lines.push_str(n);
            lines.push(':');
            lines.push_str(v);
            lines.push('\n');
        }
        *lock(&self.response_headers) = lines.into_boxed_str();
    }

    fn close(&self) {
        self.set_state(ReadyState::Closed);
        if self.forked() {
            // The parent's runtime and threads do not exist here: touch neither them nor the
            // locks they may have held at the fork.
            self.cancelled.store(true, Ordering::Release);
            return;
        }
        let first = !self.cancelled.swap(true, Ordering::AcqRel);
        if first {
            log::debug!(target: "eventsource_native", "{}: closed", self.url);
            if let Some(task) = lock(&self.task).take() {
                task.abort();
            }
        }
        // Every close() waits, not just the first: two threads closing at once both return
        // only once no callback runs.
        let me = self as *const Shared;
        let caller = DISPATCHING.with(|d| d.get());
        if caller.is_null() {
            drop(lock(&self.dispatch));
        } else if caller != me {
            // SAFETY: `DISPATCHING` points at the source whose handler runs on this thread,
            // alive while it runs.
            self.wait_from_callback(unsafe { &*caller });
        }
        if first && let Some(q) = &self.queue {
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
    /// The next event.
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
            response_headers: Mutex::default(),
            generation: runtime::generation(),
            fork_reported: AtomicBool::new(false),
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
        if self.shared.forked() {
            return ReadyState::Closed;
        }
        ReadyState::from_u8(self.shared.state.load(Ordering::Acquire))
    }

    /// The `withCredentials` attribute: whether the source sends and keeps cookies.
    pub fn with_credentials(&self) -> bool {
        self.shared.with_credentials
    }

    /// The header fields of the response that opened the current (or last) connection:
    /// lowercase names, values as UTF-8 (lossy), in the order received. Set before the `open`
    /// event is delivered; empty before the first open.
    pub fn response_headers(&self) -> Vec<(String, String)> {
        lock(&self.shared.response_headers)
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
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
        if self.shared.forked() {
            return;
        }
        // The queue is finished and emptied: nothing can refill the consumer's buffer.
        lock(&self.local).clear();
        text::release_held();
    }

    fn queue(&self) -> Option<&Queue> {
        self.shared.queue.as_deref()
    }

    /// In a child of a fork, the receives get one error event (CLOSED, saying why), then
    /// nothing: `Some(that event or None)`. `None` in the process that made the source.
    fn after_fork(&self) -> Option<Option<Event>> {
        if !self.shared.forked() {
            return None;
        }
        if self.shared.fork_reported.swap(true, Ordering::AcqRel) {
            return Some(None);
        }
        let msg = "this source was made before fork(): its connection belongs to the parent \
                   process; make a new source in the child";
        let error = Error::new(ErrorKind::Forked, msg);
        Some(Some(Event::Error(ErrorEvent { ready_state: ReadyState::Closed, error })))
    }

    /// Waits for the next event (pull mode). `None` once the source is closed or failed and
    /// its queue is drained; always `None` for a push-mode source.
    pub async fn recv(&self) -> Option<Event> {
        if let Some(ev) = self.after_fork() {
            return ev;
        }
        let q = self.queue()?;
        std::future::poll_fn(|cx| q.poll_recv(&mut lock(&self.local), cx)).await
    }

    /// Waits for at least one event and moves up to `max` queued events into `buf`.
    /// Returns how many were added; 0 means closed and drained.
    pub async fn recv_many(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        if let Some(ev) = self.after_fork() {
            buf.extend(ev);
            return usize::from(!buf.is_empty());
        }
        let Some(q) = self.queue() else { return 0 };
        std::future::poll_fn(|cx| q.poll_recv_many(&mut lock(&self.local), cx, buf, max)).await
    }

    /// Blocks the calling thread for the next event, for at most `timeout` (`None`: no limit).
    /// Do not call it from inside an async task.
    pub fn recv_timeout(&self, timeout: Option<Duration>) -> Recv {
        if let Some(ev) = self.after_fork() {
            return ev.map_or(Recv::Closed, Recv::Event);
        }
        match self.queue() {
            Some(q) => q.recv_timeout(&self.local, timeout),
            None => Recv::Closed,
        }
    }

    /// Moves up to `max` already-queued events into `buf` without waiting; returns how many.
    pub fn try_recv_many(&self, buf: &mut Vec<Event>, max: usize) -> usize {
        if let Some(ev) = self.after_fork() {
            let had = ev.is_some();
            buf.extend(ev);
            return usize::from(had);
        }
        let n = self.queue().map_or(0, |q| q.fill(&mut lock(&self.local), buf, max));
        if n == 0 {
            // Nothing to handle: let go of what the events handled so far held back.
            text::release_held();
        }
        n
    }

    /// True once the source is closed or failed and every queued event was received.
    pub fn is_finished(&self) -> bool {
        if self.shared.forked() {
            return self.shared.fork_reported.load(Ordering::Acquire);
        }
        self.queue().is_none_or(|q| {
            let local = lock(&self.local);
            local.is_empty() && q.is_finished()
        })
    }

    /// Pull mode: `notify` is called (from any thread, without locks held) whenever the queue
    /// goes from empty to non-empty and when the source finishes — to wake an event loop,
    /// e.g. by writing to an eventfd. It must not block. Replaces any previous notifier.
    pub fn set_notify(&self, notify: Option<Box<dyn Fn() + Send + Sync>>) {
        if self.shared.forked() {
            return;
        }
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
        if let Some(ev) = this.after_fork() {
            return Poll::Ready(ev);
        }
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

#[cfg(test)]
mod tests {
    //! close() against the consumer's buffer over a real connection.

    use std::sync::Arc;
    use std::task::Waker;

    use super::*;
    use queue::tests::CountingWaker;

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
