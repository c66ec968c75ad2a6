//! `es_options`: an opaque builder, so the ABI can grow new options without breaking.
//! Setters only store; the values are validated by `es_source_new` (which then fails with
//! `ES_ERR_INVALID_OPTION` and a message naming the bad option).

use std::ffi::c_char;
use std::path::PathBuf;
use std::time::Duration;

use eventsource_core::Options;

use crate::{boundary, c_str, es_status, fail};

/// Options for `es_source_new`. Opaque: make it with `es_options_new`, release it with
/// `es_options_free`. Not thread-safe: do not set options from two threads at once.
pub struct es_options {
    pub(crate) inner: Options,
}

/// Runs a setter: NULL check, then `f` on the options.
unsafe fn with_opts(
    name: &str,
    opts: *mut es_options,
    f: impl FnOnce(&mut Options) -> Result<(), es_status>,
) -> es_status {
    boundary(name, es_status::ES_ERR_PANIC, || {
        // SAFETY: the caller passes NULL or a pointer from es_options_new that is not freed.
        let Some(o) = (unsafe { opts.as_mut() }) else {
            return fail(es_status::ES_ERR_INVALID_ARGUMENT, format!("{name}: opts is NULL"));
        };
        match f(&mut o.inner) {
            Ok(()) => es_status::ES_OK,
            Err(s) => s,
        }
    })
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// New options with every default of API.md (GET, retry 3000 ms, max_retry 30000 ms,
/// backoff 2.0, connect timeout 10000 ms, no read timeout, max event size 16 MiB,
/// 10 redirects, proxy from the environment, system roots).
///
/// Ownership: the caller owns the result and releases it with `es_options_free`.
/// Never returns NULL. `es_source_new` copies the options, so they may be freed (or reused
/// for another source) right after.
#[unsafe(no_mangle)]
pub extern "C" fn es_options_new() -> *mut es_options {
    boundary("es_options_new", std::ptr::null_mut(), || {
        Box::into_raw(Box::new(es_options { inner: Options::default() }))
    })
}

/// Releases options made by `es_options_new`. NULL is a no-op. Do not use `opts` afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_free(opts: *mut es_options) {
    boundary("es_options_free", (), || {
        if !opts.is_null() {
            // SAFETY: `opts` came from es_options_new and is freed once (caller's contract).
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

/// Keep a cookie jar for the source and send credentials (the `withCredentials` attribute).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_with_credentials(
    opts: *mut es_options,
    on: bool,
) -> es_status {
    unsafe {
        with_opts("es_options_set_with_credentials", opts, |o| {
            o.with_credentials = on;
            Ok(())
        })
    }
}

/// Sets an extra request header, replacing an earlier one of the same name (ASCII
/// case-insensitive). `name` and `value` are NUL-terminated UTF-8, copied; the caller keeps
/// ownership. `Accept` and `Cache-Control` are the spec's; `Last-Event-ID` must be set with
/// `es_options_set_last_event_id`. Invalid names/values are reported by `es_source_new`.
/// Returns `ES_ERR_INVALID_ARGUMENT` for NULL, `ES_ERR_INVALID_OPTION` for invalid UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_header(
    opts: *mut es_options,
    name: *const c_char,
    value: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_header", opts, |o| {
            let invalid = es_status::ES_ERR_INVALID_OPTION;
            let name = c_str(name, "es_options_set_header: name", invalid)?;
            let value = c_str(value, "es_options_set_header: value", invalid)?;
            o.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            o.headers.push((name.to_owned(), value.to_owned()));
            Ok(())
        })
    }
}

/// Removes every extra header set so far.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_clear_headers(opts: *mut es_options) -> es_status {
    unsafe {
        with_opts("es_options_clear_headers", opts, |o| {
            o.headers.clear();
            Ok(())
        })
    }
}

/// The request method (non-standard extension for POST-style streams). Default "GET".
/// NUL-terminated, copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_method(
    opts: *mut es_options,
    method: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_method", opts, |o| {
            let m =
                c_str(method, "es_options_set_method: method", es_status::ES_ERR_INVALID_OPTION)?;
            o.method = m.to_owned();
            Ok(())
        })
    }
}

/// The request body, resent on every reconnection: `len` bytes at `body` (copied; may contain
/// NUL bytes). `body` may be NULL only when `len` is 0 (an empty body). To send no body at
/// all (the default), use `es_options_clear_body`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_body(
    opts: *mut es_options,
    body: *const u8,
    len: usize,
) -> es_status {
    unsafe {
        with_opts("es_options_set_body", opts, |o| {
            if body.is_null() && len > 0 {
                return Err(fail(
                    es_status::ES_ERR_INVALID_ARGUMENT,
                    "es_options_set_body: body is NULL but len > 0",
                ));
            }
            let bytes =
                if len == 0 { Vec::new() } else { std::slice::from_raw_parts(body, len).to_vec() };
            o.body = Some(bytes);
            Ok(())
        })
    }
}

/// Sends no request body (the default).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_clear_body(opts: *mut es_options) -> es_status {
    unsafe {
        with_opts("es_options_clear_body", opts, |o| {
            o.body = None;
            Ok(())
        })
    }
}

/// The initial `Last-Event-ID` (to resume a stream). NUL-terminated UTF-8, copied; must not
/// contain CR or LF (checked by `es_source_new`). NULL clears it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_last_event_id(
    opts: *mut es_options,
    id: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_last_event_id", opts, |o| {
            o.last_event_id = if id.is_null() {
                None
            } else {
                let id = c_str(id, "last_event_id", es_status::ES_ERR_INVALID_OPTION)?;
                Some(id.to_owned())
            };
            Ok(())
        })
    }
}

/// Initial reconnection time in milliseconds (default 3000); the stream's `retry:` overrides it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_retry_ms(
    opts: *mut es_options,
    retry_ms: u64,
) -> es_status {
    unsafe {
        with_opts("es_options_set_retry_ms", opts, |o| {
            o.retry = ms(retry_ms);
            Ok(())
        })
    }
}

/// Ceiling of the backed-off reconnection delay in milliseconds (default 30000).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_max_retry_ms(
    opts: *mut es_options,
    max_retry_ms: u64,
) -> es_status {
    unsafe {
        with_opts("es_options_set_max_retry_ms", opts, |o| {
            o.max_retry = ms(max_retry_ms);
            Ok(())
        })
    }
}

/// Delay multiplier after each consecutive failed attempt (default 2.0; 1.0 disables backoff).
/// Must be finite and >= 1.0, else `ES_ERR_INVALID_OPTION` here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_backoff(opts: *mut es_options, factor: f64) -> es_status {
    unsafe {
        with_opts("es_options_set_backoff", opts, |o| {
            if !(factor.is_finite() && factor >= 1.0) {
                return Err(fail(
                    es_status::ES_ERR_INVALID_OPTION,
                    format!("backoff must be a finite number >= 1.0, got {factor}"),
                ));
            }
            o.backoff = factor;
            Ok(())
        })
    }
}

/// Time allowed to connect (TCP + TLS) in milliseconds; a negative value waits indefinitely.
/// Default 10000.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_connect_timeout_ms(
    opts: *mut es_options,
    timeout_ms: i64,
) -> es_status {
    unsafe {
        with_opts("es_options_set_connect_timeout_ms", opts, |o| {
            o.connect_timeout = u64::try_from(timeout_ms).ok().map(ms);
            Ok(())
        })
    }
}

/// No byte for this many milliseconds on an open stream → network error → reconnect.
/// A negative value (the default) disables it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_read_timeout_ms(
    opts: *mut es_options,
    timeout_ms: i64,
) -> es_status {
    unsafe {
        with_opts("es_options_set_read_timeout_ms", opts, |o| {
            o.read_timeout = u64::try_from(timeout_ms).ok().map(ms);
            Ok(())
        })
    }
}

/// Largest line or event in bytes (default 16 MiB); a bigger one fails the connection.
/// Must be at least 1 (checked by `es_source_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_max_event_size(
    opts: *mut es_options,
    bytes: usize,
) -> es_status {
    unsafe {
        with_opts("es_options_set_max_event_size", opts, |o| {
            o.max_event_size = bytes;
            Ok(())
        })
    }
}

/// Redirects followed before the connection fails (default 10).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_max_redirects(
    opts: *mut es_options,
    n: usize,
) -> es_status {
    unsafe {
        with_opts("es_options_set_max_redirects", opts, |o| {
            o.max_redirects = n;
            Ok(())
        })
    }
}

/// Proxy URL for all requests (NUL-terminated, copied). NULL restores the default: the
/// proxy from the environment (`HTTPS_PROXY`, `NO_PROXY`, ...).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_proxy(
    opts: *mut es_options,
    proxy_url: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_proxy", opts, |o| {
            o.proxy = if proxy_url.is_null() {
                None
            } else {
                Some(c_str(proxy_url, "proxy", es_status::ES_ERR_INVALID_OPTION)?.to_owned())
            };
            Ok(())
        })
    }
}

/// A PEM file of extra trusted root certificates, added to the system's (path copied; read by
/// `es_source_new`). NULL clears it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_ca_certs(
    opts: *mut es_options,
    pem_path: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_ca_certs", opts, |o| {
            o.ca_certs = if pem_path.is_null() {
                None
            } else {
                Some(PathBuf::from(c_str(pem_path, "ca_certs", es_status::ES_ERR_INVALID_OPTION)?))
            };
            Ok(())
        })
    }
}

/// Accept any TLS certificate. Dangerous: for testing only. Default false.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_accept_invalid_certs(
    opts: *mut es_options,
    on: bool,
) -> es_status {
    unsafe {
        with_opts("es_options_set_accept_invalid_certs", opts, |o| {
            o.accept_invalid_certs = on;
            Ok(())
        })
    }
}
