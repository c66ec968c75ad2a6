//! `eventsource-node`: the napi-rs addon behind the `eventsource-native` npm package.
//!
//! Why it looks like this: JavaScript can create and dispatch only a few million
//! `MessageEvent`s per second, so the crossing from Rust must cost far less than that per event,
//! and as little of it as possible may run on the JS thread. The source runs in the core's push
//! mode: on the library's runtime thread, the [`Handler`] encodes each batch (the events of one
//! network read) straight into *segments*: ONE string (all data, types, ids, origins and error
//! messages, concatenated, at most ~96 KiB, already as V8 stores it: Latin-1, or UTF-16 once
//! a character is above U+00FF, see [`v8text`]) plus a compact word stream, where a message is a
//! single word (where its data ends in the string) and the type, last event ID and origin are
//! sent only when they change. When the segment queue goes from empty to non-empty it wakes
//! the JS thread with one ThreadsafeFunction call (calls coalesce: at most a couple are ever
//! pending, so the TSFN queue is bounded). On the JS thread, [`NativeSource::take`] pops a
//! segment: one string creation (a copy, no decoding) and one word copy, no per-event work. The wrapper
//! (`index.js`) slices the string and dispatches real `MessageEvent`s. The segment queue is
//! bounded too: above [`HIGH_WATER`] bytes the handler stops the connection from reading until
//! JavaScript catches up.
//!
//! Keeping the process alive: the ThreadsafeFunction is strong (ref'd) while the wrapper says
//! so ([`NativeSource::set_ref`]: open or connecting, and something listens), so Node waits for
//! its events; it is released on `close()`, once the source has failed and its last event was
//! taken, and when the wrapper is garbage-collected (`Drop`), so a closed or collected source
//! never holds the loop. Its JS function reaches the wrapper through a `WeakRef`.
//!
//! What the server answered crosses only where it is needed, never per message: the headers
//! of the response that opened a connection come with its `open`, and the headers and body
//! start kept on an error about a response come with that `error` (both in the same string).
//!
//! Logging: the core logs through the `log` crate. Nothing is installed unless the wrapper
//! calls [`enable_logging`] (`NODE_DEBUG` names the section), so by default `log`'s max level
//! stays `Off` and the core does not even format its records.
//!
//! Every export is `catch_unwind`: a panic becomes a JS exception, never an abort.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use eventsource_core::{
    Batch, ErrorKind, Event, EventSource, Handler, Options, ReadyState, Text, TransportKind,
};
use napi::JsString;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

mod v8text;

/// Word-stream opcodes (high bit set); a word without the high bit is a message's data end.
/// Kept in sync with `index.js`.
const OP_TYPE: u32 = 0x8000_0001;
const OP_ID: u32 = 0x8000_0002;
const OP_ORIGIN: u32 = 0x8000_0003;
/// Followed by the end of the response headers (`name:value\n` lines).
const OP_OPEN: u32 = 0x8000_0004;
/// Followed by readyState, HTTP status (0: none), the kind name's end, the message's end.
const OP_ERROR: u32 = 0x8000_0005;
/// An error about a response: as `OP_ERROR`, then the end of the response headers and the end
/// of the body start (lossy UTF-8).
const OP_ERROR_ANSWER: u32 = 0x8000_0006;
/// Words `meta[0]` (count of words that follow the header) and `meta[1]` (1: more queued).
const HEADER: usize = 2;
/// Most words one event can take (type + id + origin changes + the message word).
const MAX_WORDS_PER_EVENT: usize = 7;
/// Most bytes of one take()'s string as V8 stores it (one per character, or two once a
/// character is above U+00FF), unless a single event is bigger. Below V8's large-object
/// threshold (128 KiB), so the string is an ordinary young-generation object: a 1 MiB string
/// per take measured 2x slower (fresh pages, page faults), and so did 192 KiB UTF-16 strings
/// when the budget counted UTF-8 bytes. It also bounds what a retained `data` slice keeps alive.
const TEXT_BUDGET: usize = 96 << 10;
/// Words of one segment, at most (the wrapper's word buffer holds 32 Ki words).
const SEGMENT_WORDS: usize = (1 << 15) - HEADER;
/// Queued text (bytes of V8 strings) above which the connection stops reading until
/// JavaScript catches up.
const HIGH_WATER: usize = 8 << 20;

/// The wake-up: called with no arguments on the JS thread. Created strong (it keeps the loop
/// alive; the wrapper turns that off and on with [`NativeSource::set_ref`]), errors are not
/// passed to it, and at most 2 calls are ever queued (they coalesce).
type Wake = ThreadsafeFunction<(), Unknown<'static>, (), Status, false, false, 2>;

/// Options as the JS wrapper passes them, already validated there. Durations in milliseconds;
/// a negative timeout means "no limit".
#[napi(object)]
pub struct NativeOptions {
    pub with_credentials: Option<bool>,
    /// `[name, value]` pairs.
    pub headers: Option<Vec<Vec<String>>>,
    pub method: Option<String>,
    pub body: Option<Buffer>,
    pub last_event_id: Option<String>,
    pub retry: Option<f64>,
    pub max_retry: Option<f64>,
    pub backoff: Option<f64>,
    pub connect_timeout: Option<f64>,
    pub read_timeout: Option<f64>,
    pub response_timeout: Option<f64>,
    pub max_event_size: Option<f64>,
    pub max_redirects: Option<u32>,
    pub allow_https_downgrade: Option<bool>,
    pub proxy: Option<String>,
    pub ca_certs: Option<String>,
    pub accept_invalid_certs: Option<bool>,
    /// `"default"` or `"lean"`.
    pub transport: Option<String>,
    pub http2_prior_knowledge: Option<bool>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    /// Absent: the core's rule (GET reconnects, other methods do not).
    pub reconnect: Option<bool>,
    /// Absent: no limit.
    pub max_reconnects: Option<u32>,
    pub retry_initial: Option<bool>,
    /// The `User-Agent`; see `no_user_agent` for "none" (`null` in JS).
    pub user_agent: Option<String>,
    /// True: send no `User-Agent` (JS `userAgent: null`). napi reads `null` as absent, so
    /// "none" needs its own field.
    pub no_user_agent: Option<bool>,
    pub max_error_body: Option<f64>,
}

fn millis(ms: f64) -> Duration {
    Duration::from_secs_f64((ms.max(0.0)) / 1000.0)
}

fn timeout(ms: f64) -> Option<Duration> {
    (ms >= 0.0 && ms.is_finite()).then(|| millis(ms))
}

impl NativeOptions {
    fn into_core(self) -> Result<Options> {
        let mut o = Options::default();
        if let Some(v) = self.with_credentials {
            o.with_credentials = v;
        }
        for pair in self.headers.unwrap_or_default() {
            let [name, value]: [String; 2] = pair.try_into().map_err(|_| {
                Error::new(Status::InvalidArg, "headers must be [name, value] pairs".to_owned())
            })?;
            o.headers.push((name, value));
        }
        if let Some(m) = self.method {
            o.method = m;
        }
        o.body = self.body.map(|b| b.to_vec());
        o.last_event_id = self.last_event_id;
        if let Some(ms) = self.retry {
            o.retry = millis(ms);
        }
        if let Some(ms) = self.max_retry {
            o.max_retry = millis(ms);
        }
        if let Some(f) = self.backoff {
            o.backoff = f;
        }
        if let Some(ms) = self.connect_timeout {
            o.connect_timeout = timeout(ms);
        }
        if let Some(ms) = self.read_timeout {
            o.read_timeout = timeout(ms);
        }
        if let Some(ms) = self.response_timeout {
            o.response_timeout = timeout(ms);
        }
        if let Some(n) = self.max_event_size {
            o.max_event_size = n as usize;
        }
        if let Some(n) = self.max_redirects {
            o.max_redirects = n as usize;
        }
        if let Some(v) = self.allow_https_downgrade {
            o.allow_https_downgrade = v;
        }
        o.proxy = self.proxy;
        o.ca_certs = self.ca_certs.map(Into::into);
        if let Some(v) = self.accept_invalid_certs {
            o.accept_invalid_certs = v;
        }
        if let Some(t) = self.transport {
            o.transport = t.parse::<TransportKind>().map_err(construction_error)?;
        }
        if let Some(v) = self.http2_prior_knowledge {
            o.http2_prior_knowledge = v;
        }
        o.client_cert = self.client_cert.map(Into::into);
        o.client_key = self.client_key.map(Into::into);
        o.reconnect = self.reconnect;
        o.max_reconnects = self.max_reconnects;
        if let Some(v) = self.retry_initial {
            o.retry_initial = v;
        }
        if self.no_user_agent == Some(true) {
            o.user_agent = None;
        } else if let Some(ua) = self.user_agent {
            o.user_agent = Some(ua);
        }
        if let Some(n) = self.max_error_body {
            o.max_error_body = n as usize;
        }
        Ok(o)
    }
}

/// What the JS side already knows (type, id, origin), so that each is sent only on change.
struct Known {
    event_type: Text,
    last_event_id: Text,
    origin: Text,
}

/// About how many bytes an event adds to the string (`headers`: an open's response headers).
fn text_len(ev: &Event, headers: &[(String, String)]) -> usize {
    match ev {
        Event::Open => headers_len(headers),
        Event::Message(m) => m.data.len() + m.event_type.len() + m.last_event_id.len(),
        Event::Error(e) => {
            e.error.kind().as_str().len()
                + e.error.message().len()
                + headers_len(e.error.headers())
                + e.error.body().map_or(0, <[u8]>::len)
        }
    }
}

/// Whether a message brings a character above U+00FF (an error's text may too: errors are
/// rare, so it is taken as widening).
fn widens(ev: &Event) -> bool {
    match ev {
        Event::Open => false,
        Event::Message(m) => {
            v8text::is_wide(&m.data)
                || v8text::is_wide(&m.event_type)
                || v8text::is_wide(&m.last_event_id)
                || v8text::is_wide(&m.origin)
        }
        Event::Error(_) => true,
    }
}

fn headers_len(headers: &[(String, String)]) -> usize {
    headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum()
}

/// Same string? Most often the very same bytes (a shared `Text`), so compare pointers first.
fn same(a: &Text, b: &Text) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// One JS string's worth of events: the string's characters, as V8 will store them, and the
/// word stream that points into it (positions in UTF-16 units, what JS `slice` counts: one per
/// character in either representation, two for a character beyond U+FFFF).
#[derive(Default)]
struct Segment {
    /// Latin-1, while every character is at most U+00FF.
    latin1: Vec<u8>,
    /// UTF-16, once a character above U+00FF came (`latin1` is then empty).
    utf16: Vec<u16>,
    wide: bool,
    words: Vec<u32>,
    /// Holds an `open` (alone): nothing more goes in, so that the headers JS keeps until the
    /// next open do not keep a large string alive.
    sealed: bool,
}

impl Segment {
    fn units(&self) -> usize {
        if self.wide { self.utf16.len() } else { self.latin1.len() }
    }

    /// The size of the V8 string's characters.
    fn v8_bytes(&self) -> usize {
        if self.wide { 2 * self.utf16.len() } else { self.latin1.len() }
    }

    /// Appends `s` and returns where it ends, in UTF-16 units.
    fn push_str(&mut self, s: &str) -> u32 {
        if s.is_ascii() {
            if self.wide {
                self.utf16.extend(s.bytes().map(u16::from));
            } else {
                self.latin1.extend_from_slice(s.as_bytes());
            }
        } else {
            if !self.wide && v8text::is_wide(s) {
                self.utf16.extend(self.latin1.iter().map(|&c| u16::from(c)));
                self.latin1.clear();
                self.wide = true;
            }
            if self.wide {
                v8text::push_utf16(&mut self.utf16, s);
            } else {
                v8text::push_latin1(&mut self.latin1, s);
            }
        }
        self.units() as u32
    }

    fn field(&mut self, op: u32, known: &mut Text, value: &Text) {
        if !same(known, value) {
            self.words.push(op);
            let end = self.push_str(value);
            self.words.push(end);
            *known = value.clone();
        }
    }

    /// Appends `name:value\n` lines (names are tokens, values hold no LF: the transports
    /// refuse both) and returns where they end.
    fn push_headers(&mut self, headers: &[(String, String)]) -> u32 {
        for (n, v) in headers {
            self.push_str(n);
            self.push_str(":");
            self.push_str(v);
            self.push_str("\n");
        }
        self.units() as u32
    }

    fn fits(&self, ev: &Event, headers: &[(String, String)]) -> bool {
        if self.words.is_empty() {
            return true;
        }
        if self.sealed
            || matches!(ev, Event::Open)
            || self.words.len() + MAX_WORDS_PER_EVENT > SEGMENT_WORDS
        {
            return false;
        }
        // At most one unit per UTF-8 byte, two bytes a unit once wide: whether the event widens
        // the segment matters only near the budget.
        let units = self.units() + text_len(ev, headers);
        if 2 * units <= TEXT_BUDGET {
            return true;
        }
        units <= TEXT_BUDGET && !self.wide && !widens(ev)
    }

    /// `headers`: for `Open`, the headers of the response that opened the connection.
    fn event(&mut self, known: &mut Known, event: &Event, headers: &[(String, String)]) {
        match event {
            Event::Open => {
                let end = self.push_headers(headers);
                self.words.extend_from_slice(&[OP_OPEN, end]);
                self.sealed = true;
            }
            Event::Message(m) => {
                self.field(OP_TYPE, &mut known.event_type, &m.event_type);
                self.field(OP_ID, &mut known.last_event_id, &m.last_event_id);
                self.field(OP_ORIGIN, &mut known.origin, &m.origin);
                let end = self.push_str(&m.data);
                self.words.push(end);
            }
            Event::Error(e) => {
                let error = &e.error;
                let status = error.status().map_or(0, u32::from);
                let body = error.body();
                let op = if body.is_some() { OP_ERROR_ANSWER } else { OP_ERROR };
                self.words.extend_from_slice(&[op, e.ready_state as u32, status]);
                // The kind goes by name (errors are rare), so a kind added to the core
                // reaches JavaScript without a table to keep in sync.
                let kind_end = self.push_str(error.kind().as_str());
                let end = self.push_str(error.message());
                self.words.extend_from_slice(&[kind_end, end]);
                if let Some(body) = body {
                    let headers_end = self.push_headers(error.headers());
                    let body_end = self.push_str(&String::from_utf8_lossy(body));
                    self.words.extend_from_slice(&[headers_end, body_end]);
                }
            }
        }
    }
}

/// Encoded events waiting for JavaScript, shared by the handler (runtime thread) and
/// [`NativeSource::take`] (JS thread).
#[derive(Default)]
struct Pending {
    segments: VecDeque<Segment>,
    /// Text bytes in `segments`, for backpressure.
    bytes: usize,
    /// The handler is gone: the source failed (or was closed) and nothing more will come.
    finished: bool,
    /// The connection task, parked by backpressure.
    producer: Option<Waker>,
    /// Emptied segments, reused.
    spare: Vec<Segment>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// The wake-up; `None` once released (close, or failed and drained).
    wake: Mutex<Option<Arc<Wake>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn wake_js(&self) {
        let wake = lock(&self.wake).clone();
        if let Some(w) = wake {
            // NonBlocking: a full queue means a wake-up is already pending, and that one will
            // take everything queued by then; dropping this one loses nothing.
            w.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// The source, for its handler: the response headers of an `open` are read from it while that
/// `open` is handled (before the connection can move on to another response). Set by the
/// constructor right after the source exists; weak, so that it does not keep the source open.
#[derive(Default)]
struct SourceSlot {
    source: Mutex<Option<Weak<EventSource>>>,
    set: Condvar,
}

impl SourceSlot {
    fn set(&self, source: &Arc<EventSource>) {
        *lock(&self.source) = Some(Arc::downgrade(source));
        self.set.notify_all();
    }

    /// The response headers of the connection that just opened. Waits for the constructor
    /// to fill the slot if an `open` beat it (it does so right after the source is made).
    fn response_headers(&self) -> Vec<(String, String)> {
        let slot = lock(&self.source);
        let (slot, _) = self
            .set
            .wait_timeout_while(slot, Duration::from_secs(5), |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        let source = slot.as_ref().and_then(Weak::upgrade);
        drop(slot);
        source.map(|s| s.response_headers()).unwrap_or_default()
    }
}

/// The push-mode handler: encodes on the runtime thread.
struct Encoder {
    shared: Arc<Shared>,
    known: Known,
    source: Arc<SourceSlot>,
}

impl Handler for Encoder {
    fn on_events(&mut self, events: &mut Batch<'_>) {
        let mut p = lock(&self.shared.pending);
        let was_empty = p.segments.is_empty();
        let mut added = 0;
        for ev in events {
            // Only an `open` carries headers: one allocation per connection, not per event.
            let headers =
                if matches!(ev, Event::Open) { self.source.response_headers() } else { Vec::new() };
            let need_new = p.segments.back().is_none_or(|seg| !seg.fits(&ev, &headers));
            // The segment JS may be about to take is never appended to: only the last one,
            // and only while it is not the one being taken (take() pops under this lock).
            if need_new {
                let seg = p.spare.pop().unwrap_or_default();
                p.segments.push_back(seg);
            }
            let seg = p.segments.back_mut().expect("a segment");
            let before = seg.v8_bytes();
            seg.event(&mut self.known, &ev, &headers);
            added += seg.v8_bytes() - before;
        }
        p.bytes += added;
        let now_non_empty = was_empty && !p.segments.is_empty();
        drop(p);
        if now_non_empty {
            self.shared.wake_js();
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut p = lock(&self.shared.pending);
        if p.bytes < HIGH_WATER {
            Poll::Ready(())
        } else {
            p.producer = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for Encoder {
    // The connection task is over (failed, or closed): let JS take the rest, then release.
    fn drop(&mut self) {
        let mut p = lock(&self.shared.pending);
        p.finished = true;
        let empty = p.segments.is_empty();
        drop(p);
        if empty {
            self.shared.wake_js();
        }
    }
}

/// The native half of an `EventSource`. Private: use the `EventSource` class of the package.
#[napi]
pub struct NativeSource {
    source: Option<Arc<EventSource>>,
    shared: Arc<Shared>,
    url: String,
    with_credentials: bool,
}

fn construction_error(e: eventsource_core::Error) -> Error {
    // The wrapper maps these codes: InvalidUrl → DOMException SyntaxError, else TypeError.
    let code = match e.kind() {
        ErrorKind::InvalidUrl => "InvalidUrl",
        _ => "InvalidOption",
    };
    Error::new(Status::GenericFailure, format!("{code}: {}", e.message()))
}

#[napi]
impl NativeSource {
    /// Starts connecting at once. `wake` is called (no arguments, on the JS thread, later)
    /// whenever events are ready for [`take`](Self::take). Throws `"InvalidUrl: ..."` or
    /// `"InvalidOption: ..."`.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        url: String,
        options: NativeOptions,
        wake: Function<(), Unknown<'static>>,
    ) -> Result<Self> {
        let wake: Wake = wake
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<false>()
            .max_queue_size::<2>()
            .build_callback(|_ctx| Ok(()))?;
        // The wake-up is installed only once the source exists: a failed construction must not
        // call into JS (the wrapper has no native half then).
        let shared =
            Arc::new(Shared { pending: Mutex::new(Pending::default()), wake: Mutex::new(None) });
        let slot = Arc::new(SourceSlot::default());
        let encoder = Encoder {
            shared: shared.clone(),
            known: Known {
                event_type: Text::from_static("message"),
                last_event_id: Text::new(),
                origin: Text::new(),
            },
            source: slot.clone(),
        };
        let source = EventSource::with_handler(&url, options.into_core()?, encoder)
            .map_err(construction_error)?;
        let source = Arc::new(source);
        // First, before any lock the handler may hold while it waits for this.
        slot.set(&source);
        *lock(&shared.wake) = Some(Arc::new(wake));
        // Anything queued before the wake-up was installed would wait for a wake that never
        // comes (the queue was already non-empty): wake once now if so.
        let p = lock(&shared.pending);
        let queued = !p.segments.is_empty() || p.finished;
        drop(p);
        if queued {
            shared.wake_js();
        }
        Ok(NativeSource {
            url: source.url().to_owned(),
            with_credentials: source.with_credentials(),
            source: Some(source),
            shared,
        })
    }

    /// The serialized URL.
    #[napi(getter, catch_unwind)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    #[napi(getter, catch_unwind)]
    pub fn with_credentials(&self) -> bool {
        self.with_credentials
    }

    /// Takes one segment of queued events: returns its string (or `null` when nothing was
    /// queued) and writes the word stream into `meta`: `meta[0]` = number of words after the
    /// 2-word header, `meta[1]` = 1 if more is queued (call again: no wake-up comes for it).
    /// `meta` must hold 32 Ki words.
    #[napi(catch_unwind)]
    pub fn take<'env>(
        &mut self,
        env: &'env Env,
        mut meta: Uint32ArraySlice,
    ) -> Result<Option<JsString<'env>>> {
        // SAFETY: the JS thread is ours for this call and the wrapper does not alias `meta`.
        let words = unsafe { meta.as_mut() };
        if words.len() < HEADER + SEGMENT_WORDS {
            return Err(Error::new(Status::InvalidArg, "meta is too small".to_owned()));
        }
        words[0] = 0;
        words[1] = 0;
        if self.source.is_none() {
            return Ok(None);
        }
        let mut p = lock(&self.shared.pending);
        let seg = p.segments.pop_front();
        if let Some(seg) = &seg {
            p.bytes -= seg.v8_bytes();
            if p.bytes < HIGH_WATER / 2
                && let Some(w) = p.producer.take()
            {
                w.wake();
            }
        }
        let more = !p.segments.is_empty();
        let release = p.finished && !more;
        drop(p);
        if release {
            // Failed (or closed) and drained: release the wake-up so the loop may exit.
            lock(&self.shared.wake).take();
        }
        let Some(mut seg) = seg else { return Ok(None) };
        words[0] = seg.words.len() as u32;
        words[1] = more as u32;
        words[HEADER..HEADER + seg.words.len()].copy_from_slice(&seg.words);
        let s = if seg.wide {
            env.create_string_utf16(&seg.utf16)?
        } else {
            env.create_string_latin1(&seg.latin1)?
        };
        // Recycle the buffers (unless a huge event made them huge).
        if seg.latin1.capacity() <= 2 * TEXT_BUDGET && seg.utf16.capacity() <= TEXT_BUDGET {
            seg.latin1.clear();
            seg.utf16.clear();
            seg.words.clear();
            seg.wide = false;
            seg.sealed = false;
            let mut p = lock(&self.shared.pending);
            if p.spare.len() < 4 {
                p.spare.push(seg);
            }
        }
        Ok(Some(s))
    }

    /// The live connection state (0, 1, 2); the wrapper exposes the state of the last
    /// delivered event instead, as the spec requires.
    #[napi(getter, catch_unwind)]
    pub fn live_state(&self) -> u32 {
        self.source.as_ref().map_or(ReadyState::Closed as u32, |s| s.ready_state() as u32)
    }

    /// Whether the wake-up keeps the event loop alive. The wrapper keeps it on while the source
    /// is open or connecting and something listens (see `index.js`); released, it does nothing.
    #[napi(catch_unwind)]
    pub fn set_ref(&self, env: &Env, on: bool) -> Result<()> {
        let wake = lock(&self.shared.wake);
        let Some(w) = wake.as_ref().filter(|w| !w.aborted()) else { return Ok(()) };
        // SAFETY: on the JS thread, and the function is not released while the lock is held.
        // (napi-rs's own refer/unref need the only handle, which the runtime thread shares.)
        let status = unsafe {
            if on {
                napi::sys::napi_ref_threadsafe_function(env.raw(), w.raw())
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), w.raw())
            }
        };
        if status == napi::sys::Status::napi_ok {
            Ok(())
        } else {
            Err(Error::new(
                Status::GenericFailure,
                format!("napi_(un)ref_threadsafe_function: {status}"),
            ))
        }
    }

    /// Closes the source: no event is taken afterwards, the connection is dropped and the
    /// wake-up released (the process may exit). Idempotent.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        if let Some(source) = self.source.take() {
            // After close() returns no handler call starts (or is still running).
            source.close();
        }
        let mut p = lock(&self.shared.pending);
        p.segments.clear();
        p.bytes = 0;
        drop(p);
        lock(&self.shared.wake).take();
    }
}

/// The wrapper was garbage-collected without `close()` (it had no listeners, see `index.js`):
/// close, so that its connection ends and its wake-up no longer holds the loop.
impl Drop for NativeSource {
    fn drop(&mut self) {
        self.close();
    }
}

/// The core's version string.
#[napi(catch_unwind)]
pub fn native_version() -> &'static str {
    eventsource_core::VERSION
}

/// The `log` target of the core's records.
const LOG_TARGET: &str = "eventsource_native";

/// Writes the core's records to stderr as `util.debuglog` does: `prefix` (the section and pid,
/// `EVENTSOURCE-NATIVE 1234: `, made by the wrapper), the level, the message. Straight from
/// the thread that logs, in one write: nothing waits for the JS thread (a record of the last
/// moments before exit is not lost) and nothing holds the event loop.
struct DebugLog {
    prefix: OnceLock<String>,
}

static LOGGER: DebugLog = DebugLog { prefix: OnceLock::new() };

impl log::Log for DebugLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        // Only the core's records: reqwest, rustls... log under their own targets.
        self.prefix.get().is_some() && metadata.target() == LOG_TARGET
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(prefix) = self.prefix.get() else { return };
        if record.target() != LOG_TARGET {
            return;
        }
        let line = format!("{prefix}{} {}\n", record.level(), record.args());
        // stderr closed or full: logging must never fail the source.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Turns on the core's logging to stderr, each line starting with `prefix`. Called by the
/// wrapper at load time when `NODE_DEBUG` names `eventsource-native`; otherwise no logger is
/// installed and `log`'s max level stays `Off`. The first prefix stays.
#[napi(catch_unwind)]
pub fn enable_logging(prefix: String) {
    let _ = LOGGER.prefix.set(prefix);
    // Fails only if a logger is installed already: this one, by an earlier call.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Trace);
}
