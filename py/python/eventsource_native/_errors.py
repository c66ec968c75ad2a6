"""The exception hierarchy: one base class, one subclass per failure kind."""

from __future__ import annotations

import json as _json
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

from ._headers import Headers

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
    "ForkedError",
]


class EventSourceError(Exception):
    """A source failed for good, or could not be made.

    ``kind`` is the core's stable snake_case name (``"http_status"``, ``"content_type"``, ...),
    ``message`` a sentence naming the cause and ``status`` the HTTP status where there is one.
    An error about a response (a status other than 200, a wrong Content-Type) also carries what
    the server said: ``headers`` (a read-only, case-insensitive :class:`Headers` mapping) and
    ``body`` (the start of the response body as ``bytes``, at most ``max_error_body`` of them),
    with ``text`` and ``json()`` to read it. Without a response they are empty.
    """

    kind: str
    message: str
    status: Optional[int]
    headers: Headers
    body: bytes

    def __init__(
        self,
        message: str,
        *,
        kind: str = "error",
        status: Optional[int] = None,
        headers: Union[Mapping[str, str], Iterable[tuple[str, str]], None] = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)

    @property
    def text(self) -> str:
        """``body`` decoded as UTF-8 (invalid bytes replaced by U+FFFD)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """``body`` parsed as JSON (an API's error object, typically); raises ``ValueError``
        (``json.JSONDecodeError``) when it is not JSON."""
        return _json.loads(self.body)


class InvalidURLError(EventSourceError, ValueError):
    """The URL does not parse: the browser's ``SyntaxError``, raised by the constructor."""


class InvalidOptionError(EventSourceError, ValueError):
    """An option the core rejected (header name or value, method, ...), raised by the constructor."""


class UnsupportedSchemeError(EventSourceError):
    """The URL's scheme is not http or https."""


class ConnectError(EventSourceError):
    """Connecting or reading failed, or the stream ended: raised when the source does not
    reconnect after it (``retry_initial=False`` on the first connection, ``max_reconnects``
    reached, ``reconnect=False``, a POST stream that broke); otherwise it reconnects and the
    failure is only seen as an ``ErrorEvent``."""


class HTTPStatusError(EventSourceError):
    """The server answered with a status other than 200; ``status`` has it."""


class ContentTypeError(EventSourceError):
    """The response's Content-Type is not ``text/event-stream``."""


class TooManyRedirectsError(EventSourceError):
    """More redirects than ``max_redirects``."""


class EventTooLargeError(EventSourceError):
    """A line or event exceeded ``max_event_size``."""


class ForkedError(EventSourceError):
    """The source was made before ``os.fork()`` and this is the child process: its connection
    stayed with the parent, so here it is CLOSED. Make a new source in the child."""


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
    "forked": ForkedError,
}


def error_from(
    kind: str,
    message: str,
    status: Optional[int],
    headers: Optional[Headers] = None,
    body: bytes = b"",
) -> EventSourceError:
    """The exception for a core error kind (one mapping, used everywhere)."""
    cls = _BY_KIND.get(kind, EventSourceError)
    return cls(message, kind=kind, status=status, headers=headers, body=body)
