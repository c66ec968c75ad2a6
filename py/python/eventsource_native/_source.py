"""The public ``EventSource`` class: listeners, iteration and asyncio over the native source.

How events travel. The core (Rust, its own threads) queues the events of a source. Three kinds
of consumer take them out, always a whole batch per crossing into Rust:

- ``for ev in es``: ``NativeSource.next_batch`` waits with the GIL released and runs signal
  handlers every 50 ms (Ctrl-C works), then converts the batch in one go.
- ``async for ev in es``: the loop has one wake-up for all its sources (``_LoopWaker``: a native
  ``Notifier``, one descriptor, watched with ``loop.add_reader``); a source's core lists it there
  when its queue goes from empty to non-empty, so the loop wakes once per batch, with no thread
  and no descriptor per source.
- callbacks: the same, on the asyncio loop that was running when the source was made, else on
  one library thread running its own loop, shared by all sources.

The iterators are native (``_native.SyncIter`` / ``AsyncIter``): a batch of plain messages with no
listeners is handed to their ``BatchSlot`` and they yield it one C call per event; the generators
here run only to take the next batch, wait, deliver to listeners or raise.

Listeners of a source never run concurrently: whoever delivers holds ``self._lock``. While a
source is being iterated, the iterator delivers to the listeners itself and the loop-side
dispatcher stands aside.
"""

from __future__ import annotations

import asyncio
import json as _json
import math
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Callable, Final, Optional, Union

from . import _native
from ._errors import EventSourceError, error_from
from ._headers import Headers
from ._native import ErrorEvent, Event, MessageEvent

__all__ = ["EventSource", "CONNECTING", "OPEN", "CLOSED", "Listener", "DEFAULT_USER_AGENT"]

CONNECTING: Final = 0
OPEN: Final = 1
CLOSED: Final = 2

DEFAULT_USER_AGENT: Final[Optional[str]] = _native.DEFAULT_USER_AGENT
"""The ``User-Agent`` a source sends unless told otherwise: ``eventsource-native/<version>``."""

Listener = Callable[[Any], object]
"""A listener gets a ``MessageEvent``, an ``Event`` (open) or an ``ErrorEvent``."""

_BATCH = 256  # events per crossing: small enough that 1 KB events stay in cache and in reused memory
_GRACE = 0.02  # seconds between the first listener and the first delivery on the library thread

# ---------------------------------------------------------------------------------------------
# The library's dispatcher thread: one asyncio loop, started on first need, shared by all
# sources made while no loop was running.

_lib_loop: Optional[asyncio.AbstractEventLoop] = None
_lib_lock = threading.Lock()


def _library_loop() -> asyncio.AbstractEventLoop:
    global _lib_loop
    with _lib_lock:
        if _lib_loop is None:
            loop = asyncio.new_event_loop()
            t = threading.Thread(target=loop.run_forever, name="eventsource-dispatch", daemon=True)
            t.start()
            _lib_loop = loop
        return _lib_loop


def _forget_library_loop() -> None:  # after fork(): the thread is gone in the child
    global _lib_loop, _lib_lock, _wakers, _wakers_lock
    _lib_loop = None
    _lib_lock = threading.Lock()
    # The parent's loops are not the child's: their descriptors must not be read here.
    _wakers = weakref.WeakKeyDictionary()
    _wakers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_library_loop)


# ---------------------------------------------------------------------------------------------
# One wake-up per event loop.


class _LoopWaker:
    """The wake-up of one event loop, shared by every source it serves: a native ``Notifier``
    (one descriptor, read with one ``loop.add_reader``) and the callbacks of the watching
    sources by token. A drain names the sources that got events (or finished), in the order
    they got them, and each one's ``_on_readable`` runs.

    Only the loop's reader holds it (``_wakers`` maps loops to weak references): closing the
    loop drops it, and with it the sources it kept alive."""

    __slots__ = ("notifier", "callbacks", "__weakref__")

    def __init__(self) -> None:
        self.notifier = _native.Notifier()  # OSError (EMFILE) when no descriptor is left
        self.callbacks: dict[int, Callable[[], None]] = {}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:  # on the loop's thread
        if not loop.is_closed():
            loop.add_reader(self.notifier.fileno(), self._on_ready)

    def _on_ready(self) -> None:
        self._run(self.notifier.drain())

    def _run(self, tokens: list[int]) -> None:
        callbacks = self.callbacks
        for i, token in enumerate(tokens):
            cb = callbacks.get(token)
            if cb is None:
                continue  # unwatched since it was listed
            try:
                cb()
            except BaseException:
                # The rest are off the ready list already: they are looked at on the next turn.
                rest = tokens[i + 1 :]
                loop = _running_loop()
                if rest and loop is not None:
                    loop.call_soon(self._run, rest)
                raise


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[_LoopWaker]] = (
    weakref.WeakKeyDictionary()
)
_wakers_lock = threading.Lock()


def _waker_for(loop: asyncio.AbstractEventLoop) -> _LoopWaker:
    """The loop's waker, made (and its reader added, on the loop's thread) on first need.
    Raises ``OSError`` when its descriptor cannot be made."""
    with _wakers_lock:
        ref = _wakers.get(loop)
        waker = ref() if ref is not None else None
        if waker is not None:
            return waker
        waker = _LoopWaker()
        _wakers[loop] = weakref.ref(waker)
    # Until the reader holds it, the scheduled call does (and the caller).
    if _running_loop() is loop:
        waker.start(loop)
    else:
        loop.call_soon_threadsafe(waker.start, loop)
    return waker


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _wake_threadsafe(fut: asyncio.Future[None]) -> None:
    loop = fut.get_loop()
    if _running_loop() is loop:
        _wake(fut)
    else:
        try:
            loop.call_soon_threadsafe(_wake, fut)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            pass


# ---------------------------------------------------------------------------------------------
# Argument checks (TypeError for a wrong type, ValueError for a bad value).

# The largest size the native layer takes (usize); larger values mean the same.
_MAX_SIZE = (1 << 64) - 1
_MAX_U32 = (1 << 32) - 1


def _seconds(name: str, value: object, what: str = "a number of seconds") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or v < 0 or math.isinf(v):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return v


def _optional_seconds(name: str, value: object) -> Optional[float]:
    return None if value is None else _seconds(name, value, "a number of seconds or None")


def _optional_str(name: str, value: object) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")


def _headers(value: object) -> list[tuple[str, str]]:
    if value is None:
        return []
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"headers must be a mapping or an iterable of (name, value) pairs, "
            f"not {type(value).__name__}"
        )
    else:
        items = value
    out = []
    for item in items:
        try:
            name, val = item
        except (TypeError, ValueError):
            raise TypeError(f"headers: expected a (name, value) pair, got {item!r}") from None
        if not isinstance(name, str) or not isinstance(val, str):
            raise TypeError(f"headers: name and value must be str, got {item!r}")
        out.append((name, val))
    return out


def _body(value: object) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"body must be bytes, str or None, not {type(value).__name__}")


def _json_body(value: object) -> bytes:
    # Compact, UTF-8, and strict: NaN and infinities are not JSON (ValueError); an object json
    # cannot serialise raises TypeError.
    try:
        text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as e:
        raise ValueError(f"json: {e}") from None
    return text.encode("utf-8")


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _optional_bool(name: str, value: object) -> Optional[bool]:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be a bool or None, not {type(value).__name__}")


def _count(name: str, value: object, least: int = 0, most: Optional[int] = None) -> int:
    """A whole number >= `least`. Without `most`, values beyond what the native layer takes
    (usize) saturate: they mean "no practical limit"."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")
    if most is not None and value > most:
        raise ValueError(f"{name} must be at most {most}, got {value}")
    return min(value, _MAX_SIZE)


def _backoff(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"backoff must be a number, not {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not (math.isfinite(v) and v >= 1.0):
        raise ValueError(f"backoff must be a finite number >= 1.0, got {value!r}")
    return v


def _path(name: str, value: object) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise TypeError(f"{name} must be a str, an os.PathLike of str or None, not {type(value).__name__}")


def _report(exc: BaseException, listener: object) -> None:
    _native.report_unraisable(exc, listener)


class _Stop(Exception):
    """The server said 204 No Content: iteration ends normally."""


# ---------------------------------------------------------------------------------------------




class EventSource:
    """A WHATWG EventSource. Connects at once; reconnects per the spec until closed.

    ``for ev in es`` / ``async for ev in es`` yield every ``MessageEvent`` (any ``type``);
    a fatal failure raises an :class:`EventSourceError` subclass. Callbacks run on the asyncio
    loop that was running when the source was made, else on one library thread.

    Options are keyword-only (durations in seconds; see the package README for each):
    ``with_credentials``, ``headers``, ``method``, ``body`` or ``json`` (a JSON-serialisable
    value sent as the body, with ``Content-Type: application/json`` unless ``headers`` has
    one), ``last_event_id``, ``retry``, ``max_retry``, ``backoff``, ``connect_timeout``,
    ``read_timeout``, ``response_timeout``, ``max_event_size``, ``max_redirects``,
    ``allow_https_downgrade``, ``proxy``, ``ca_certs``,
    ``accept_invalid_certs``, ``client_cert``/``client_key`` (PEM files; the key may be in the
    certificate's file), ``transport`` (``"default"``: HTTP/1.1 and HTTP/2; ``"lean"``: the
    built-in HTTP/1.1 client), ``http2_prior_knowledge`` (h2c), ``reconnect`` (``None``: GET
    sources reconnect, others do not), ``max_reconnects``, ``retry_initial``, ``user_agent``
    (``None`` sends none) and ``max_error_body``. A wrong type raises ``TypeError``, a bad
    value ``ValueError`` (``InvalidOptionError`` when the core refuses it).
    """

    CONNECTING: Final = 0
    OPEN: Final = 1
    CLOSED: Final = 2

    def __init__(
        self,
        url: str,
        *,
        with_credentials: bool = False,
        headers: Union[Mapping[str, str], Iterable[tuple[str, str]], None] = None,
        method: str = "GET",
        body: Union[bytes, str, None] = None,
        last_event_id: Optional[str] = None,
        retry: float = 3.0,
        max_retry: float = 30.0,
        connect_timeout: Optional[float] = 10.0,
        read_timeout: Optional[float] = None,
        response_timeout: Optional[float] = 30.0,
        max_event_size: int = 16 << 20,
        max_redirects: int = 10,
        allow_https_downgrade: bool = False,
        backoff: float = 2.0,
        proxy: Optional[str] = None,
        ca_certs: Union[str, os.PathLike[str], None] = None,
        accept_invalid_certs: bool = False,
        client_cert: Union[str, os.PathLike[str], None] = None,
        client_key: Union[str, os.PathLike[str], None] = None,
        transport: str = "default",
        http2_prior_knowledge: bool = False,
        reconnect: Optional[bool] = None,
        max_reconnects: Optional[int] = None,
        retry_initial: bool = True,
        user_agent: Optional[str] = DEFAULT_USER_AGENT,
        max_error_body: int = 64 << 10,
        json: Any = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, not {type(method).__name__}")
        if not isinstance(transport, str):
            raise TypeError(f"transport must be a str, not {type(transport).__name__}")
        header_list = _headers(headers)
        if json is not None:
            if body is not None:
                raise TypeError("give either body or json, not both")
            body = _json_body(json)
            if not any(name.lower() == "content-type" for name, _ in header_list):
                header_list.append(("Content-Type", "application/json"))
        # Everything the finalizer and close() touch exists before anything can raise below.
        self._closed = False
        self._reader_loop: Optional[asyncio.AbstractEventLoop] = None
        try:
            native = _native.NativeSource(
                url,
                with_credentials=_bool("with_credentials", with_credentials),
                headers=header_list,
                method=method,
                body=_body(body),
                last_event_id=_optional_str("last_event_id", last_event_id),
                retry=_seconds("retry", retry),
                max_retry=_seconds("max_retry", max_retry),
                connect_timeout=_optional_seconds("connect_timeout", connect_timeout),
                read_timeout=_optional_seconds("read_timeout", read_timeout),
                response_timeout=_optional_seconds("response_timeout", response_timeout),
                # Any limit beyond what memory can hold means "no limit": saturate.
                max_event_size=_count("max_event_size", max_event_size, least=1),
                max_redirects=_count("max_redirects", max_redirects),
                allow_https_downgrade=_bool("allow_https_downgrade", allow_https_downgrade),
                backoff=_backoff(backoff),
                proxy=_optional_str("proxy", proxy),
                ca_certs=_path("ca_certs", ca_certs),
                accept_invalid_certs=_bool("accept_invalid_certs", accept_invalid_certs),
                client_cert=_path("client_cert", client_cert),
                client_key=_path("client_key", client_key),
                transport=transport,
                http2_prior_knowledge=_bool("http2_prior_knowledge", http2_prior_knowledge),
                reconnect=_optional_bool("reconnect", reconnect),
                max_reconnects=(
                    None
                    if max_reconnects is None
                    else _count("max_reconnects", max_reconnects, most=_MAX_U32)
                ),
                retry_initial=_bool("retry_initial", retry_initial),
                user_agent=_optional_str("user_agent", user_agent),
                max_error_body=_count("max_error_body", max_error_body),
            )
        except _native.CoreError as e:
            raise error_from(*e.args) from None
        self._native = native
        # Whether the source reconnects after its stream ends (the core's rule): if not, that
        # end is the normal end of an iteration.
        self._reconnects = reconnect if reconnect is not None else method.upper() == "GET"
        self._loop = _running_loop()  # where callbacks run (None: the library thread)
        self._ready_state = CONNECTING
        self._observed = False  # a consumer exists: report the delivered state
        self._listeners: dict[str, list[tuple[Listener, bool]]] = {}
        # What delivery reads: type -> the listeners' callables, rebuilt on every change (a
        # tuple, so a change made by a listener takes effect from the next event).
        self._table: dict[str, tuple[Listener, ...]] = {}
        self._handlers: dict[str, Optional[Listener]] = {"open": None, "message": None, "error": None}
        self._lock = threading.Lock()  # held while delivering
        self._dispatch_ident: Optional[int] = None
        self._iterating = 0
        self._waiter: Optional[asyncio.Future[None]] = None
        self._batch: Optional[list[Any]] = None  # the batch an iterator is yielding from

    # --- attributes ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The serialized URL (unchanged by redirects)."""
        return self._native.url

    @property
    def with_credentials(self) -> bool:
        return self._native.with_credentials

    @property
    def response_headers(self) -> Headers:
        """The header fields of the response that opened the current (or last) connection: a
        read-only mapping with case-insensitive names (see :class:`Headers`). Set before
        ``open`` is delivered, so an ``onopen`` listener (or the loop once the first message is
        yielded) reads them; empty before the first open."""
        return self._native.response_headers()

    @property
    def ready_state(self) -> int:
        """CONNECTING (0), OPEN (1) or CLOSED (2), as of the last delivered event."""
        if self._closed:
            return CLOSED
        if self._observed:
            return self._ready_state
        return self._native.live_ready_state

    def __repr__(self) -> str:
        return f"<EventSource {self.url!r} ready_state={self.ready_state}>"

    # --- listeners ----------------------------------------------------------------------------

    def _set_handler(self, kind: str, fn: Optional[Listener]) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"on{kind} must be callable or None, not {type(fn).__name__}")
        old = self._handlers[kind]
        self._handlers[kind] = fn
        lst = self._listeners.setdefault(kind, [])
        idx = next((i for i, (f, attr) in enumerate(lst) if attr), None)
        if fn is None:
            if idx is not None:
                del lst[idx]
        elif idx is not None and old is not None:
            lst[idx] = (fn, True)  # keeps its place, as an event handler attribute does
        else:
            lst.append((fn, True))
        self._update_table(kind)
        if fn is not None:
            self._start_dispatch()

    @property
    def onopen(self) -> Optional[Listener]:
        return self._handlers["open"]

    @onopen.setter
    def onopen(self, fn: Optional[Listener]) -> None:
        self._set_handler("open", fn)

    @property
    def onmessage(self) -> Optional[Listener]:
        return self._handlers["message"]

    @onmessage.setter
    def onmessage(self, fn: Optional[Listener]) -> None:
        self._set_handler("message", fn)

    @property
    def onerror(self) -> Optional[Listener]:
        return self._handlers["error"]

    @onerror.setter
    def onerror(self, fn: Optional[Listener]) -> None:
        self._set_handler("error", fn)

    def add_event_listener(self, type: str, listener: Listener) -> None:
        """Calls ``listener(event)`` for every event of ``type`` (once per listener)."""
        if not isinstance(type, str):
            raise TypeError(f"type must be a str, not {type.__class__.__name__}")
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {listener.__class__.__name__}")
        lst = self._listeners.setdefault(type, [])
        if not any(f == listener and not attr for f, attr in lst):
            lst.append((listener, False))
        self._update_table(type)
        self._start_dispatch()

    def remove_event_listener(self, type: str, listener: Listener) -> None:
        lst = self._listeners.get(type)
        if lst:
            for i, (f, attr) in enumerate(lst):
                if f == listener and not attr:
                    del lst[i]
                    break
            self._update_table(type)

    def _update_table(self, type: str) -> None:
        lst = self._listeners.get(type)
        if lst:
            self._table[type] = tuple(f for f, _ in lst)
        else:
            self._table.pop(type, None)
        self._native.table_changed()  # NativeSource.dispatch caches lookups until told

    def _has_listeners(self) -> bool:
        return bool(self._table)

    # --- delivery -----------------------------------------------------------------------------

    def _deliver(self, ev: Any) -> None:
        """Updates ready_state and calls the listeners of one event (self._lock held)."""
        if ev.__class__ is ErrorEvent:
            self._ready_state = ev.ready_state
        else:
            self._ready_state = OPEN
        for fn in self._table.get(ev.type, ()):
            try:
                fn(ev)
            except Exception as exc:  # noqa: BLE001 - reported, the stream goes on
                _report(exc, fn)
            if self._closed:
                return

    def _deliver_locked(self, ev: Any) -> None:
        me = threading.get_ident()
        if self._dispatch_ident == me:  # nested (a listener iterating its own source)
            self._deliver(ev)
            return
        with self._lock:
            if self._closed:
                return
            self._dispatch_ident = me
            try:
                self._deliver(ev)
            finally:
                self._dispatch_ident = None

    def _start_dispatch(self) -> None:
        """Makes sure the source is watched by the callback loop's waker."""
        self._observed = True
        if self._closed or self._reader_loop is not None:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = _library_loop()
        self._watch(loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        # The waker first: if its descriptor cannot be made, nothing is left half-set.
        waker = _waker_for(loop)
        self._reader_loop = loop
        if _running_loop() is loop:
            self._register(loop, waker)
        elif loop is _lib_loop:
            # Listeners are attached one statement at a time on the user's thread while this
            # thread may already run: a short grace lets `es.onopen = f; es.onmessage = g` both
            # see the first events, as they would in a browser.
            loop.call_soon_threadsafe(loop.call_later, _GRACE, self._register, loop, waker)
        else:
            loop.call_soon_threadsafe(self._register, loop, waker)

    def _register(self, loop: asyncio.AbstractEventLoop, waker: _LoopWaker) -> None:
        """On the loop's thread: the waker calls `_on_readable` whenever events come."""
        if self._closed or self._reader_loop is not loop:
            return
        token = self._native.watch(waker.notifier)
        waker.callbacks[token] = self._on_readable
        if self._closed or self._reader_loop is not loop:  # unwatched meanwhile, elsewhere
            waker.callbacks.pop(token, None)
            self._native.unwatch(token)

    def _unwatch(self) -> None:
        """Any thread; idempotent."""
        loop, self._reader_loop = self._reader_loop, None
        token = self._native.unwatch()
        if token is not None and loop is not None:
            ref = _wakers.get(loop)
            waker = ref() if ref is not None else None
            if waker is not None:
                waker.callbacks.pop(token, None)

    def _on_readable(self) -> None:
        """The source has events (or finished): wake an `async for`, or run the callbacks."""
        w = self._waiter
        if w is not None:
            self._waiter = None
            _wake_threadsafe(w)
            return
        if not self._iterating and not self._closed and self._has_listeners():
            self._pump()

    def _pump(self) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._iterating or self._closed:
                return
            self._dispatch_ident = me
            try:
                # Takes a batch and calls the listeners in native code (see
                # NativeSource.dispatch); stops at once when a listener closes the source.
                taken = self._native.dispatch(_BATCH, self._table, self)
            finally:
                self._dispatch_ident = None
        if taken == _BATCH and self._reader_loop is not None:
            # More may be queued and no wake-up will come for it: continue on the next turn.
            self._reader_loop.call_soon(self._on_readable)
        elif self._native.is_finished() and not self._iterating:
            self._unwatch()

    # --- close --------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the source: CLOSED at once, no event delivered afterwards.

        Safe from any thread, from inside a listener, and more than once. From another thread it
        waits for a listener call in progress to return.
        """
        self._closed = True
        native = getattr(self, "_native", None)
        if native is None:
            return
        native.close()
        b = self._batch
        if b is not None:
            b.clear()  # an iterator yielding from this batch stops at once
        if self._dispatch_ident != threading.get_ident():
            with self._lock:  # wait for a listener call on another thread
                pass
        w = self._waiter
        if w is not None:
            self._waiter = None
            _wake_threadsafe(w)
        self._unwatch()

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> EventSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # --- iteration ----------------------------------------------------------------------------

    def _slow_path(self, ev: Any) -> bool:
        """Delivers one event to the listeners; True if it is a message to yield. Raises for a
        fatal error, except the two normal ends, which end iteration: 204 No Content (the
        server's "stop") and a stream the server ended when the source does not reconnect
        (``reconnect=False``, or a method other than GET by default: the end of a POST stream
        is the end of its answer). A reconnecting source that gives up (``max_reconnects``)
        raises, whatever ended its last stream."""
        self._deliver_locked(ev)
        if ev.__class__ is MessageEvent:
            return True
        if ev.__class__ is ErrorEvent and ev.ready_state == CLOSED and not self._closed:
            if (ev.kind == "http_status" and ev.status == 204) or (
                ev.kind == "stream_ended" and not self._reconnects
            ):
                raise _Stop
            raise error_from(ev.kind, ev.message, ev.status, ev.headers, ev.body)
        return False

    def __iter__(self) -> Iterator[MessageEvent]:
        """Yields message events until the source is closed or fails.

        Blocks with the GIL released; Ctrl-C raises KeyboardInterrupt promptly.
        """
        # A native iterator hands out a batch of messages itself (one C call per event); the
        # generator takes batches, delivers to listeners and raises errors.
        slot = _native.BatchSlot()
        return _native.SyncIter(self._iter(slot), slot)

    def _iter(self, slot: _native.BatchSlot) -> Iterator[Any]:
        self._iterating += 1
        self._observed = True
        try:
            native = self._native
            while not self._closed:
                got = native.next_batch(_BATCH)
                if got is None:
                    return
                batch, only_messages = got
                if only_messages and not self._has_listeners():
                    self._ready_state = OPEN
                    self._batch = batch
                    # The iterator hands out batch[1:]; close() empties `batch`, which stops it.
                    first = slot.feed(batch)
                    if first is not None:
                        yield first
                    continue
                for ev in batch:
                    if self._closed:
                        return
                    try:
                        if not self._slow_path(ev):
                            continue
                    except _Stop:
                        return
                    yield ev
        finally:
            self._batch = None
            self._iterating -= 1
            self._after_iteration()

    def __aiter__(self) -> AsyncIterator[MessageEvent]:
        """Yields message events on the running asyncio loop (no thread per source)."""
        # As __iter__: a native iterator hands out a batch of messages (an already-completed
        # awaitable per event); the async generator takes batches, waits, delivers to listeners.
        slot = _native.BatchSlot()
        return _native.AsyncIter(self._aiter(slot), slot)

    async def _aiter(self, slot: _native.BatchSlot) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        self._iterating += 1
        self._observed = True
        try:
            native = self._native
            if self._reader_loop is None and not self._closed:
                self._watch(loop)
            while not self._closed:
                batch, only_messages = native.take(_BATCH)
                if not batch:
                    if native.is_finished():
                        return
                    fut: asyncio.Future[None] = loop.create_future()
                    self._waiter = fut
                    # Re-check: a dispatcher on another loop may have looked already.
                    batch, only_messages = native.take(_BATCH)
                    if not batch:
                        try:
                            await fut
                        finally:
                            if self._waiter is fut:
                                self._waiter = None
                        continue
                    self._waiter = None
                if only_messages and not self._has_listeners():
                    self._ready_state = OPEN
                    self._batch = batch
                    # The iterator hands out batch[1:]; close() empties `batch`, which stops it.
                    first = slot.feed(batch)
                    if first is not None:
                        yield first
                    continue
                for ev in batch:
                    if self._closed:
                        return
                    try:
                        if not self._slow_path(ev):
                            continue
                    except _Stop:
                        return
                    yield ev
        finally:
            self._batch = None
            self._iterating -= 1
            self._after_iteration()

    def _after_iteration(self) -> None:
        if self._iterating or self._closed:
            return
        loop = self._reader_loop
        if loop is None:
            return
        if self._has_listeners():
            # Events left in the queue will not wake anyone: let the dispatcher look.
            try:
                loop.call_soon_threadsafe(self._on_readable)
            except RuntimeError:
                pass
        else:
            self._unwatch()  # nobody to deliver to: leave the events queued


__all__ += ["EventSourceError", "Event", "ErrorEvent", "MessageEvent"]
