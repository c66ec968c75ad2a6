//! `es_source`: one EventSource, in callback mode or pull mode.
//!
//! Memory model. The `es_source *` handed to C is `Arc::into_raw` of a [`Source`]: the
//! caller's reference, which `es_source_free` releases. Every other entry point holds a strong
//! reference of its own for the length of the call ([`source`]), and the Rust handler that runs
//! the C callbacks holds only a `Weak`, upgraded for the duration of each batch of callbacks.
//! So `es_source_free` never pulls the source from under a call in flight (a thread blocked in
//! `es_source_next`, a callback that frees its own source): it closes the source (waking a
//! blocked `es_source_next`) and drops the caller's reference; the value goes, and `on_free`
//! runs, on the thread that lets go of the last reference (see `es_source_close` for when the
//! closing waits for a callback in flight).
//!
//! Pull mode uses the core's bounded queue; an eventfd is written by the core's notifier when
//! the queue goes non-empty or the source finishes, and re-synchronised by every
//! `es_source_next`, so the descriptor polls readable while events are waiting.

use std::collections::VecDeque;
use std::ffi::{CString, c_char, c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use eventsource_core::{
    Batch, Error, ErrorEvent, ErrorKind, Event, EventSource, Handler, MessageEvent, Options,
    ReadyState, Recv,
};

use crate::{boundary, c_str, es_options, es_status, fail};

/// A borrowed byte string: `len` bytes at `ptr`, UTF-8, NOT NUL-terminated (and it may contain
/// NUL bytes: `data: \0` is a valid event). `ptr` is never NULL in a struct the library fills
/// (it may dangle when `len` is 0). Who owns the bytes is said where the struct is handed out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct es_str {
    pub ptr: *const c_char,
    pub len: usize,
}

impl es_str {
    const EMPTY: es_str = es_str { ptr: c"".as_ptr(), len: 0 };
    pub(crate) fn of(s: &str) -> es_str {
        es_str { ptr: s.as_ptr().cast(), len: s.len() }
    }
}

/// `readyState`. Values are the spec's.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum es_ready_state {
    ES_CONNECTING = 0,
    ES_OPEN = 1,
    ES_CLOSED = 2,
}

impl From<ReadyState> for es_ready_state {
    fn from(s: ReadyState) -> Self {
        match s {
            ReadyState::Connecting => es_ready_state::ES_CONNECTING,
            ReadyState::Open => es_ready_state::ES_OPEN,
            ReadyState::Closed => es_ready_state::ES_CLOSED,
        }
    }
}

/// What went wrong, on an error event. Stable values; new kinds are added at the end
/// (`ES_ERROR_KIND_OTHER` stands for a kind newer than this header).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum es_error_kind {
    /// The URL does not parse.
    ES_ERROR_KIND_INVALID_URL = 1,
    /// An option is invalid (also: a request the HTTP client refuses to build).
    ES_ERROR_KIND_INVALID_OPTION = 2,
    /// The scheme is not http or https: the connection fails (readyState CLOSED).
    ES_ERROR_KIND_UNSUPPORTED_SCHEME = 3,
    /// Could not connect (DNS, refused, reset, TLS). Reconnects.
    ES_ERROR_KIND_CONNECT = 4,
    /// connect or read timeout. Reconnects.
    ES_ERROR_KIND_TIMEOUT = 5,
    /// The connection broke after it was established. Reconnects.
    ES_ERROR_KIND_NETWORK = 6,
    /// The server ended the stream. Reconnects.
    ES_ERROR_KIND_STREAM_ENDED = 7,
    /// The status was not 200 (`status` has it). Fatal.
    ES_ERROR_KIND_HTTP_STATUS = 8,
    /// A 200 response that is not text/event-stream. Fatal.
    ES_ERROR_KIND_CONTENT_TYPE = 9,
    /// Too many redirects. Fatal.
    ES_ERROR_KIND_TOO_MANY_REDIRECTS = 10,
    /// A line or event exceeded max_event_size. Fatal.
    ES_ERROR_KIND_EVENT_TOO_LARGE = 11,
    /// The source was made before fork() and this is the child: CLOSED here.
    ES_ERROR_KIND_FORKED = 12,
    /// A kind this version of the header does not know.
    ES_ERROR_KIND_OTHER = 255,
}

impl From<ErrorKind> for es_error_kind {
    fn from(k: ErrorKind) -> Self {
        use es_error_kind::*;
        match k {
            ErrorKind::InvalidUrl => ES_ERROR_KIND_INVALID_URL,
            ErrorKind::InvalidOption => ES_ERROR_KIND_INVALID_OPTION,
            ErrorKind::UnsupportedScheme => ES_ERROR_KIND_UNSUPPORTED_SCHEME,
            ErrorKind::Connect => ES_ERROR_KIND_CONNECT,
            ErrorKind::Timeout => ES_ERROR_KIND_TIMEOUT,
            ErrorKind::Network => ES_ERROR_KIND_NETWORK,
            ErrorKind::StreamEnded => ES_ERROR_KIND_STREAM_ENDED,
            ErrorKind::HttpStatus => ES_ERROR_KIND_HTTP_STATUS,
            ErrorKind::ContentType => ES_ERROR_KIND_CONTENT_TYPE,
            ErrorKind::TooManyRedirects => ES_ERROR_KIND_TOO_MANY_REDIRECTS,
            ErrorKind::EventTooLarge => ES_ERROR_KIND_EVENT_TOO_LARGE,
            ErrorKind::Forked => ES_ERROR_KIND_FORKED,
            _ => ES_ERROR_KIND_OTHER,
        }
    }
}

/// A static snake_case name for an error kind ("http_status", ...; "other" if unknown).
#[unsafe(no_mangle)]
pub extern "C" fn es_error_kind_str(kind: u32) -> *const c_char {
    let s: &std::ffi::CStr = match kind {
        1 => c"invalid_url",
        2 => c"invalid_option",
        3 => c"unsupported_scheme",
        4 => c"connect",
        5 => c"timeout",
        6 => c"network",
        7 => c"stream_ended",
        8 => c"http_status",
        9 => c"content_type",
        10 => c"too_many_redirects",
        11 => c"event_too_large",
        12 => c"forked",
        _ => c"other",
    };
    s.as_ptr()
}

/// A message event (type `message` or a named type). All fields are UTF-8 views.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct es_message {
    /// "message" unless the event had a non-empty `event:` field.
    pub r#type: es_str,
    /// The data, without its final LF. May contain NUL bytes.
    pub data: es_str,
    /// The source's last event ID at dispatch time ("" if none).
    pub last_event_id: es_str,
    /// Serialized origin of the final URL after redirects, e.g. "http://127.0.0.1:8080".
    pub origin: es_str,
}

impl es_message {
    const EMPTY: es_message = es_message {
        r#type: es_str::EMPTY,
        data: es_str::EMPTY,
        last_event_id: es_str::EMPTY,
        origin: es_str::EMPTY,
    };
    fn of(m: &MessageEvent) -> es_message {
        es_message {
            r#type: es_str::of(&m.event_type),
            data: es_str::of(&m.data),
            last_event_id: es_str::of(&m.last_event_id),
            origin: es_str::of(&m.origin),
        }
    }
}

/// An error event.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct es_error {
    /// `ES_CONNECTING`: the source will reconnect. `ES_CLOSED`: it failed for good.
    pub ready_state: es_ready_state,
    pub kind: es_error_kind,
    /// The HTTP status for `ES_ERROR_KIND_HTTP_STATUS` (200 for `CONTENT_TYPE`), else 0.
    pub status: u16,
    /// A sentence for people naming the cause (UTF-8 view).
    pub message: es_str,
}

impl es_error {
    const EMPTY: es_error = es_error {
        ready_state: es_ready_state::ES_CONNECTING,
        kind: es_error_kind::ES_ERROR_KIND_OTHER,
        status: 0,
        message: es_str::EMPTY,
    };
    fn of(e: &ErrorEvent) -> es_error {
        es_error {
            ready_state: e.ready_state.into(),
            kind: e.error.kind().into(),
            status: e.error.status().unwrap_or(0),
            message: es_str::of(e.error.message()),
        }
    }
}

/// Kind of a pulled event.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum es_event_kind {
    /// An empty (zeroed or cleared) `es_event`.
    ES_EVENT_NONE = 0,
    ES_EVENT_OPEN = 1,
    ES_EVENT_MESSAGE = 2,
    ES_EVENT_ERROR = 3,
}

/// An event returned by `es_source_next` (pull mode).
///
/// Ownership: the caller provides the struct (e.g. on the stack, `es_event ev = {0};`);
/// `es_source_next` fills it and the event then OWNS the memory its `es_str` fields point to,
/// until `es_event_clear(&ev)` releases it (and zeroes the struct). `es_source_next` overwrites
/// `*out` without reading it: clear an event before reusing the struct, or its memory leaks.
/// The fields stay valid after the source is closed or freed, until the event is cleared.
#[repr(C)]
pub struct es_event {
    pub kind: es_event_kind,
    /// The readyState a listener of this event observes (OPEN for open and message events).
    pub ready_state: es_ready_state,
    /// Valid when `kind == ES_EVENT_MESSAGE` (else all fields empty).
    pub message: es_message,
    /// Valid when `kind == ES_EVENT_ERROR` (else empty).
    pub error: es_error,
    /// Private: the library's storage. Do not touch.
    pub _owner: *mut c_void,
}

/// Callbacks of a callback-mode source (see `es_source_new`). Every member may be NULL.
///
/// Threads: callbacks run on one of the library's internal runtime threads (never on the
/// thread that called `es_source_new`), never concurrently for one source, in stream order.
/// Pointer arguments are borrowed for the duration of the call only: copy what you keep.
/// Inside a callback you may call any `es_` function, including `es_source_close` and
/// `es_source_free` on this very source (freeing is then deferred until the callback returns;
/// no further callback of the source runs). Do not block for long in a callback: it holds up
/// the runtime thread, and `es_source_close` from other threads waits for it. Callbacks must
/// not unwind (C++ exceptions, longjmp) out of the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct es_callbacks {
    /// Passed as the first argument of every callback. Owned by the caller; see `on_free`.
    pub user_data: *mut c_void,
    /// The connection is open (readyState OPEN).
    pub on_open: Option<unsafe extern "C" fn(user_data: *mut c_void, source: *mut es_source)>,
    /// A message of any type arrived (check `message->type`).
    pub on_message: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            source: *mut es_source,
            message: *const es_message,
        ),
    >,
    /// The connection was lost (`error->ready_state == ES_CONNECTING`: reconnecting) or failed
    /// for good (`ES_CLOSED`).
    pub on_error: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            source: *mut es_source,
            error: *const es_error,
        ),
    >,
    /// Finalizer for `user_data`: called exactly once, after the last callback, once the
    /// source is freed and no call on it is in flight. It runs on the thread that lets go of
    /// the last reference: the thread calling `es_source_free`, unless at that moment a
    /// callback of the source is still running (e.g. the one calling `es_source_free`) or
    /// another thread is inside a call on the source (e.g. `es_source_close`,
    /// `es_source_ready_state`). Then it runs on whichever of those finishes last: the runtime
    /// thread right after its callback returns, or that other thread as its call returns.
    /// Not called if `es_source_new` fails (the caller then still owns `user_data`).
    pub on_free: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// An EventSource. Opaque: made by `es_source_new`, released by `es_source_free`.
/// Thread-safe: every function taking a source may be called from any thread, also while
/// another thread frees it: a call already in progress then finishes safely (see
/// `es_source_free`).
pub struct es_source {
    _private: [u8; 0],
}

// ---------------------------------------------------------------------------------------------

struct Core {
    es: EventSource,
    url: CString,
}

struct Pull {
    fd: Arc<OwnedFd>,
    local: Mutex<VecDeque<Event>>,
    delivered: AtomicU8,
}

struct Finalizer {
    user_data: *mut c_void,
    on_free: Option<unsafe extern "C" fn(*mut c_void)>,
    armed: AtomicBool,
}

impl Drop for Finalizer {
    fn drop(&mut self) {
        if self.armed.swap(false, Ordering::AcqRel)
            && let Some(f) = self.on_free
        {
            // SAFETY: the caller's finalizer, called exactly once with its own user_data.
            unsafe { f(self.user_data) }
        }
    }
}

pub(crate) struct Source {
    // Field order is drop order: the core source is closed before the finalizer runs.
    core: OnceLock<Core>,
    closed: AtomicBool,
    started: Mutex<bool>,
    started_cv: Condvar,
    pull: Option<Pull>,
    /// The last response the caller was told about (see `es_source_response_header`).
    seen: Mutex<Seen>,
    finalizer: Finalizer,
}

/// The last response behind an event delivered to the caller: the one that opened the
/// connection (an `open` event) or a fatal one (an error event about a response). An error
/// without a response (a network error) leaves it as it was.
#[derive(Default)]
enum Seen {
    #[default]
    Nothing,
    Opened(Vec<(String, String)>),
    Failed(Error),
}

impl Seen {
    fn headers(&self) -> &[(String, String)] {
        match self {
            Seen::Nothing => &[],
            Seen::Opened(h) => h,
            Seen::Failed(e) => e.headers(),
        }
    }
}

// SAFETY: user_data is an opaque pointer handed back to the caller's callbacks, which the
// caller has declared usable from the runtime threads by creating a callback source.
unsafe impl Send for Source {}
unsafe impl Sync for Source {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Source {
    fn core(&self) -> Option<&Core> {
        self.core.get()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(c) = self.core() {
            c.es.close();
        }
        if let Some(p) = &self.pull {
            lock(&p.local).clear();
            signal(&p.fd);
        }
    }

    /// Records what an event about to be handed to the caller says about the response.
    fn saw(&self, ev: &Event) {
        match ev {
            Event::Open => {
                if let Some(c) = self.core() {
                    *lock(&self.seen) = Seen::Opened(c.es.response_headers());
                }
            }
            Event::Error(e) if e.error.body().is_some() => {
                *lock(&self.seen) = Seen::Failed(e.error.clone());
            }
            _ => {}
        }
    }

    fn wait_started(&self) {
        let mut started = lock(&self.started);
        while !*started {
            started = self.started_cv.wait(started).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn ready_state(&self) -> es_ready_state {
        if self.closed.load(Ordering::Acquire) {
            return es_ready_state::ES_CLOSED;
        }
        match (&self.pull, self.core()) {
            (Some(p), _) => state_from_u8(p.delivered.load(Ordering::Acquire)).into(),
            (None, Some(c)) => c.es.ready_state().into(),
            (None, None) => es_ready_state::ES_CONNECTING,
        }
    }
}

fn state_from_u8(v: u8) -> ReadyState {
    match v {
        0 => ReadyState::Connecting,
        1 => ReadyState::Open,
        _ => ReadyState::Closed,
    }
}

/// Makes the pull descriptor readable.
fn signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writing 8 bytes from a live u64 to an eventfd we own.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Makes the pull descriptor unreadable (non-blocking read of the counter).
fn drain(fd: &OwnedFd) {
    let mut v: u64 = 0;
    // SAFETY: reading 8 bytes into a live u64 from a non-blocking eventfd we own.
    unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
}

/// The Rust handler of a callback-mode source.
struct CHandler {
    source: Weak<Source>,
    cbs: es_callbacks,
}

// SAFETY: see `Source`: the caller's callbacks and user_data are meant for the runtime thread.
unsafe impl Send for CHandler {}

impl Handler for CHandler {
    fn on_events(&mut self, events: &mut Batch<'_>) {
        let Some(src) = self.source.upgrade() else { return };
        src.wait_started();
        let ptr = Arc::as_ptr(&src) as *mut es_source;
        let cbs = self.cbs;
        for ev in events {
            if src.closed.load(Ordering::Acquire) {
                break;
            }
            src.saw(&ev);
            // SAFETY: the caller's callbacks, with its user_data and borrowed views that live
            // until the end of the call; `src` keeps the handle alive even if the callback
            // frees it.
            unsafe {
                match &ev {
                    Event::Open => {
                        if let Some(f) = cbs.on_open {
                            f(cbs.user_data, ptr)
                        }
                    }
                    Event::Message(m) => {
                        if let Some(f) = cbs.on_message {
                            let msg = es_message::of(m);
                            f(cbs.user_data, ptr, &msg)
                        }
                    }
                    Event::Error(e) => {
                        if let Some(f) = cbs.on_error {
                            let err = es_error::of(e);
                            f(cbs.user_data, ptr, &err)
                        }
                    }
                }
            }
        }
        // If a callback freed the source, this is the last reference: the source is dropped
        // here (closing the core source from inside its handler does not wait) and on_free runs.
        drop(src);
    }
}

/// Creates a source and starts connecting at once.
///
/// - `url`: NUL-terminated UTF-8 absolute URL (copied). Parse failure or invalid UTF-8 →
///   `ES_ERR_INVALID_URL`. An unsupported scheme (e.g. ftp:) is not an error here: it arrives
///   as an error event with readyState CLOSED.
/// - `opts`: NULL for the defaults; copied, so the caller may free or reuse it right after.
///   A bad option → `ES_ERR_INVALID_OPTION` (the message names it).
/// - `cbs`: NULL makes a PULL-mode source (use `es_source_fd` / `es_source_next`); non-NULL
///   makes a CALLBACK-mode source (the struct is copied; see `es_callbacks` for threads and
///   ownership).
/// - `out`: receives the new source, owned by the caller, released by `es_source_free`.
///   Written only on success.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_new(
    url: *const c_char,
    opts: *const es_options,
    cbs: *const es_callbacks,
    out: *mut *mut es_source,
) -> es_status {
    boundary("es_source_new", es_status::ES_ERR_PANIC, || {
        if out.is_null() {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, "es_source_new: out is NULL");
        }
        let url = match unsafe { c_str(url, "es_source_new: url", es_status::ES_ERR_INVALID_URL) } {
            Ok(u) => u,
            Err(s) => return s,
        };
        // SAFETY: NULL or a live es_options (caller's contract).
        let options: Options =
            unsafe { opts.as_ref() }.map(|o| o.inner.clone()).unwrap_or_default();
        // SAFETY: NULL or a live es_callbacks.
        let cbs: Option<es_callbacks> = unsafe { cbs.as_ref() }.copied();

        let pull = if cbs.is_none() {
            // SAFETY: plain syscall.
            let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if raw < 0 {
                let e = std::io::Error::last_os_error();
                return fail(es_status::ES_ERR_IO, format!("es_source_new: eventfd failed: {e}"));
            }
            Some(Pull {
                // SAFETY: a fresh descriptor we own.
                fd: Arc::new(unsafe { OwnedFd::from_raw_fd(raw) }),
                local: Mutex::new(VecDeque::new()),
                delivered: AtomicU8::new(ReadyState::Connecting as u8),
            })
        } else {
            None
        };
        let finalizer = Finalizer {
            user_data: cbs.map_or(std::ptr::null_mut(), |c| c.user_data),
            on_free: cbs.and_then(|c| c.on_free),
            armed: AtomicBool::new(false),
        };
        let src = Arc::new(Source {
            core: OnceLock::new(),
            closed: AtomicBool::new(false),
            started: Mutex::new(false),
            started_cv: Condvar::new(),
            pull,
            seen: Mutex::default(),
            finalizer,
        });
        let made = match cbs {
            Some(cbs) => EventSource::with_handler(
                url,
                options,
                CHandler { source: Arc::downgrade(&src), cbs },
            ),
            None => EventSource::with_options(url, options),
        };
        let es = match made {
            Ok(es) => es,
            Err(e) => {
                let status = match e.kind() {
                    ErrorKind::InvalidUrl => es_status::ES_ERR_INVALID_URL,
                    _ => es_status::ES_ERR_INVALID_OPTION,
                };
                return fail(status, e.message());
            }
        };
        let url_c = CString::new(es.url()).unwrap_or_default();
        if let Some(p) = &src.pull {
            let fd = p.fd.clone();
            es.set_notify(Some(Box::new(move || signal(&fd))));
            // Events queued before the notifier was set: make the descriptor readable.
            let mut buf = Vec::new();
            es.try_recv_many(&mut buf, 256);
            if !buf.is_empty() || es.is_finished() {
                lock(&p.local).extend(buf);
                signal(&p.fd);
            }
        }
        let _ = src.core.set(Core { es, url: url_c });
        src.finalizer.armed.store(true, Ordering::Release);
        *lock(&src.started) = true;
        src.started_cv.notify_all();
        // SAFETY: checked non-NULL above.
        unsafe { *out = Arc::into_raw(src) as *mut es_source };
        es_status::ES_OK
    })
}

/// A strong reference to the Source behind a C pointer, held for the length of one call
/// (NULL → None): `es_source_free` on another thread meanwhile only drops the caller's
/// reference, and the value lives until this one is dropped.
unsafe fn source(p: *const es_source) -> Option<Arc<Source>> {
    if p.is_null() {
        return None;
    }
    let p = p.cast::<Source>();
    // SAFETY: `p` is `Arc::into_raw` from es_source_new, and the caller's reference (or the one
    // a running callback holds) is still alive as this call starts, so the count is at least 1
    // (caller's contract: no call starts after es_source_free). Valgrind checks it in the C
    // tests that free a source while calls are in flight (ffi-c/tests/c/test_ffi.c).
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// Closes the source: readyState becomes CLOSED at once, the connection and any pending
/// reconnection are dropped, queued pull events are discarded. When it returns (on a thread
/// other than the source's callback thread), no callback of this source is running or will
/// run; called from inside one of the source's callbacks it returns at once and no further
/// callback follows. Called from inside a callback of another source it waits too, unless
/// this source's callback is itself waiting in `es_source_close` (callbacks closing each
/// other's sources at the same moment): that callback then finishes after the call returns.
/// Safe more than once. Does not free: call `es_source_free` too.
/// NULL → `ES_ERR_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_close(src: *mut es_source) -> es_status {
    boundary("es_source_close", es_status::ES_ERR_PANIC, || {
        let Some(s) = (unsafe { source(src) }) else {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, "es_source_close: src is NULL");
        };
        s.close();
        es_status::ES_OK
    })
}

/// Closes (as `es_source_close`) and releases the caller's reference to the source. NULL is a
/// no-op. Calls already in progress on other threads hold the source until they return (a
/// blocked `es_source_next` returns `ES_ERR_CLOSED`); the memory is released when the last of
/// them returns, or, when freed from inside one of this source's callbacks, after that
/// callback returns. But no call on `src` may start after this one (freeing twice is undefined
/// behaviour, as with `free`): stop a thread that keeps calling, e.g. with `es_source_close`
/// and a join, before freeing. `on_free(user_data)` runs exactly once, on the thread that lets
/// go of the last reference (here, or as `es_callbacks` says).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_free(src: *mut es_source) {
    boundary("es_source_free", (), || {
        if src.is_null() {
            return;
        }
        // SAFETY: the reference es_source_new gave out, returned once (caller's contract).
        let s = unsafe { Arc::from_raw(src as *const Source) };
        s.close();
        drop(s);
    })
}

/// The readyState: CONNECTING, OPEN or CLOSED (CLOSED after `es_source_close`).
/// Callback mode: the connection's live state (inside a callback, the state of that event).
/// Pull mode: the state of the last event returned by `es_source_next` (CONNECTING before the
/// first), as a browser's `readyState` changes with the events its loop delivers.
/// NULL → `ES_CLOSED`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_ready_state(src: *const es_source) -> es_ready_state {
    boundary("es_source_ready_state", es_ready_state::ES_CLOSED, || match unsafe { source(src) } {
        Some(s) => s.ready_state(),
        None => es_ready_state::ES_CLOSED,
    })
}

/// The serialized URL the source was made with (NUL-terminated). Owned by the source: valid
/// until `es_source_free`. NULL → NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_url(src: *const es_source) -> *const c_char {
    boundary("es_source_url", std::ptr::null(), || match unsafe { source(src) } {
        Some(s) => s.core().map_or(std::ptr::null(), |c| c.url.as_ptr()),
        None => std::ptr::null(),
    })
}

/// The `withCredentials` attribute. NULL → false.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_with_credentials(src: *const es_source) -> bool {
    boundary("es_source_with_credentials", false, || {
        unsafe { source(src) }.is_some_and(|s| s.core().is_some_and(|c| c.es.with_credentials()))
    })
}

/// Pull mode: a descriptor that polls readable (POLLIN / EPOLLIN) while events are waiting for
/// `es_source_next`, and once the source is closed or failed (so a loop sees `ES_ERR_CLOSED`).
/// It may rarely be readable with nothing queued: `es_source_next(src, &ev, 0)` then returns
/// `ES_ERR_TIMEOUT`. Owned by the source (do not read, write or close it); valid until
/// `es_source_free`. Remove it from your poll set before freeing the source.
/// Returns -1 for NULL or a callback-mode source.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_fd(src: *const es_source) -> c_int {
    boundary("es_source_fd", -1, || match unsafe { source(src) } {
        Some(s) => s.pull.as_ref().map_or(-1, |p| p.fd.as_raw_fd()),
        None => -1,
    })
}

/// Pull mode: takes the next event, waiting up to `timeout_ms` milliseconds (negative: no
/// limit, 0: do not wait).
///
/// Returns `ES_OK` and fills `*out` (see `es_event` for ownership: release it with
/// `es_event_clear`), `ES_ERR_TIMEOUT` when nothing came in time, `ES_ERR_CLOSED` once the
/// source is closed or failed and every queued event was returned (the fatal error event
/// itself is returned first), `ES_ERR_WRONG_MODE` for a callback-mode source,
/// `ES_ERR_INVALID_ARGUMENT` for NULL. `*out` is written only on `ES_OK`.
/// Other threads may close or free the source meanwhile: a waiting call then returns
/// `ES_ERR_CLOSED`. Meant for one consuming thread per source: calls from several threads at
/// once are safe, but each event goes to only one of them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_next(
    src: *mut es_source,
    out: *mut es_event,
    timeout_ms: c_int,
) -> es_status {
    boundary("es_source_next", es_status::ES_ERR_PANIC, || {
        let Some(s) = (unsafe { source(src) }) else {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, "es_source_next: src is NULL");
        };
        if out.is_null() {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, "es_source_next: out is NULL");
        }
        let Some(p) = &s.pull else {
            return fail(
                es_status::ES_ERR_WRONG_MODE,
                "es_source_next: this source delivers events to its callbacks; make it with cbs = NULL to pull",
            );
        };
        let closed = || fail(es_status::ES_ERR_CLOSED, "es_source_next: the source is closed");
        let (Some(core), false) = (s.core(), s.closed.load(Ordering::Acquire)) else {
            return closed();
        };
        let es = &core.es;
        let mut local = lock(&p.local);
        if local.is_empty() {
            drain(&p.fd);
            let mut buf = Vec::new();
            es.try_recv_many(&mut buf, 256);
            local.extend(buf);
        }
        if local.is_empty() {
            if es.is_finished() {
                signal(&p.fd);
                return closed();
            }
            drop(local);
            let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
            match es.recv_timeout(timeout) {
                Recv::Event(e) => {
                    local = lock(&p.local);
                    local.push_front(e);
                }
                Recv::Timeout => {
                    return fail(es_status::ES_ERR_TIMEOUT, "es_source_next: no event in time");
                }
                Recv::Closed => {
                    signal(&p.fd);
                    return closed();
                }
            }
        }
        let Some(ev) = local.pop_front() else { return closed() };
        // Keep the descriptor readable exactly while something is waiting.
        if local.is_empty() {
            drain(&p.fd);
            let mut buf = Vec::new();
            es.try_recv_many(&mut buf, 256);
            local.extend(buf);
        }
        if !local.is_empty() || es.is_finished() {
            signal(&p.fd);
        }
        drop(local);
        if s.closed.load(Ordering::Acquire) {
            return closed();
        }
        p.delivered.store(ev.ready_state() as u8, Ordering::Release);
        s.saw(&ev);
        let owned = Box::new(ev);
        let (kind, message, error) = match &*owned {
            Event::Open => (es_event_kind::ES_EVENT_OPEN, es_message::EMPTY, es_error::EMPTY),
            Event::Message(m) => {
                (es_event_kind::ES_EVENT_MESSAGE, es_message::of(m), es_error::EMPTY)
            }
            Event::Error(e) => (es_event_kind::ES_EVENT_ERROR, es_message::EMPTY, es_error::of(e)),
        };
        let ready_state = owned.ready_state().into();
        let filled =
            es_event { kind, ready_state, message, error, _owner: Box::into_raw(owned).cast() };
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { out.write(filled) };
        es_status::ES_OK
    })
}

/// Releases what an event returned by `es_source_next` owns and zeroes it (kind
/// `ES_EVENT_NONE`), so clearing twice, or clearing a zeroed event, is harmless. NULL is a
/// no-op. Its `es_str` views are invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_event_clear(ev: *mut es_event) {
    boundary("es_event_clear", (), || {
        // SAFETY: NULL or a caller's es_event, zeroed or filled by es_source_next.
        let Some(ev) = (unsafe { ev.as_mut() }) else { return };
        let owner = std::mem::replace(&mut ev._owner, std::ptr::null_mut());
        if !owner.is_null() {
            // SAFETY: Box::into_raw of an Event in es_source_next, released once.
            drop(unsafe { Box::from_raw(owner.cast::<Event>()) });
        }
        ev.kind = es_event_kind::ES_EVENT_NONE;
        ev.ready_state = es_ready_state::ES_CONNECTING;
        ev.message = es_message::EMPTY;
        ev.error = es_error::EMPTY;
    })
}

// ---------------------------------------------------------------------------------------------
// The last response: its header fields and the body of a fatal one, copied into caller buffers
// (so nothing the library owns is lent out, and any thread may ask at any time).

/// Copies `bytes` into `buf` as `snprintf` does: at most `len - 1` bytes and a terminating NUL
/// (nothing when `len` is 0); `*len_out` (if not NULL) gets the full length.
unsafe fn copy_out(
    what: &str,
    bytes: &[u8],
    buf: *mut c_char,
    len: usize,
    len_out: *mut usize,
) -> es_status {
    if buf.is_null() && len > 0 {
        return fail(
            es_status::ES_ERR_INVALID_ARGUMENT,
            format!("{what}: buf is NULL but len is {len} (pass len 0 to ask for the length)"),
        );
    }
    if len > 0 {
        let n = bytes.len().min(len - 1);
        // SAFETY: `buf` has room for `len` bytes (caller's contract) and n + 1 <= len; the
        // source is our own memory, which cannot overlap the caller's buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    if !len_out.is_null() {
        // SAFETY: non-NULL, caller's writable size_t.
        unsafe { *len_out = bytes.len() };
    }
    es_status::ES_OK
}

/// The value of the response header `name` (ASCII case-insensitive, e.g. "retry-after"), from
/// the last response this source told you about: the one that opened the connection (readable
/// from `on_open` on, or once `es_source_next` returned the open event), or the fatal response
/// of the last error event delivered (readable from `on_error` on, or once `es_source_next`
/// returned that error). An error without a response (a network error, a reconnection) leaves
/// the previous one in place. Several fields of that name: their values joined by ", " (as
/// Fetch's `Headers.get`); `es_source_response_header_at` lists them one by one.
///
/// Copies as `snprintf` does: at most `len - 1` bytes and a NUL into `buf` (nothing when `len`
/// is 0, and then `buf` may be NULL), and sets `*len_out` (if not NULL) to the value's full
/// length: the copy is whole when `*len_out < len`; otherwise call again with a bigger buffer.
/// Returns `ES_OK`; `ES_ERR_NOT_FOUND` when there is no such header (or no response yet), and
/// then neither `buf` nor `*len_out` is touched; `ES_ERR_INVALID_ARGUMENT` for a NULL `src` or
/// `name`, invalid UTF-8 in `name`, or a NULL `buf` with `len > 0`.
///
/// Threads: any thread, any time, also from inside the source's callbacks (inside `on_open` /
/// `on_error` it describes that very event's response). The copy is taken under a lock, so it
/// is never torn; from another thread it reflects whatever event was delivered last.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_response_header(
    src: *const es_source,
    name: *const c_char,
    buf: *mut c_char,
    len: usize,
    len_out: *mut usize,
) -> es_status {
    const F: &str = "es_source_response_header";
    boundary(F, es_status::ES_ERR_PANIC, || {
        let Some(s) = (unsafe { source(src) }) else {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, format!("{F}: src is NULL"));
        };
        let name = match unsafe {
            c_str(name, "es_source_response_header: name", es_status::ES_ERR_INVALID_ARGUMENT)
        } {
            Ok(n) => n,
            Err(st) => return st,
        };
        if buf.is_null() && len > 0 {
            return fail(
                es_status::ES_ERR_INVALID_ARGUMENT,
                format!("{F}: buf is NULL but len is {len}"),
            );
        }
        let seen = lock(&s.seen);
        let mut values = seen.headers().iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let Some((_, first)) = values.next() else {
            return fail(es_status::ES_ERR_NOT_FOUND, format!("{F}: no header {name:?}"));
        };
        let rest: Vec<&str> = values.map(|(_, v)| v.as_str()).collect();
        if rest.is_empty() {
            return unsafe { copy_out(F, first.as_bytes(), buf, len, len_out) };
        }
        let joined = std::iter::once(first.as_str()).chain(rest).collect::<Vec<_>>().join(", ");
        unsafe { copy_out(F, joined.as_bytes(), buf, len, len_out) }
    })
}

/// The header field at `index` (0, 1, ...) of the same response as
/// `es_source_response_header`, in the order received: its name (lowercase) into `name_buf`
/// and its value into `value_buf`, each copied as `es_source_response_header` copies (either
/// buffer may be NULL with length 0; either `*_len_out` may be NULL). Returns `ES_OK`, or
/// `ES_ERR_NOT_FOUND` once `index` is past the last field (nothing is written), so
/// `for (i = 0; es_source_response_header_at(src, i, ...) == ES_OK; i++)` lists them all.
/// The list can change between two calls when another event is delivered meanwhile (in
/// callback mode, call it from inside the callback to read one response). Same threads and
/// errors as `es_source_response_header`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn es_source_response_header_at(
    src: *const es_source,
    index: usize,
    name_buf: *mut c_char,
    name_len: usize,
    name_len_out: *mut usize,
    value_buf: *mut c_char,
    value_len: usize,
    value_len_out: *mut usize,
) -> es_status {
    const F: &str = "es_source_response_header_at";
    boundary(F, es_status::ES_ERR_PANIC, || {
        let Some(s) = (unsafe { source(src) }) else {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, format!("{F}: src is NULL"));
        };
        for (what, buf, len) in
            [("name_buf", name_buf, name_len), ("value_buf", value_buf, value_len)]
        {
            if buf.is_null() && len > 0 {
                return fail(
                    es_status::ES_ERR_INVALID_ARGUMENT,
                    format!("{F}: {what} is NULL but its length is {len}"),
                );
            }
        }
        let seen = lock(&s.seen);
        let Some((name, value)) = seen.headers().get(index) else {
            return fail(
                es_status::ES_ERR_NOT_FOUND,
                format!("{F}: no header at index {index} ({} in all)", seen.headers().len()),
            );
        };
        // Both buffers were checked above: neither copy can fail, so nothing is half written.
        unsafe {
            copy_out(F, name.as_bytes(), name_buf, name_len, name_len_out);
            copy_out(F, value.as_bytes(), value_buf, value_len, value_len_out)
        }
    })
}

/// The start of the body of the fatal response of the last error event delivered (at most
/// `es_options_set_max_error_body` bytes, 64 KiB by default): the server's own explanation,
/// e.g. an API's JSON error. Bytes as received (not necessarily text; may contain NUL), copied
/// as `es_source_response_header` copies (`*len_out` is the kept body's full length; a body
/// may be empty). Returns `ES_ERR_NOT_FOUND` when no error about a response was delivered (a
/// source that failed on a network error, or has not failed). Same threads and errors as
/// `es_source_response_header`: inside `on_error`, or after `es_source_next` returned the
/// error, it is that error's body.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_source_error_body(
    src: *const es_source,
    buf: *mut c_char,
    len: usize,
    len_out: *mut usize,
) -> es_status {
    const F: &str = "es_source_error_body";
    boundary(F, es_status::ES_ERR_PANIC, || {
        let Some(s) = (unsafe { source(src) }) else {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, format!("{F}: src is NULL"));
        };
        if buf.is_null() && len > 0 {
            return fail(
                es_status::ES_ERR_INVALID_ARGUMENT,
                format!("{F}: buf is NULL but len is {len}"),
            );
        }
        let seen = lock(&s.seen);
        let body = match &*seen {
            Seen::Failed(e) => e.body(),
            _ => None,
        };
        match body {
            Some(b) => unsafe { copy_out(F, b, buf, len, len_out) },
            None => fail(
                es_status::ES_ERR_NOT_FOUND,
                format!("{F}: no error about a response was delivered"),
            ),
        }
    })
}
