//! The request of a source, validated once when the source is made.

use bytes::Bytes;

use crate::{Error, ErrorKind, Options};

// ---------------------------------------------------------------------------------------------
// The request, validated once.

pub(super) struct RequestSpec {
    pub(super) method: String,
    /// The user's headers, validated (ours are added by the transport).
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Option<Bytes>,
}

/// RFC 9110 `token` (header names, methods).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl RequestSpec {
    pub(super) fn new(o: &Options) -> Result<RequestSpec, Error> {
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
