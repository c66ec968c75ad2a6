"""eventsource_native: a WHATWG-exact EventSource (server-sent events) client.

One Rust core (parser, connection state machine, reconnection) with a thin Python face::

    from eventsource_native import EventSource

    with EventSource("http://127.0.0.1:8080/stream") as es:
        for ev in es:
            print(ev.type, ev.data)

See ``EventSource`` for iteration, asyncio and callbacks.
"""

import logging as _logging

from ._errors import (
    ConnectError,
    ContentTypeError,
    EventSourceError,
    EventTooLargeError,
    ForkedError,
    HTTPStatusError,
    InvalidOptionError,
    InvalidURLError,
    TooManyRedirectsError,
    UnsupportedSchemeError,
)
from ._headers import Headers
from ._native import VERSION as __version__
from ._native import ErrorEvent, Event, MessageEvent
from ._source import CLOSED, CONNECTING, DEFAULT_USER_AGENT, OPEN, EventSource, Listener

__all__ = [
    "EventSource",
    "MessageEvent",
    "Event",
    "ErrorEvent",
    "Listener",
    "Headers",
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
    "ForkedError",
    "__version__",
]

# The core's log records go to this logger (see the README, "Logging"). As a library, no output
# of its own: without a configured handler nothing is printed.
_logging.getLogger("eventsource_native").addHandler(_logging.NullHandler())
