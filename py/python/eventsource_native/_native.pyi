"""Stub of the private native module (Rust, PyO3). Use the package's public names instead."""

from collections.abc import Iterable, Mapping
from typing import Any, AsyncIterator, Awaitable, Callable, Final, Iterator, Optional, Union, final

from ._headers import Headers

__all__ = [
    "NativeSource",
    "Notifier",
    "report_unraisable",
    "BatchSlot",
    "SyncIter",
    "AsyncIter",
    "MessageEvent",
    "Event",
    "ErrorEvent",
    "CoreError",
    "VERSION",
    "DEFAULT_USER_AGENT",
    "CONNECTING",
    "OPEN",
    "CLOSED",
]

VERSION: Final[str]
DEFAULT_USER_AGENT: Final[Optional[str]]
CONNECTING: Final[int]
OPEN: Final[int]
CLOSED: Final[int]

class CoreError(Exception): ...

@final
class MessageEvent:
    """A message event. ``type`` is ``"message"`` unless the stream named it."""

    @property
    def type(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def last_event_id(self) -> str: ...
    @property
    def origin(self) -> str: ...
    def json(self) -> Any:
        """``data`` parsed as JSON (``json.loads``); ``json.JSONDecodeError`` if it is not."""
    def __new__(
        cls,
        type: Optional[str] = None,
        *,
        data: Optional[str] = None,
        last_event_id: Optional[str] = None,
        origin: Optional[str] = None,
    ) -> MessageEvent: ...

@final
class Event:
    """The ``open`` event."""

    @property
    def type(self) -> str: ...
    def __new__(cls, type: str) -> Event: ...

@final
class ErrorEvent:
    """The ``error`` event: ``ready_state`` is CONNECTING (reconnecting) or CLOSED (gave up).
    For an error about a response, ``headers`` and ``body`` hold what the server said."""

    @property
    def type(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def status(self) -> Optional[int]: ...
    @property
    def ready_state(self) -> int: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def body(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any:
        """``body`` parsed as JSON (``json.loads``); ``ValueError`` if it is not."""
    def __new__(
        cls,
        kind: str,
        message: str,
        status: Optional[int] = None,
        ready_state: int = 2,
        *,
        headers: Union[Mapping[str, str], Iterable[tuple[str, str]], None] = None,
        body: Optional[bytes] = None,
    ) -> ErrorEvent: ...

_AnyEvent = Union[MessageEvent, Event, ErrorEvent]

@final
class NativeSource:
    def __new__(
        cls,
        url: str,
        *,
        with_credentials: bool,
        headers: list[tuple[str, str]],
        method: str,
        body: Optional[bytes],
        last_event_id: Optional[str],
        retry: float,
        max_retry: float,
        connect_timeout: Optional[float],
        read_timeout: Optional[float],
        response_timeout: Optional[float],
        max_event_size: int,
        max_redirects: int,
        allow_https_downgrade: bool,
        backoff: float,
        proxy: Optional[str],
        ca_certs: Optional[str],
        accept_invalid_certs: bool,
        client_cert: Optional[str],
        client_key: Optional[str],
        transport: str,
        http2_prior_knowledge: bool,
        reconnect: Optional[bool],
        max_reconnects: Optional[int],
        retry_initial: bool,
        user_agent: Optional[str],
        max_error_body: int,
    ) -> NativeSource: ...
    @property
    def url(self) -> str: ...
    @property
    def with_credentials(self) -> bool: ...
    @property
    def live_ready_state(self) -> int: ...
    def response_headers(self) -> Headers: ...
    def close(self) -> None: ...
    def is_finished(self) -> bool: ...
    def take(self, max: int) -> tuple[list[_AnyEvent], bool]: ...
    def next_batch(
        self, max: int, timeout: Optional[float] = None
    ) -> Optional[tuple[list[_AnyEvent], bool]]: ...
    def dispatch(
        self, max: int, table: dict[str, tuple[Callable[[Any], object], ...]], owner: object
    ) -> int: ...
    def table_changed(self) -> None: ...
    def watch(self, notifier: Notifier) -> int: ...
    def unwatch(self, token: Optional[int] = None) -> Optional[int]: ...

@final
class Notifier:
    def __new__(cls) -> Notifier: ...
    def fileno(self) -> int: ...
    def drain(self) -> list[int]: ...

def report_unraisable(exc: BaseException, obj: object) -> None: ...

@final
class BatchSlot:
    def __new__(cls) -> BatchSlot: ...
    def feed(self, batch: list[Any], /) -> Any: ...

@final
class SyncIter(Iterator[Any]):
    def __new__(cls, gen: Iterator[Any], slot: BatchSlot, /) -> SyncIter: ...
    def __next__(self) -> Any: ...
    def close(self) -> None: ...

@final
class AsyncIter(AsyncIterator[Any]):
    def __new__(cls, agen: AsyncIterator[Any], slot: BatchSlot, /) -> AsyncIter: ...
    def __anext__(self) -> Awaitable[Any]: ...
    def aclose(self) -> Awaitable[None]: ...
