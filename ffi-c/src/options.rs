//! `es_options`: an opaque builder, so the ABI can grow new options without breaking.
//! Setters only store; the values are validated by `es_source_new` (which then fails with
//! `ES_ERR_INVALID_OPTION` and a message naming the bad option).

use std::ffi::c_char;
use std::path::PathBuf;
use std::time::Duration;

use eventsource_core::{Options, TransportKind};

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
/// 10 redirects, proxy from the environment, system roots, no client certificate, the
/// "default" transport without h2c, reconnection by the default rule with no limit, the first
/// connection retried, `User-Agent: eventsource-native/<version>`, 64 KiB of an error body).
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

/// Time allowed for the response head, in milliseconds (default 30,000): a server that accepts
/// and never answers fails the attempt with `ES_ERROR_KIND_TIMEOUT`, and the source reconnects.
/// A negative value waits indefinitely.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_response_timeout_ms(
    opts: *mut es_options,
    timeout_ms: i64,
) -> es_status {
    unsafe {
        with_opts("es_options_set_response_timeout_ms", opts, |o| {
            o.response_timeout = u64::try_from(timeout_ms).ok().map(ms);
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

/// Follow a redirect from `https://` to plain `http://` (default false: such a redirect fails the
/// source with `ES_ERROR_KIND_UNSUPPORTED_SCHEME`, as it would send the request in clear text).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_allow_https_downgrade(
    opts: *mut es_options,
    allow: bool,
) -> es_status {
    unsafe {
        with_opts("es_options_set_allow_https_downgrade", opts, |o| {
            o.allow_https_downgrade = allow;
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

/// Which HTTP client carries the requests: `"default"` (reqwest: HTTP/1.1 and HTTP/2,
/// http/https/socks5 proxies) or `"lean"` (the built-in HTTP/1.1 client: the least memory and
/// CPU per source; http proxies only). ASCII case-insensitive; NUL-terminated, not kept.
/// Default "default". NULL → `ES_ERR_INVALID_ARGUMENT`; another name or invalid UTF-8 →
/// `ES_ERR_INVALID_OPTION` here (the options are then unchanged). A combination the transport
/// cannot do (e.g. "lean" with h2c or a socks5 proxy) is reported by `es_source_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_transport(
    opts: *mut es_options,
    name: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_transport", opts, |o| {
            let invalid = es_status::ES_ERR_INVALID_OPTION;
            let name = c_str(name, "es_options_set_transport: name", invalid)?;
            o.transport = name
                .parse::<TransportKind>()
                .map_err(|e| fail(invalid, format!("es_options_set_transport: {}", e.message())))?;
            Ok(())
        })
    }
}

/// Speak HTTP/2 without TLS to `http://` URLs (h2c with prior knowledge). Default false.
/// `https://` URLs negotiate HTTP/2 by ALPN anyway. Needs the "default" transport (with "lean",
/// `es_source_new` fails with `ES_ERR_INVALID_OPTION`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_http2_prior_knowledge(
    opts: *mut es_options,
    on: bool,
) -> es_status {
    unsafe {
        with_opts("es_options_set_http2_prior_knowledge", opts, |o| {
            o.http2_prior_knowledge = on;
            Ok(())
        })
    }
}

/// A client certificate for mutual TLS: `cert_path` names a PEM file with the certificate
/// (chain), `key_path` the PEM file of its private key (NULL: the key is in `cert_path`'s file).
/// Paths are NUL-terminated UTF-8, copied; the files are read by `es_source_new` (a missing or
/// bad file → `ES_ERR_INVALID_OPTION` there, naming it). Both NULL clear the certificate (the
/// default: none). `key_path` without `cert_path` → `ES_ERR_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_client_cert(
    opts: *mut es_options,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_client_cert", opts, |o| {
            let invalid = es_status::ES_ERR_INVALID_OPTION;
            if cert_path.is_null() {
                if !key_path.is_null() {
                    return Err(fail(
                        es_status::ES_ERR_INVALID_ARGUMENT,
                        "es_options_set_client_cert: key_path given without cert_path",
                    ));
                }
                o.client_cert = None;
                o.client_key = None;
                return Ok(());
            }
            let cert = c_str(cert_path, "es_options_set_client_cert: cert_path", invalid)?;
            let key = if key_path.is_null() {
                None
            } else {
                let key = c_str(key_path, "es_options_set_client_cert: key_path", invalid)?;
                Some(PathBuf::from(key))
            };
            o.client_cert = Some(PathBuf::from(cert));
            o.client_key = key;
            Ok(())
        })
    }
}

/// Whether a source reconnects (the argument of `es_options_set_reconnect`). Stable values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum es_reconnect {
    /// The default rule: a GET source reconnects as the spec says; a source with another
    /// method does not (its body is never sent twice), so any end or failure of its stream
    /// closes it (an error event with `ES_CLOSED`).
    ES_RECONNECT_DEFAULT = 0,
    /// Reconnect whatever the method (a POST body is resent on every reconnection).
    ES_RECONNECT_ALWAYS = 1,
    /// Never reconnect: an ended or failed stream closes the source (CLOSED + error).
    ES_RECONNECT_NEVER = 2,
}

/// Whether the source reconnects: one of `es_reconnect` (`ES_RECONNECT_DEFAULT` is the
/// default). Taken as a `uint32_t`, so that any value a C caller passes can be checked:
/// another value → `ES_ERR_INVALID_OPTION`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_reconnect(opts: *mut es_options, mode: u32) -> es_status {
    unsafe {
        with_opts("es_options_set_reconnect", opts, |o| {
            o.reconnect = match mode {
                m if m == es_reconnect::ES_RECONNECT_DEFAULT as u32 => None,
                m if m == es_reconnect::ES_RECONNECT_ALWAYS as u32 => Some(true),
                m if m == es_reconnect::ES_RECONNECT_NEVER as u32 => Some(false),
                m => {
                    return Err(fail(
                        es_status::ES_ERR_INVALID_OPTION,
                        format!(
                            "es_options_set_reconnect: mode must be ES_RECONNECT_DEFAULT (0), \
                             ES_RECONNECT_ALWAYS (1) or ES_RECONNECT_NEVER (2), got {m}"
                        ),
                    ));
                }
            };
            Ok(())
        })
    }
}

/// Consecutive failed attempts after which the source gives up (an error event with
/// `ES_CLOSED` that says so). A negative value (the default) sets no limit. At most
/// 4294967295, else `ES_ERR_INVALID_OPTION`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_max_reconnects(opts: *mut es_options, n: i64) -> es_status {
    unsafe {
        with_opts("es_options_set_max_reconnects", opts, |o| {
            o.max_reconnects = if n < 0 {
                None
            } else {
                Some(u32::try_from(n).map_err(|_| {
                    fail(
                        es_status::ES_ERR_INVALID_OPTION,
                        format!(
                            "es_options_set_max_reconnects: at most {} (negative: no limit), got {n}",
                            u32::MAX
                        ),
                    )
                })?)
            };
            Ok(())
        })
    }
}

/// Whether a failure of the very first connection (before any open) is retried. Default true,
/// as the spec says; false fails the source at once (an error event with `ES_CLOSED`), so a
/// wrong URL or an unreachable host is reported instead of retried.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_retry_initial(
    opts: *mut es_options,
    on: bool,
) -> es_status {
    unsafe {
        with_opts("es_options_set_retry_initial", opts, |o| {
            o.retry_initial = on;
            Ok(())
        })
    }
}

/// The `User-Agent` header (NUL-terminated UTF-8, copied). Default
/// `eventsource-native/<version>` (the version is `es_version()`); NULL sends no `User-Agent`.
/// A `User-Agent` set with `es_options_set_header` takes precedence. Invalid UTF-8 →
/// `ES_ERR_INVALID_OPTION`; a value that is not a valid header value is reported by
/// `es_source_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_user_agent(
    opts: *mut es_options,
    user_agent: *const c_char,
) -> es_status {
    unsafe {
        with_opts("es_options_set_user_agent", opts, |o| {
            o.user_agent = if user_agent.is_null() {
                None
            } else {
                let ua = c_str(
                    user_agent,
                    "es_options_set_user_agent: user_agent",
                    es_status::ES_ERR_INVALID_OPTION,
                )?;
                Some(ua.to_owned())
            };
            Ok(())
        })
    }
}

/// How many bytes of a fatal HTTP error's body are kept on the error (default 65536; 0 keeps
/// none).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn es_options_set_max_error_body(
    opts: *mut es_options,
    bytes: usize,
) -> es_status {
    unsafe {
        with_opts("es_options_set_max_error_body", opts, |o| {
            o.max_error_body = bytes;
            Ok(())
        })
    }
}
