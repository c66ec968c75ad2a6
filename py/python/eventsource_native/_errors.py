"""The exception hierarchy: one base class, one subclass per failure kind."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "EventSourceError",
    "InvalidURLError",
    "InvalidOptionError",
    "UnsupportedSchemeError",
    "ConnectError",
    "HTTPStatusError",
    "ContentTypeError",
    "TooManyRedirectsError",
    "EventTooLargeError",
]


class EventSourceError(Exception):
    """A source failed for good, or could not be made.

    ``kind`` is the core's stable snake_case name (``"http_status"``, ``"content_type"``, ...),
    ``message`` a sentence naming the cause and ``status`` the HTTP status where there is one.
    """

    kind: str
    message: str
    status: Optional[int]

    def __init__(self, message: str, *, kind: str = "error", status: Optional[int] = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


class InvalidURLError(EventSourceError, ValueError):
    """The URL does not parse: the browser's ``SyntaxError``, raised by the constructor."""


class InvalidOptionError(EventSourceError, ValueError):
    """An option the core rejected (header name or value, method, ...), raised by the constructor."""


class UnsupportedSchemeError(EventSourceError):
    """The URL's scheme is not http or https."""


class ConnectError(EventSourceError):
    """Connecting or reading failed (the source reconnects after these; seen in error events)."""


class HTTPStatusError(EventSourceError):
    """The server answered with a status other than 200; ``status`` has it."""


class ContentTypeError(EventSourceError):
    """The response's Content-Type is not ``text/event-stream``."""


class TooManyRedirectsError(EventSourceError):
    """More redirects than ``max_redirects``."""


class EventTooLargeError(EventSourceError):
    """A line or event exceeded ``max_event_size``."""


_BY_KIND: dict[str, type[EventSourceError]] = {
    "invalid_url": InvalidURLError,
    "invalid_option": InvalidOptionError,
    "unsupported_scheme": UnsupportedSchemeError,
    "connect": ConnectError,
    "timeout": ConnectError,
    "network": ConnectError,
    "stream_ended": ConnectError,
    "http_status": HTTPStatusError,
    "content_type": ContentTypeError,
    "too_many_redirects": TooManyRedirectsError,
    "event_too_large": EventTooLargeError,
}


def error_from(kind: str, message: str, status: Optional[int]) -> EventSourceError:
    """The exception for a core error kind (one mapping, used everywhere)."""
    return _BY_KIND.get(kind, EventSourceError)(message, kind=kind, status=status)
