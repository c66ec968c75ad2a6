//! `es_set_log_callback`: the core's log records (`log` crate, target `eventsource_native`),
//! handed to a C function.
//!
//! One process-wide `log::Log` ([`CLogger`]) is installed on the first call. The C function and
//! its `user_data` sit behind an `RwLock`: a record holds the read side while the callback
//! runs, so `es_set_log_callback` (the write side) returns only once no call of the previous
//! callback is in flight, and its `user_data` may then be freed. A thread-local flag drops the
//! records a callback causes itself (e.g. `es_source_close` inside it logs "closed") and turns
//! a call of `es_set_log_callback` from inside the callback into an error instead of a
//! deadlock. When no callback is set, `log::max_level()` is `Off`, so the core's log macros
//! cost one relaxed load.

use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::{OnceLock, RwLock};

use crate::{boundary, es_status, es_str, fail};

/// Severity of a log record (the `log` crate's levels). Stable values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum es_log_level {
    /// As `max_level`: no records.
    ES_LOG_OFF = 0,
    /// A source failed for good (CLOSED).
    ES_LOG_ERROR = 1,
    /// A connection was lost: reconnecting, with the delay and the reason.
    ES_LOG_WARN = 2,
    /// A connection opened.
    ES_LOG_INFO = 3,
    /// Connecting, closed.
    ES_LOG_DEBUG = 4,
    /// Everything (the core itself logs nothing at this level).
    ES_LOG_TRACE = 5,
}

/// A log callback: `level` of the record, `target` (the module that logged it, e.g.
/// "eventsource_native"; dependencies such as "rustls" may log too), and `message`, a sentence
/// that starts with the source's URL. Both strings are borrowed for the call only and are not
/// NUL-terminated.
pub type es_log_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: es_log_level,
        target: es_str,
        message: es_str,
    ),
>;

struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, es_log_level, es_str, es_str),
    user_data: *mut c_void,
}

// SAFETY: `user_data` is only handed back to the caller's callback, which the caller declares
// callable from any thread by installing it (documented on `es_set_log_callback`).
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
static LOGGER: CLogger = CLogger;

thread_local! {
    /// This thread is inside the log callback.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

struct CLogger;

/// Clears `IN_CALLBACK` however the call ends.
struct InCallback;

impl Drop for InCallback {
    fn drop(&mut self) {
        IN_CALLBACK.with(|f| f.set(false));
    }
}

fn level_of(l: log::Level) -> es_log_level {
    match l {
        log::Level::Error => es_log_level::ES_LOG_ERROR,
        log::Level::Warn => es_log_level::ES_LOG_WARN,
        log::Level::Info => es_log_level::ES_LOG_INFO,
        log::Level::Debug => es_log_level::ES_LOG_DEBUG,
        log::Level::Trace => es_log_level::ES_LOG_TRACE,
    }
}

impl log::Log for CLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || IN_CALLBACK.with(|f| f.get()) {
            return;
        }
        let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = &*sink else { return };
        let message: Cow<'_, str> = match record.args().as_str() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(record.args().to_string()),
        };
        IN_CALLBACK.with(|f| f.set(true));
        let _reset = InCallback;
        // SAFETY: the caller's callback with its own user_data; the views live until it returns.
        unsafe {
            (sink.callback)(
                sink.user_data,
                level_of(record.level()),
                es_str::of(record.target()),
                es_str::of(&message),
            )
        }
    }

    fn flush(&self) {}
}

/// Sends the library's log records to `callback` (NULL: logging off, the default), for records
/// of `max_level` and more severe: one of `es_log_level` (`ES_LOG_DEBUG` gives everything the
/// core logs: connecting and closed at DEBUG, open at INFO, reconnecting with the delay and
/// the reason at WARN, failed at ERROR). Taken as a `uint32_t` so any value can be checked:
/// another value → `ES_ERR_INVALID_ARGUMENT`. Replaces the previous callback.
///
/// Threads: the callback runs on the thread that makes the record: the library's runtime
/// threads (connecting, open, reconnecting, failed) and your own threads inside
/// `es_source_close` / `es_source_free` (closed); calls may overlap on several threads, so it
/// must be thread-safe. Keep it short (it holds up the connection that logged) and let it only
/// record the message: records its own `es_` calls make on that thread are dropped, and it must
/// not call `es_set_log_callback` (that returns `ES_ERR_WRONG_MODE`) nor wait for a thread that
/// may be calling it. When this function returns, no call of the previous callback is running
/// any more and none will start, so the previous `user_data` may be freed; it waits for calls
/// in flight to get there. `user_data` is passed to every call and never freed by the library.
/// The callback must not unwind (C++ exceptions, `longjmp`) out of the call.
/// Returns `ES_ERR_WRONG_MODE` too if the process already installed another Rust `log` logger
/// (only possible when linking the Rust crate itself, not through the C library).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_set_log_callback(
    callback: es_log_callback,
    user_data: *mut c_void,
    max_level: u32,
) -> es_status {
    const F: &str = "es_set_log_callback";
    boundary(F, es_status::ES_ERR_PANIC, || {
        if IN_CALLBACK.with(|f| f.get()) {
            return fail(
                es_status::ES_ERR_WRONG_MODE,
                format!("{F}: called from inside the log callback; call it from another place"),
            );
        }
        let filter = match max_level {
            0 => log::LevelFilter::Off,
            1 => log::LevelFilter::Error,
            2 => log::LevelFilter::Warn,
            3 => log::LevelFilter::Info,
            4 => log::LevelFilter::Debug,
            5 => log::LevelFilter::Trace,
            n => {
                return fail(
                    es_status::ES_ERR_INVALID_ARGUMENT,
                    format!("{F}: max_level must be ES_LOG_OFF (0) to ES_LOG_TRACE (5), got {n}"),
                );
            }
        };
        let installed = INSTALLED.get_or_init(|| {
            log::set_logger(&LOGGER)
                .map_err(|_| format!("{F}: another Rust `log` logger is installed in this process"))
        });
        if let Err(msg) = installed {
            return fail(es_status::ES_ERR_WRONG_MODE, msg.clone());
        }
        let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
        *sink = callback.map(|callback| Sink { callback, user_data });
        log::set_max_level(if sink.is_some() { filter } else { log::LevelFilter::Off });
        es_status::ES_OK
    })
}
