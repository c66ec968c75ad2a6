//! `eventsource_native._native`: the private native half of the Python package.
//!
//! Why it looks like this: the Python layer (`python/eventsource_native/`) owns everything a
//! Python user sees (listeners, iteration, asyncio, exceptions), and this module owns only what
//! must be fast or must not hold the GIL:
//!
//! - [`NativeSource`] wraps a pull-mode core source. Receiving crosses the boundary once per
//!   *batch* of events ([`NativeSource::next_batch`], [`NativeSource::take`]) and converts the
//!   whole batch to Python objects in one go, reusing the Python strings of the event type,
//!   last event ID and origin, which repeat from one event to the next.
//! - Blocking waits release the GIL (`py.detach`) and wake up every 50 ms to run Python signal
//!   handlers, so Ctrl-C interrupts a blocking iteration promptly.
//! - Event-loop integration goes through one [`wakeup::Notifier`] per loop (an eventfd and a
//!   ready list, see `wakeup.rs`): a watched source's core notifier lists the source when its
//!   queue goes from empty to non-empty (once per batch, never with the GIL), and the loop's
//!   one reader drains the list. One descriptor per loop, not one pair per source.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod logbridge;
mod raw;
mod wakeup;

use eventsource_core::{Event, EventSource, Options, ReadyState, Recv, Text, TransportKind};
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use wakeup::Notifier;

pyo3::create_exception!(
    _native,
    CoreError,
    PyException,
    "Raised by `NativeSource(...)`; args are (kind, message, status). The public package turns it into an EventSourceError subclass."
);

/// How long one GIL-free wait lasts before Python signal handlers get a chance to run.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Event classes (public, re-exported by the package).

/// The `open` event (`type == "open"`), passed to `onopen` and `"open"` listeners.
#[pyclass(frozen, module = "eventsource_native", name = "Event")]
pub struct PyEvent {
    #[pyo3(get, name = "type")]
    event_type: Py<PyString>,
}

#[pymethods]
impl PyEvent {
    #[new]
    fn py_new(r#type: Bound<'_, PyString>) -> Self {
        PyEvent { event_type: r#type.unbind() }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Event(type={})", self.event_type.bind(py).repr()?))
    }
}

/// The `error` event: `kind` (a stable snake_case name such as `"network"` or
/// `"http_status"`), `message`, `status` (HTTP status or `None`), `ready_state`
/// (CONNECTING = 0 when the source reconnects, CLOSED = 2 when it gave up), and for an error
/// about a response the server's `headers` (a `Headers` mapping) and the start of its `body`
/// (`bytes`; `text` and `json()` read it). Without a response they are empty.
#[pyclass(frozen, module = "eventsource_native", name = "ErrorEvent")]
pub struct PyErrorEvent {
    #[pyo3(get, name = "type")]
    event_type: Py<PyString>,
    #[pyo3(get)]
    kind: Py<PyString>,
    #[pyo3(get)]
    message: Py<PyString>,
    #[pyo3(get)]
    status: Option<u16>,
    #[pyo3(get)]
    ready_state: u8,
    #[pyo3(get)]
    headers: Py<PyAny>,
    #[pyo3(get)]
    body: Py<PyBytes>,
}

#[pymethods]
impl PyErrorEvent {
    #[new]
    #[pyo3(signature = (kind, message, status = None, ready_state = 2, *, headers = None, body = None))]
    fn py_new(
        py: Python<'_>,
        kind: Bound<'_, PyString>,
        message: Bound<'_, PyString>,
        status: Option<u16>,
        ready_state: u8,
        headers: Option<Bound<'_, PyAny>>,
        body: Option<&[u8]>,
    ) -> PyResult<Self> {
        let headers = match headers {
            None => empty_headers(py)?,
            Some(h) => headers_class(py)?.call1((h,))?.unbind(),
        };
        Ok(PyErrorEvent {
            event_type: pyo3::intern!(py, "error").clone().unbind(),
            kind: kind.unbind(),
            message: message.unbind(),
            status,
            ready_state,
            headers,
            body: PyBytes::new(py, body.unwrap_or_default()).unbind(),
        })
    }

    /// `body` decoded as UTF-8 (invalid bytes replaced by U+FFFD).
    #[getter]
    fn text(&self, py: Python<'_>) -> String {
        String::from_utf8_lossy(self.body.bind(py).as_bytes()).into_owned()
    }

    /// `body` parsed as JSON (`json.loads`); raises `ValueError` when it is not JSON.
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        LOADS.import(py, "json", "loads")?.call1((self.body.bind(py),))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ErrorEvent(kind={}, message={}, status={}, ready_state={})",
            self.kind.bind(py).repr()?,
            self.message.bind(py).repr()?,
            self.status.map_or_else(|| "None".to_owned(), |s| s.to_string()),
            self.ready_state
        ))
    }
}

/// `eventsource_native._headers.Headers`, the class of every `headers` value.
fn headers_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CLASS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CLASS.import(py, "eventsource_native._headers", "Headers")
}

/// One shared empty `Headers` (it is immutable): the value for errors without a response.
fn empty_headers(py: Python<'_>) -> PyResult<Py<PyAny>> {
    static EMPTY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    EMPTY
        .get_or_try_init(py, || headers_class(py)?.call0().map(Bound::unbind))
        .map(|h| h.clone_ref(py))
}

/// A `Headers` of these (lowercase) fields.
fn headers_of(py: Python<'_>, fields: &[(String, String)]) -> PyResult<Py<PyAny>> {
    if fields.is_empty() {
        return empty_headers(py);
    }
    let list = PyList::new(py, fields.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
    Ok(headers_class(py)?.call1((list,))?.unbind())
}

// ---------------------------------------------------------------------------------------------
// Conversion of a batch, with the repeating strings cached.

/// What a source keeps between batches: the Python strings of the repeating fields, the
/// average data size that sizes the next batch, and the event buffer (reused, not reallocated).
#[derive(Default)]
struct StrCache {
    event_type: Option<(Text, Py<PyString>)>,
    last_event_id: Option<(Text, Py<PyString>)>,
    origin: Option<(Text, Py<PyString>)>,
    /// Running average of the data bytes per message event (0 before the first batch).
    avg_data: usize,
    buf: Vec<Event>,
}

/// Data bytes one batch should hold at most. A batch's strings all live at once: past ~128 KiB
/// they outgrow L2 and glibc's trim threshold (freeing the batch gives the pages back to the
/// kernel, and the next batch faults them in again), which costs 1 KB events several times
/// their copy. 48 KiB keeps them in cache; small events still come 256 at a time.
const BATCH_BYTES: usize = 48 << 10;
/// Fewest events per batch, whatever their size.
const MIN_BATCH: usize = 8;

impl StrCache {
    /// How many events to take now, given that the caller allows `max`.
    fn batch_len(&self, max: usize) -> usize {
        let by_size = BATCH_BYTES / self.avg_data.max(1);
        max.min(by_size.max(MIN_BATCH)).max(1)
    }

    /// Takes the batch buffer, filled with up to `batch_len(max)` queued events.
    fn fill(&mut self, es: &EventSource, max: usize) -> Vec<Event> {
        let mut buf = std::mem::take(&mut self.buf);
        es.try_recv_many(&mut buf, self.batch_len(max));
        buf
    }

    /// Gives the (drained) buffer back for the next batch.
    fn give_back(&mut self, buf: Vec<Event>) {
        if buf.capacity() <= 1024 {
            self.buf = buf;
        }
    }

    /// Updates the average data size from a batch; returns how many of its events are
    /// messages.
    fn observe(&mut self, events: &[Event]) -> usize {
        let (mut messages, mut bytes) = (0, 0);
        for ev in events {
            if let Event::Message(m) = ev {
                messages += 1;
                bytes += m.data.len();
            }
        }
        // Moves most of the way at once: a stream that changes size is followed within a batch.
        if let Some(avg) = bytes.checked_div(messages) {
            self.avg_data = (self.avg_data + 3 * avg) / 4;
        }
        messages
    }
}

/// Equal texts; the parser shares one buffer for a repeated type or ID, so the pointer test
/// usually answers without comparing bytes.
fn same_text(a: &Text, b: &Text) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

fn cached(py: Python<'_>, slot: &mut Option<(Text, Py<PyString>)>, text: Text) -> Py<PyString> {
    cached_with(py, slot, text, PyString::new)
}

/// As `cached`, for the event type: the string is interned, so it is the very object that keys
/// the listener table (a dict lookup by identity, no string comparison) and that a `"message"`
/// literal in user code is.
fn cached_type(
    py: Python<'_>,
    slot: &mut Option<(Text, Py<PyString>)>,
    text: Text,
) -> Py<PyString> {
    cached_with(py, slot, text, PyString::intern)
}

fn cached_with<'py>(
    py: Python<'py>,
    slot: &mut Option<(Text, Py<PyString>)>,
    text: Text,
    make: fn(Python<'py>, &str) -> Bound<'py, PyString>,
) -> Py<PyString> {
    if let Some((t, s)) = slot
        && same_text(t, &text)
    {
        return s.clone_ref(py);
    }
    let s = make(py, &text).unbind();
    *slot = Some((text, s.clone_ref(py)));
    s
}

/// The listener-table key of an event made by `convert_one`: its `type`.
fn event_key<'py>(ev: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = ev.py();
    if let Ok(t) = raw::message_type_of(ev) {
        return Ok(t);
    }
    Ok(if ev.is_instance_of::<PyEvent>() {
        pyo3::intern!(py, "open")
    } else {
        pyo3::intern!(py, "error")
    }
    .clone()
    .into_any())
}

/// Converts one event to its Python object.
fn convert_one(py: Python<'_>, cache: &mut StrCache, ev: Event) -> PyResult<Py<PyAny>> {
    Ok(match ev {
        Event::Message(m) => raw::new_message_event(
            py,
            cached_type(py, &mut cache.event_type, m.event_type).into_any(),
            PyString::new(py, &m.data).into_any().unbind(),
            cached(py, &mut cache.last_event_id, m.last_event_id).into_any(),
            cached(py, &mut cache.origin, m.origin).into_any(),
        )?
        .unbind(),
        Event::Open => {
            let e = PyEvent { event_type: pyo3::intern!(py, "open").clone().unbind() };
            Py::new(py, e)?.into_any()
        }
        Event::Error(e) => {
            let err = &e.error;
            let e = PyErrorEvent {
                event_type: pyo3::intern!(py, "error").clone().unbind(),
                kind: PyString::new(py, err.kind().as_str()).unbind(),
                message: PyString::new(py, err.message()).unbind(),
                status: err.status(),
                ready_state: e.ready_state as u8,
                headers: headers_of(py, err.headers())?,
                body: PyBytes::new(py, err.body().unwrap_or_default()).unbind(),
            };
            Py::new(py, e)?.into_any()
        }
    })
}

/// Converts a batch (draining `events`); returns the list and whether every event in it is a
/// message.
fn convert<'py>(
    py: Python<'py>,
    cache: &mut StrCache,
    events: &mut Vec<Event>,
) -> PyResult<(Bound<'py, PyList>, bool)> {
    let only_messages = cache.observe(events) == events.len();
    let mut out: Vec<Py<PyAny>> = Vec::with_capacity(events.len());
    for ev in events.drain(..) {
        out.push(convert_one(py, cache, ev)?);
    }
    Ok((PyList::new(py, out)?, only_messages))
}

// ---------------------------------------------------------------------------------------------
// NativeSource.

fn duration(name: &str, secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!("{name} must be a finite number of seconds >= 0, got {secs}"))
    })
}

fn core_error(e: &eventsource_core::Error) -> PyErr {
    CoreError::new_err((e.kind().as_str(), e.message().to_owned(), e.status()))
}

/// A pull-mode core source. Private: use `eventsource_native.EventSource`.
#[pyclass(frozen, module = "eventsource_native._native")]
pub struct NativeSource {
    es: EventSource,
    /// Set by `close()`: a dispatch in progress stops at once.
    closed: AtomicBool,
    /// Bumped by `table_changed`.
    table_gen: AtomicU64,
    /// The token of the current watch (see `watch`).
    watch: Mutex<Option<u64>>,
    cache: Mutex<StrCache>,
}

#[pymethods]
impl NativeSource {
    /// Options arrive already checked for types by the Python layer; durations are seconds.
    /// Every option is required here: the defaults live in the Python signature (and the
    /// User-Agent's in `DEFAULT_USER_AGENT`, from the core).
    #[new]
    #[pyo3(signature = (url, *, with_credentials, headers, method, body, last_event_id, retry,
                        max_retry, connect_timeout, read_timeout, response_timeout, max_event_size,
                        max_redirects, allow_https_downgrade,
                        backoff, proxy, ca_certs, accept_invalid_certs, client_cert, client_key,
                        transport, http2_prior_knowledge, reconnect, max_reconnects,
                        retry_initial, user_agent, max_error_body))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        url: &str,
        with_credentials: bool,
        headers: Vec<(String, String)>,
        method: String,
        body: Option<Vec<u8>>,
        last_event_id: Option<String>,
        retry: f64,
        max_retry: f64,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        response_timeout: Option<f64>,
        max_event_size: usize,
        max_redirects: usize,
        allow_https_downgrade: bool,
        backoff: f64,
        proxy: Option<String>,
        ca_certs: Option<PathBuf>,
        accept_invalid_certs: bool,
        client_cert: Option<PathBuf>,
        client_key: Option<PathBuf>,
        transport: &str,
        http2_prior_knowledge: bool,
        reconnect: Option<bool>,
        max_reconnects: Option<u32>,
        retry_initial: bool,
        user_agent: Option<String>,
        max_error_body: usize,
    ) -> PyResult<Self> {
        let opts = Options {
            with_credentials,
            headers,
            method,
            body,
            last_event_id,
            retry: duration("retry", retry)?,
            max_retry: duration("max_retry", max_retry)?,
            connect_timeout: connect_timeout.map(|t| duration("connect_timeout", t)).transpose()?,
            read_timeout: read_timeout.map(|t| duration("read_timeout", t)).transpose()?,
            response_timeout: response_timeout
                .map(|t| duration("response_timeout", t))
                .transpose()?,
            max_event_size,
            max_redirects,
            allow_https_downgrade,
            backoff,
            proxy,
            ca_certs,
            accept_invalid_certs,
            client_cert,
            client_key,
            transport: transport.parse::<TransportKind>().map_err(|e| core_error(&e))?,
            http2_prior_knowledge,
            reconnect,
            max_reconnects,
            retry_initial,
            user_agent,
            max_error_body,
            ..Options::default()
        };
        // The logger's level may have changed since the last source: read it again here (on
        // this thread, with the GIL), so the runtime threads never ask Python for it.
        logbridge::refresh(py);
        let es = EventSource::with_options(url, opts).map_err(|e| core_error(&e))?;
        Ok(NativeSource {
            es,
            closed: AtomicBool::new(false),
            table_gen: AtomicU64::new(0),
            watch: Mutex::new(None),
            cache: Mutex::new(StrCache::default()),
        })
    }

    #[getter]
    fn url(&self) -> &str {
        self.es.url()
    }

    #[getter]
    fn with_credentials(&self) -> bool {
        self.es.with_credentials()
    }

    /// The header fields of the response that opened the current (or last) connection, as a
    /// `Headers`; empty before the first open.
    fn response_headers(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        headers_of(py, &self.es.response_headers())
    }

    /// The live connection state (the Python layer reports the state of the last delivered event).
    #[getter]
    fn live_ready_state(&self) -> u8 {
        self.es.ready_state() as u8
    }

    /// Closes the source; queued events are discarded. Idempotent, any thread.
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        py.detach(|| self.es.close());
    }

    /// Takes up to `max` queued events and delivers each, in order, to the callables of
    /// `table[event.type]` (a dict of tuples, so a listener added or removed by a listener
    /// takes effect from the next event; lookups are reused until `table_changed()`). Before
    /// each event's listeners run, sets `owner._ready_state` to that event's state when it
    /// changed. Stops at once when the source is closed (the rest of the batch is dropped). An
    /// `Exception` raised by a listener goes to `sys.unraisablehook` and delivery goes on; a
    /// `BaseException` (KeyboardInterrupt, SystemExit) propagates. Returns how many events were
    /// taken (`max`: more may be queued).
    fn dispatch(
        &self,
        py: Python<'_>,
        max: usize,
        table: &Bound<'_, PyDict>,
        owner: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let max = max.max(1);
        let state_attr = pyo3::intern!(py, "_ready_state");
        let mut state: Option<u8> = None;
        let mut args = OneArg::new(py)?;
        // The listeners of the last type looked up, valid while the table's generation is
        // unchanged (`table_changed`): a run of same-type events costs one dict lookup.
        let mut looked_up: Option<(u64, Py<PyAny>, Option<Bound<'_, PyTuple>>)> = None;
        let mut taken = 0;
        // Sub-batches sized by `StrCache::batch_len`, so large events stay in cache.
        loop {
            let (want, n, mut buf);
            {
                let mut cache = lock(&self.cache);
                want = cache.batch_len(max - taken);
                buf = cache.fill(&self.es, want);
                n = buf.len();
                cache.observe(&buf);
                taken += n;
            }
            // Each event becomes a Python object just before its listeners run, so one event
            // (and its `str`) is alive at a time and the allocator hands the same memory back
            // event after event. The cache lock is held only while converting: listeners may
            // run Python code that takes events.
            for ev in buf.drain(..) {
                if self.closed.load(Ordering::Acquire) {
                    return Ok(taken);
                }
                let s = ev.ready_state() as u8;
                let obj = convert_one(py, &mut lock(&self.cache), ev)?.into_bound(py);
                if state != Some(s) {
                    owner.setattr(state_attr, s)?;
                    state = Some(s);
                }
                let key = event_key(&obj)?;
                let generation = self.table_gen.load(Ordering::Acquire);
                let fresh = matches!(&looked_up, Some((g, k, _)) if *g == generation && k.is(&key));
                if !fresh {
                    let fns = match table.get_item(&key)? {
                        Some(f) => Some(f.cast_into::<PyTuple>()?),
                        None => None,
                    };
                    looked_up = Some((generation, key.unbind(), fns));
                }
                let Some((_, _, Some(fns))) = &looked_up else { continue };
                for f in fns.iter() {
                    if let Err(e) = args.call(&f, &obj) {
                        if !e.is_instance_of::<PyException>(py) {
                            return Err(e);
                        }
                        e.write_unraisable(py, Some(&f));
                    }
                    if self.closed.load(Ordering::Acquire) {
                        return Ok(taken);
                    }
                }
            }
            lock(&self.cache).give_back(buf);
            if n < want || taken >= max {
                break; // the queue is empty, or this call took its share
            }
        }
        Ok(taken)
    }

    /// Tells `dispatch` that the listener table changed (a listener was added or removed):
    /// call after every change, before the next event is to be delivered.
    fn table_changed(&self) {
        self.table_gen.fetch_add(1, Ordering::AcqRel);
    }

    /// True once the source is closed or failed and every queued event was taken.
    fn is_finished(&self) -> bool {
        self.es.is_finished()
    }

    /// Takes up to `max` queued events without waiting: `(list, only_messages)`. Large events
    /// come in smaller batches (see `StrCache::batch_len`).
    fn take<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyTuple>> {
        let mut cache = lock(&self.cache);
        let buf = cache.fill(&self.es, max);
        pack(py, &mut cache, buf)
    }

    /// Waits (GIL released, signal handlers run every 50 ms) for at least one event, then
    /// takes up to `max` (fewer for large events): `(list, only_messages)`. `None` once the
    /// source is finished; `([], True)` when `timeout` (seconds, `None` = no limit) elapses
    /// first. A signal handler's exception (KeyboardInterrupt) propagates.
    #[pyo3(signature = (max, timeout = None))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let max = max.max(1);
        {
            let mut cache = lock(&self.cache);
            let buf = cache.fill(&self.es, max);
            if !buf.is_empty() {
                return pack(py, &mut cache, buf).map(Some);
            }
            cache.give_back(buf);
        }
        // The cache lock is not held while the GIL is released: another thread may take().
        let deadline = timeout.map(|t| duration("timeout", t)).transpose()?.map(|t| {
            Instant::now().checked_add(t).unwrap_or_else(|| Instant::now() + SIGNAL_SLICE)
        });
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SIGNAL_SLICE),
                None => SIGNAL_SLICE,
            };
            match py.detach(|| self.es.recv_timeout(Some(slice))) {
                Recv::Event(e) => {
                    let mut cache = lock(&self.cache);
                    let mut buf = std::mem::take(&mut cache.buf);
                    buf.push(e);
                    let more = cache.batch_len(max) - 1;
                    self.es.try_recv_many(&mut buf, more);
                    return pack(py, &mut cache, buf).map(Some);
                }
                Recv::Closed => return Ok(None),
                Recv::Timeout => {
                    py.check_signals()?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        // An empty batch, in the cache's own (empty) buffer so it keeps it.
                        let mut cache = lock(&self.cache);
                        let buf = std::mem::take(&mut cache.buf);
                        return pack(py, &mut cache, buf).map(Some);
                    }
                }
            }
        }
    }

    /// Registers with a loop's notifier: from now on the notifier lists the returned token
    /// whenever events become available (or the source finishes), and once right away. Replaces
    /// any previous watch.
    fn watch(&self, notifier: &Notifier) -> u64 {
        let mut slot = lock(&self.watch);
        let w = Arc::new(notifier.watch());
        let token = w.token;
        let marker = w.clone();
        self.es.set_notify(Some(Box::new(move || marker.mark())));
        *slot = Some(token);
        // After the notifier is in place: events queued before it are seen by this look.
        w.mark();
        token
    }

    /// Ends the watch (only if it is `token`'s, when given); returns the token it ended.
    #[pyo3(signature = (token = None))]
    fn unwatch(&self, token: Option<u64>) -> Option<u64> {
        let mut slot = lock(&self.watch);
        if token.is_some() && *slot != token {
            return None;
        }
        let old = slot.take();
        if old.is_some() {
            self.es.set_notify(None);
        }
        old
    }
}

/// Converts a batch into `(list, only_messages)` and gives the buffer back to the cache.
fn pack<'py>(
    py: Python<'py>,
    cache: &mut StrCache,
    mut buf: Vec<Event>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (list, only_messages) = convert(py, cache, &mut buf)?;
    cache.give_back(buf);
    PyTuple::new(
        py,
        [list.into_any(), pyo3::types::PyBool::new(py, only_messages).to_owned().into_any()],
    )
}

/// Calls a callable with one argument, reusing one argument tuple while nobody else holds it
/// (abi3 before Python 3.12 has no vectorcall: a call needs a tuple, and making one per
/// listener call is a measurable part of the per-event cost).
struct OneArg<'py> {
    tuple: Bound<'py, PyTuple>,
}

impl<'py> OneArg<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        Ok(OneArg { tuple: PyTuple::new(py, [py.None()])? })
    }

    fn call(
        &mut self,
        f: &Bound<'py, PyAny>,
        arg: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = f.py();
        // SAFETY: `self.tuple` is a live tuple of length 1. PyTuple_SetItem is only used while we
        // hold the only reference (a callee that kept the tuple gets a fresh one next time), and
        // it steals the new item's reference and releases the old one.
        unsafe {
            if pyo3::ffi::Py_REFCNT(self.tuple.as_ptr()) != 1 {
                self.tuple = PyTuple::new(py, [py.None()])?;
            }
            pyo3::ffi::PyTuple_SetItem(self.tuple.as_ptr(), 0, arg.clone().into_ptr());
        }
        f.call1(&self.tuple)
    }
}

impl Drop for NativeSource {
    fn drop(&mut self) {
        self.es.set_notify(None);
        self.es.close();
    }
}

/// Reports `exc` (raised by the callback `obj`) through `sys.unraisablehook`, as an exception
/// in a finalizer or a callback with no caller to return to is reported.
#[pyfunction]
fn report_unraisable(exc: Bound<'_, PyAny>, obj: Bound<'_, PyAny>) {
    let py = obj.py();
    PyErr::from_value(exc).write_unraisable(py, Some(&obj));
}

/// Private native module of `eventsource_native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeSource>()?;
    m.add_class::<Notifier>()?;
    m.add_function(wrap_pyfunction!(report_unraisable, m)?)?;
    raw::register(m)?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyErrorEvent>()?;
    logbridge::install(m)?;
    m.add("CoreError", m.py().get_type::<CoreError>())?;
    m.add("VERSION", eventsource_core::VERSION)?;
    m.add("DEFAULT_USER_AGENT", Options::default().user_agent)?;
    m.add("CONNECTING", ReadyState::Connecting as u8)?;
    m.add("OPEN", ReadyState::Open as u8)?;
    m.add("CLOSED", ReadyState::Closed as u8)?;
    Ok(())
}
