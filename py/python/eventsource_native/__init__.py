"""eventsource_native: a WHATWG-exact EventSource (server-sent events) client.

One Rust core (parser, connection state machine, reconnection) with a thin Python face::

    from eventsource_native import EventSource

    with EventSource("http://127.0.0.1:8080/stream") as es:
        for ev in es:
            print(ev.type, ev.data)

See ``EventSource`` for iteration, asyncio and callbacks.
"""

from ._errors import (
    ConnectError,
    ContentTypeError,
    EventSourceError,
    EventTooLargeError,
    HTTPStatusError,
    InvalidOptionError,
    InvalidURLError,
    TooManyRedirectsError,
    UnsupportedSchemeError,
)
from ._native import VERSION as __version__
from ._native import ErrorEvent, Event, MessageEvent
from ._source import CLOSED, CONNECTING, DEFAULT_USER_AGENT, OPEN, EventSource, Listener

__all__ = [
    "EventSource",
    "MessageEvent",
    "Event",
    "ErrorEvent",
    "Listener",
    "CONNECTING",
    "OPEN",
    "CLOSED",
    "DEFAULT_USER_AGENT",
    "EventSourceError",
    "InvalidURLError",
    "InvalidOptionError",
    "UnsupportedSchemeError",
    "ConnectError",
    "HTTPStatusError",
    "ContentTypeError",
    "TooManyRedirectsError",
    "EventTooLargeError",
    "__version__",
]
