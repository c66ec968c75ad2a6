//! The request of a source, validated once when the source is made.

use std::borrow::Cow;

use bytes::Bytes;

use crate::{Error, ErrorKind, Options};

// ---------------------------------------------------------------------------------------------
// The request, validated once.

pub(super) struct RequestSpec {
    /// Static for the usual methods: every source keeps its request.
    pub(super) method: Cow<'static, str>,
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
        // Fetch normalizes these six methods' case (so `post` + a 302 becomes a GET, as POST does).
        let method = match ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]
            .into_iter()
            .find(|m| m.eq_ignore_ascii_case(&o.method))
        {
            Some(m) => Cow::Borrowed(m),
            None => Cow::Owned(o.method.clone()),
        };
        let mut headers = Vec::with_capacity(o.headers.len() + 2);
        let valid_value = |v: &str| !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b >= 0x7f);
        for (name, value) in &o.headers {
            if !is_token(name) {
                return Err(invalid(format!("invalid header name {name:?}")));
            }
            if name.eq_ignore_ascii_case("last-event-id") {
                return Err(invalid(
                    "set Last-Event-ID with the last_event_id option, not as a header".into(),
                ));
            }
            if !valid_value(value) {
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
        let has = |headers: &[(String, String)], n: &str| {
            headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n))
        };
        if let Some(ua) = &o.user_agent
            && !has(&headers, "user-agent")
        {
            if !valid_value(ua) {
                return Err(invalid(format!(
                    "invalid user_agent {ua:?}: control characters or non-ASCII are not allowed"
                )));
            }
            headers.push(("User-Agent".to_owned(), ua.clone()));
        }
        if let Some(body) = &o.body
            && !has(&headers, "content-type")
        {
            headers.push(("Content-Type".to_owned(), default_content_type(body).to_owned()));
        }
        // Most sources have no headers of their own: no allocation for them.
        headers.shrink_to_fit();
        Ok(RequestSpec { method, headers, body: o.body.clone().map(Bytes::from) })
    }
}

/// The Content-Type of a body the user gave none for: JSON when it looks like a JSON object or
/// array (what streaming APIs take), else UTF-8 text, as Fetch gives a string body.
fn default_content_type(body: &[u8]) -> &'static str {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => "application/json",
        _ => "text/plain;charset=UTF-8",
    }
}
