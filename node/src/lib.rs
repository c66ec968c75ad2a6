//! `eventsource-node`: the napi-rs addon behind the `eventsource-native` npm package.
//!
//! Why it looks like this: JavaScript can create and dispatch only a few million
//! `MessageEvent`s per second, so the crossing from Rust must cost far less than that per event.
//! The addon therefore never builds one JS object per event. The source runs in the core's pull
//! mode; its notifier wakes the JS thread through one ThreadsafeFunction call whenever the
//! queue goes from empty to non-empty (calls coalesce: at most a couple are ever pending, so
//! the TSFN queue is bounded). On the JS thread, [`NativeSource::take`] drains the queue into
//! ONE JS string (all data, types, ids, origins and error messages, concatenated) plus a
//! compact word stream in a `Uint32Array` the wrapper owns: a message is a single word (where
//! its data ends in the string); the type, last event ID and origin are sent only when they
//! change. The wrapper (`index.js`) slices the string and dispatches real `MessageEvent`s.
//!
//! Keeping the process alive: the ThreadsafeFunction is strong (ref'd) while the source is
//! open or connecting, so Node waits for its events; it is released on `close()` and once the
//! source has failed and its last event was taken, so a closed source never holds the loop.
//!
//! Every export is `catch_unwind`: a panic becomes a JS exception, never an abort.

use std::sync::Arc;
use std::time::Duration;

use eventsource_core::{ErrorKind, Event, EventSource, Options, ReadyState, Text};
use napi::JsString;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// Word-stream opcodes (high bit set); a word without the high bit is a message's data end.
/// Kept in sync with `index.js`.
const OP_TYPE: u32 = 0x8000_0001;
const OP_ID: u32 = 0x8000_0002;
const OP_ORIGIN: u32 = 0x8000_0003;
const OP_OPEN: u32 = 0x8000_0004;
/// Followed by readyState, HTTP status (0: none), kind index, message end.
const OP_ERROR: u32 = 0x8000_0005;
/// Words `meta[0]` (count of words that follow the header) and `meta[1]` (1: more queued).
const HEADER: usize = 2;
/// Most words one event can take (type + id + origin changes + the message word).
const MAX_WORDS_PER_EVENT: usize = 7;
/// Most bytes of one take()'s string (unless a single event is bigger). Below V8's
/// large-object threshold (128 KiB), so the string is an ordinary young-generation object:
/// a 1 MiB string per take measured 2x slower (fresh pages, page faults). It also bounds what
/// a retained `data` slice keeps alive.
const TEXT_BUDGET: usize = 96 << 10;
/// Events moved out of the core queue at a time.
const STEP: usize = 256;

/// The stable error kind names, indexed by the kind word of `OP_ERROR`.
/// Kept in sync with `KINDS` in `index.js`.
const KINDS: [ErrorKind; 11] = [
    ErrorKind::InvalidUrl,
    ErrorKind::InvalidOption,
    ErrorKind::UnsupportedScheme,
    ErrorKind::Connect,
    ErrorKind::Timeout,
    ErrorKind::Network,
    ErrorKind::StreamEnded,
    ErrorKind::HttpStatus,
    ErrorKind::ContentType,
    ErrorKind::TooManyRedirects,
    ErrorKind::EventTooLarge,
];

fn kind_index(kind: ErrorKind) -> u32 {
    KINDS.iter().position(|k| *k == kind).map_or(u32::MAX, |i| i as u32)
}

/// The wake-up: called with no arguments on the JS thread. Strong (keeps the loop alive),
/// errors are not passed to it, and at most 2 calls are ever queued (they coalesce).
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
    pub max_event_size: Option<f64>,
    pub max_redirects: Option<u32>,
    pub proxy: Option<String>,
    pub ca_certs: Option<String>,
    pub accept_invalid_certs: Option<bool>,
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
        if let Some(n) = self.max_event_size {
            o.max_event_size = n as usize;
        }
        if let Some(n) = self.max_redirects {
            o.max_redirects = n as usize;
        }
        o.proxy = self.proxy;
        o.ca_certs = self.ca_certs.map(Into::into);
        if let Some(v) = self.accept_invalid_certs {
            o.accept_invalid_certs = v;
        }
        Ok(o)
    }
}

/// The encoder's memory of what the JS side already knows (type, id, origin), so that each is
/// sent only when it changes.
struct Known {
    event_type: Text,
    last_event_id: Text,
    origin: Text,
}

/// About how many bytes an event adds to the string.
fn text_len(ev: &Event) -> usize {
    match ev {
        Event::Open => 0,
        Event::Message(m) => m.data.len() + m.event_type.len() + m.last_event_id.len(),
        Event::Error(e) => e.error.message().len(),
    }
}

/// One take(): the concatenated string and where it is.
struct Encoder<'a> {
    text: &'a mut Vec<u8>,
    /// Length of `text` in UTF-16 code units (what JS `slice` counts).
    units: u32,
    ascii: bool,
    words: &'a mut [u32],
    len: usize,
}

impl Encoder<'_> {
    /// Appends `s` and returns where it ends, in UTF-16 units.
    fn push_str(&mut self, s: &str) -> u32 {
        self.text.extend_from_slice(s.as_bytes());
        let units = if s.is_ascii() {
            s.len()
        } else {
            self.ascii = false;
            s.chars().map(char::len_utf16).sum()
        };
        self.units += units as u32;
        self.units
    }

    fn word(&mut self, w: u32) {
        self.words[self.len] = w;
        self.len += 1;
    }

    fn field(&mut self, op: u32, known: &mut Text, value: &Text) {
        if known.as_bytes() != value.as_bytes() {
            self.word(op);
            let end = self.push_str(value);
            self.word(end);
            *known = value.clone();
        }
    }

    fn event(&mut self, known: &mut Known, event: &Event) {
        match event {
            Event::Open => self.word(OP_OPEN),
            Event::Message(m) => {
                self.field(OP_TYPE, &mut known.event_type, &m.event_type);
                self.field(OP_ID, &mut known.last_event_id, &m.last_event_id);
                self.field(OP_ORIGIN, &mut known.origin, &m.origin);
                let end = self.push_str(&m.data);
                self.word(end);
            }
            Event::Error(e) => {
                self.word(OP_ERROR);
                self.word(e.ready_state as u32);
                self.word(e.error.status().map_or(0, u32::from));
                self.word(kind_index(e.error.kind()));
                let end = self.push_str(e.error.message());
                self.word(end);
            }
        }
    }
}

/// The native half of an `EventSource`. Private: use the `EventSource` class of the package.
#[napi]
pub struct NativeSource {
    source: Option<EventSource>,
    url: String,
    with_credentials: bool,
    known: Known,
    events: Vec<Event>,
    text: Vec<u8>,
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
        let source =
            EventSource::with_options(&url, options.into_core()?).map_err(construction_error)?;
        let wake = Arc::new(wake);
        let notify = wake.clone();
        source.set_notify(Some(Box::new(move || {
            // NonBlocking: a full queue means a wake-up is already pending, and that one will
            // drain everything queued by then; dropping this one loses nothing.
            notify.call((), ThreadsafeFunctionCallMode::NonBlocking);
        })));
        // Events queued before the notifier was installed would wait for a wake-up that never
        // comes (the queue was already non-empty): wake once now.
        wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        drop(wake);
        Ok(NativeSource {
            url: source.url().to_owned(),
            with_credentials: source.with_credentials(),
            source: Some(source),
            known: Known {
                event_type: Text::from_static("message"),
                last_event_id: Text::new(),
                origin: Text::new(),
            },
            events: Vec::with_capacity(STEP),
            text: Vec::new(),
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

    /// Moves queued events out: returns the string they refer to (or `null` when nothing was
    /// queued) and writes the word stream into `meta`: `meta[0]` = number of words after the
    /// 2-word header, `meta[1]` = 1 if more events are queued (call again; no wake-up comes for
    /// them). `meta` must hold at least 64 words.
    #[napi(catch_unwind)]
    pub fn take<'env>(
        &mut self,
        env: &'env Env,
        mut meta: Uint32ArraySlice,
    ) -> Result<Option<JsString<'env>>> {
        // SAFETY: the JS thread is ours for this call and the wrapper does not alias `meta`.
        let words = unsafe { meta.as_mut() };
        if words.len() < HEADER + 8 * MAX_WORDS_PER_EVENT {
            return Err(Error::new(Status::InvalidArg, "meta is too small".to_owned()));
        }
        words[0] = 0;
        words[1] = 0;
        let Some(source) = &self.source else { return Ok(None) };
        self.text.clear();
        let capacity = words.len();
        let (head, body) = words.split_at_mut(HEADER);
        let mut enc = Encoder { text: &mut self.text, units: 0, ascii: true, words: body, len: 0 };
        // `self.events` carries what did not fit last time; it goes first.
        let mut more = false;
        loop {
            if self.events.is_empty() && source.try_recv_many(&mut self.events, STEP) == 0 {
                break;
            }
            let mut used = 0;
            for ev in &self.events {
                let fits = capacity - HEADER - enc.len >= MAX_WORDS_PER_EVENT
                    && (enc.text.is_empty() || enc.text.len() + text_len(ev) <= TEXT_BUDGET);
                if !fits {
                    break;
                }
                enc.event(&mut self.known, ev);
                used += 1;
            }
            self.events.drain(..used);
            if !self.events.is_empty() {
                more = true;
                break;
            }
        }
        head[0] = enc.len as u32;
        head[1] = more as u32;
        let (len, ascii) = (enc.len, enc.ascii);
        if source.is_finished() && self.events.is_empty() {
            // Failed (or closed) and drained: release the wake-up so the loop may exit.
            source.set_notify(None);
        }
        if len == 0 {
            return Ok(None);
        }
        let s = if ascii {
            env.create_string_latin1(&self.text)?
        } else {
            // SAFETY: every Text is UTF-8, and so is their concatenation.
            env.create_string(unsafe { std::str::from_utf8_unchecked(&self.text) })?
        };
        if self.text.capacity() > 16 * TEXT_BUDGET {
            self.text = Vec::new();
        }
        Ok(Some(s))
    }

    /// The live connection state (0, 1, 2); the wrapper exposes the state of the last
    /// delivered event instead, as the spec requires.
    #[napi(getter, catch_unwind)]
    pub fn live_state(&self) -> u32 {
        self.source.as_ref().map_or(ReadyState::Closed as u32, |s| s.ready_state() as u32)
    }

    /// Closes the source: no event is taken afterwards, the connection is dropped and the
    /// wake-up released (the process may exit). Idempotent.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.events.clear();
        if let Some(source) = self.source.take() {
            source.set_notify(None);
            source.close();
        }
    }
}

/// The core's version string.
#[napi(catch_unwind)]
pub fn native_version() -> &'static str {
    eventsource_core::VERSION
}
