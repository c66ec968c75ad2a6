//! The one error type: a kind to branch on, a message for people, and the HTTP status where
//! there is one. Cheap to clone because every `error` event carries one.

use std::fmt;
use std::sync::Arc;

/// What went wrong. Stable: bindings map these to their own codes and exception classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL does not parse (the spec's `SyntaxError`). Raised by the constructor.
    InvalidUrl,
    /// An option is invalid (bad header name or value, bad method, zero size, ...). Raised by the constructor.
    InvalidOption,
    /// The URL parses but its scheme is not http or https. Fails the connection (error event, CLOSED).
    UnsupportedScheme,
    /// Could not connect: DNS, refused, reset, TLS. Reconnects.
    Connect,
    /// `connect_timeout` or `read_timeout` elapsed. Reconnects.
    Timeout,
    /// The connection broke after it was established. Reconnects.
    Network,
    /// The stream ended (the server closed the body). Reconnects.
    StreamEnded,
    /// The response status was not 200. Fails the connection; `status()` has the code.
    HttpStatus,
    /// A 200 response whose Content-Type is not `text/event-stream`. Fails the connection.
    ContentType,
    /// More than `max_redirects` redirects. Fails the connection.
    TooManyRedirects,
    /// A line or event exceeded `max_event_size`. Fails the connection.
    EventTooLarge,
    /// The source was made before a `fork()`, and this is the child: its connection stayed
    /// with the parent. The source is CLOSED here.
    Forked,
}

impl ErrorKind {
    /// A stable snake_case name, used in messages and by bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::InvalidOption => "invalid_option",
            ErrorKind::UnsupportedScheme => "unsupported_scheme",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::StreamEnded => "stream_ended",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::ContentType => "content_type",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::EventTooLarge => "event_too_large",
            ErrorKind::Forked => "forked",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What the server answered, kept on an error about a response (a fatal status or type).
#[derive(Debug)]
struct Answer {
    headers: Vec<(String, String)>,
    body: bytes::Bytes,
}

/// An error value: never a panic. See [`ErrorKind`] for which ones reconnect.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    source: Option<Source>,
    answer: Option<Arc<Answer>>,
}

impl Error {
    /// An error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), status: None, source: None, answer: None }
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn with_status(mut self, status: u16) -> Error {
        self.status = Some(status);
        self
    }

    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.source = Some(Arc::new(source));
        self
    }

    /// Keeps the response's headers (lowercase names, in order) and the first bytes of its body.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn with_answer(
        mut self,
        headers: Vec<(String, String)>,
        body: bytes::Bytes,
    ) -> Error {
        self.answer = Some(Arc::new(Answer { headers, body }));
        self
    }

    /// The same error with another message.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn with_message(mut self, message: String) -> Error {
        self.message = message;
        self
    }

    /// What went wrong, to branch on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A sentence for people that names the cause (and the fix, where there is one).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, for `HttpStatus` errors (and `ContentType`: then 200).
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The response headers (lowercase names, in the order received), for an error about a
    /// response (`HttpStatus`, `ContentType`); empty otherwise.
    pub fn headers(&self) -> &[(String, String)] {
        self.answer.as_ref().map_or(&[], |a| &a.headers)
    }

    /// The first value of the response header `name` (any case), e.g. `retry-after`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The start of the response body (at most the `max_error_body` option's bytes), for an
    /// error about a response: the server's own explanation, e.g. an API's JSON error.
    pub fn body(&self) -> Option<&[u8]> {
        self.answer.as_ref().map(|a| &a.body[..])
    }

    /// True when the source gives up after this error (the spec's "fail the connection").
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self.kind,
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Network | ErrorKind::StreamEnded
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(s) = self.status {
            d.field("status", &s);
        }
        if let Some(a) = &self.answer {
            d.field("headers", &a.headers).field("body", &String::from_utf8_lossy(&a.body));
        }
        if let Some(src) = &self.source {
            d.field("source", src);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}
