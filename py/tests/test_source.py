"""EventSource against the real testserver: events, reconnection, failures, options, close."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

from eventsource_native import (
    CLOSED,
    CONNECTING,
    OPEN,
    ContentTypeError,
    ErrorEvent,
    Event,
    EventSource,
    EventSourceError,
    HTTPStatusError,
    InvalidOptionError,
    InvalidURLError,
    MessageEvent,
)


def collect(es: EventSource, n: int, timeout: float = 10.0) -> list[Any]:
    """Registers listeners for open/message/error/named and waits for n events."""
    got: list[Any] = []
    done = threading.Event()

    def on(ev: Any) -> None:
        got.append((ev, es.ready_state))
        if len(got) >= n:
            done.set()

    es.onopen = on
    es.onmessage = on
    es.onerror = on
    assert done.wait(timeout), got
    return got


def test_the_test_transport_is_in_effect() -> None:
    # conftest: ES_TEST_TRANSPORT=lean gives every source made here transport="lean", which
    # cannot speak h2c.
    from conftest import TRANSPORT

    if TRANSPORT == "lean":
        with pytest.raises(InvalidOptionError):
            EventSource("http://127.0.0.1:9/", http2_prior_knowledge=True)
    else:
        EventSource("http://127.0.0.1:9/", http2_prior_knowledge=True).close()


def test_constants() -> None:
    assert (CONNECTING, OPEN, CLOSED) == (0, 1, 2)
    assert (EventSource.CONNECTING, EventSource.OPEN, EventSource.CLOSED) == (0, 1, 2)


def test_attributes_and_message_fields(server: Any) -> None:
    t = server.token()
    # The answer comes 300 ms late, so the source is surely still connecting when first read.
    url = server.script(t, c1="id: 7\ndata: hello\ndata: world\n\n", delay1="300")
    es = EventSource(url)
    assert es.url == url
    assert es.with_credentials is False
    assert es.ready_state == CONNECTING
    with es:
        ev = next(iter(es))
        assert isinstance(ev, MessageEvent)
        assert (ev.type, ev.data, ev.last_event_id) == ("message", "hello\nworld", "7")
        assert ev.origin == server.base
        assert es.ready_state == OPEN
    assert es.ready_state == CLOSED
    assert EventSource(server.url("x"), with_credentials=True).with_credentials is True


def test_every_event_kind_through_callbacks(server: Any) -> None:
    t = server.token()
    es = EventSource(server.script(t, c1="data: a\n\n", retry="0.1"), retry=0.05)
    got = collect(es, 4)
    es.close()
    (open_ev, s0), (msg, s1), (err, s2), (err2, s3) = got[:4]
    assert isinstance(open_ev, Event) and open_ev.type == "open" and s0 == OPEN
    assert isinstance(msg, MessageEvent) and msg.data == "a" and s1 == OPEN
    assert isinstance(err, ErrorEvent) and err.type == "error"
    assert err.kind == "stream_ended" and err.ready_state == CONNECTING and s2 == CONNECTING
    # the reconnection gets 204: fatal, CLOSED
    assert isinstance(err2, ErrorEvent)
    assert err2.status == 204 and err2.ready_state == CLOSED and s3 == CLOSED
    assert es.ready_state == CLOSED


def test_named_events_and_listeners(server: Any) -> None:
    t = server.token()
    body = "event: update\ndata: u1\n\ndata: m1\n\nevent: other\ndata: o1\n\nevent: update\ndata: u2\n\n"
    es = EventSource(server.script(t, c1=body, hold1="1"))
    updates: list[str] = []
    messages: list[str] = []
    done = threading.Event()

    def on_update(ev: Any) -> None:
        updates.append(ev.data)
        if len(updates) == 2:
            done.set()

    es.add_event_listener("update", on_update)
    es.add_event_listener("update", on_update)  # the same listener only once
    es.onmessage = lambda ev: messages.append(ev.data)
    assert done.wait(10)
    es.close()
    assert updates == ["u1", "u2"]
    assert messages == ["m1"]


def test_remove_event_listener(server: Any) -> None:
    es = EventSource(server.script(server.token(), c1="data: a\n\n", hold1="1"))
    calls: list[str] = []
    fn = lambda ev: calls.append("x")  # noqa: E731
    es.add_event_listener("message", fn)
    es.remove_event_listener("message", fn)
    es.remove_event_listener("message", fn)  # twice is fine
    seen = threading.Event()
    es.onopen = lambda ev: seen.set()
    assert seen.wait(5)
    time.sleep(0.2)
    es.close()
    assert calls == []


def test_iteration_yields_named_and_skips_open(server: Any) -> None:
    t = server.token()
    es = EventSource(server.script(t, c1="event: a\ndata: 1\n\ndata: 2\n\n"))
    with es:
        got = [(ev.type, ev.data) for ev in es]  # ends: EOF, then 204 on the reconnection
    assert got == [("a", "1"), ("message", "2")]


def test_reconnection_sends_last_event_id_and_honours_retry(server: Any) -> None:
    t = server.token()
    url = server.script(t, c1="retry: 150\nid: 42\ndata: one\n\n", c2="data: two\n\n")
    errors: list[Any] = []
    es = EventSource(url, retry=5.0)
    es.onerror = errors.append
    with es:
        got = [(ev.data, ev.last_event_id) for ev in es]
    assert got == [("one", "42"), ("two", "42")]
    log = server.log(t)
    assert len(log) == 3  # c1, c2, then 204
    assert "last-event-id" not in log[0]["headers"]
    assert log[1]["headers"]["last-event-id"] == "42"
    gap = log[1]["at_ms"] - log[0]["at_ms"]
    assert 140 <= gap < 2000, gap  # retry: 150 ms overrode the 5 s option
    assert [e.ready_state for e in errors] == [CONNECTING, CONNECTING, CLOSED]


def test_initial_last_event_id_and_headers(server: Any) -> None:
    t = server.token()
    es = EventSource(
        server.script(t, c1="data: x\n\n"),
        last_event_id="start-5",
        headers={"Authorization": "Bearer abc", "X-Test": "1"},
        method="POST",
        body="payload",
    )
    with es:
        assert [ev.data for ev in es] == ["x"]
    req = server.log(t)[0]
    assert req["method"] == "POST" and req["body"] == "payload"
    assert req["headers"]["last-event-id"] == "start-5"
    assert req["headers"]["authorization"] == "Bearer abc"
    assert req["headers"]["accept"] == "text/event-stream"


@pytest.mark.parametrize("status", ["500", "404", "301"])
def test_fatal_status_raises_from_iteration(server: Any, status: str) -> None:
    t = server.token()
    es = EventSource(server.script(t, s1=status, c1="data: x\n\n"))
    with pytest.raises(HTTPStatusError) as info:
        list(es)
    assert info.value.status == int(status)
    assert info.value.kind == "http_status"
    assert isinstance(info.value, EventSourceError)
    assert es.ready_state == CLOSED
    assert len(server.log(t)) == 1  # no reconnection


@pytest.mark.parametrize("ct", ["text/plain", "none", "application/json"])
def test_wrong_content_type_fails(server: Any, ct: str) -> None:
    t = server.token()
    es = EventSource(server.script(t, ct1=ct, c1="data: x\n\n"))
    errors: list[Any] = []
    es.onerror = errors.append
    with pytest.raises(ContentTypeError) as info:
        list(es)
    assert info.value.kind == "content_type"
    assert [e.ready_state for e in errors] == [CLOSED]
    assert len(server.log(t)) == 1


def test_content_type_with_parameters_is_accepted(server: Any) -> None:
    t = server.token()
    es = EventSource(server.script(t, ct1="text/event-stream; charset=utf-8", c1="data: x\n\n"))
    assert [ev.data for ev in es] == ["x"]


def test_unsupported_scheme_is_an_error_event_not_an_exception() -> None:
    es = EventSource("ftp://127.0.0.1/x")
    with pytest.raises(EventSourceError) as info:
        list(es)
    assert info.value.kind == "unsupported_scheme"


def test_invalid_url_is_a_value_error() -> None:
    with pytest.raises(InvalidURLError) as info:
        EventSource("http://exa mple.com:99999/")
    assert isinstance(info.value, ValueError)
    assert info.value.kind == "invalid_url"


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"retry": -1}, ValueError),
        ({"retry": float("nan")}, ValueError),
        ({"max_retry": float("inf")}, ValueError),
        ({"connect_timeout": -0.5}, ValueError),
        ({"read_timeout": float("nan")}, ValueError),
        ({"max_event_size": 0}, ValueError),
        ({"retry": "3"}, TypeError),
        ({"retry": True}, TypeError),
        ({"max_event_size": 1.5}, TypeError),
        ({"headers": "X: y"}, TypeError),
        ({"headers": {"X": 1}}, TypeError),
        ({"headers": [("X",)]}, TypeError),
        ({"method": 1}, TypeError),
        ({"body": 3}, TypeError),
        ({"last_event_id": 5}, TypeError),
        ({"with_credentials": 1}, TypeError),
        ({"headers": {"bad name": "v"}}, InvalidOptionError),
        ({"headers": {"X": "a\nb"}}, InvalidOptionError),
        ({"method": "GE T"}, InvalidOptionError),
        ({"last_event_id": "a\nb"}, InvalidOptionError),
    ],
)
def test_bad_options(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        EventSource("http://127.0.0.1:9/", **kwargs)


def test_bad_option_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        EventSource("http://127.0.0.1:9/", headers={"bad name": "v"})
    with pytest.raises(TypeError):
        EventSource(42)  # type: ignore[arg-type]


def test_listener_changes_inside_a_callback_apply_from_the_next_event(server: Any) -> None:
    # All events arrive in one chunk, so they are delivered from one native batch: a listener
    # added or removed by a listener must still count from the very next event.
    body = (
        "data: 0\n\ndata: 1\n\nevent: x\ndata: x1\n\ndata: 2\n\ndata: 3\n\n"
        "data: 4\n\nevent: x\ndata: x2\n\ndata: 5\n\n"
    )
    es = EventSource(server.script(server.token(), c1=body, hold1="1"))
    log: list[tuple[str, str]] = []
    done = threading.Event()

    def first(ev: Any) -> None:
        log.append(("first", ev.data))
        if ev.data == "1":
            es.add_event_listener("message", second)
            es.add_event_listener("x", on_x)
        elif ev.data == "3":
            es.remove_event_listener("message", first)

    def second(ev: Any) -> None:
        log.append(("second", ev.data))
        if ev.data == "4":
            es.onmessage = third

    def third(ev: Any) -> None:
        log.append(("third", ev.data))
        if ev.data == "5":
            done.set()

    def on_x(ev: Any) -> None:
        log.append(("x", ev.data))

    es.add_event_listener("message", first)
    assert done.wait(10), log
    es.close()
    assert log == [
        ("first", "0"),
        ("first", "1"),
        ("x", "x1"),
        ("first", "2"),
        ("second", "2"),
        ("first", "3"),
        ("second", "3"),
        ("second", "4"),
        ("x", "x2"),
        ("second", "5"),
        ("third", "5"),
    ]


def test_close_inside_callback_stops_delivery_at_once(server: Any) -> None:
    body = "".join(f"data: {i}\n\n" for i in range(50))
    es = EventSource(server.script(server.token(), c1=body, hold1="1"))
    got: list[str] = []
    states: list[int] = []

    def on(ev: Any) -> None:
        got.append(ev.data)
        if ev.data == "2":
            es.close()
            es.close()  # twice is fine
            states.append(es.ready_state)

    es.onmessage = on
    deadline = time.time() + 5
    while not got or got[-1] != "2":
        assert time.time() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    assert got == ["0", "1", "2"]
    assert states == [CLOSED]


def test_close_inside_iteration_stops_at_once(server: Any) -> None:
    body = "".join(f"data: {i}\n\n" for i in range(50))
    es = EventSource(server.script(server.token(), c1=body, hold1="1"))
    got = []
    for ev in es:
        got.append(ev.data)
        if ev.data == "3":
            es.close()
    assert got == ["0", "1", "2", "3"]


def test_close_from_another_thread_waits_for_the_callback(server: Any) -> None:
    es = EventSource(server.url("stream?count=0&rate=200"))
    inside = threading.Event()
    release = threading.Event()
    calls: list[float] = []

    def slow(ev: Any) -> None:
        calls.append(time.monotonic())
        inside.set()
        release.wait(5)

    es.onmessage = slow
    assert inside.wait(5)
    threading.Timer(0.3, release.set).start()
    t0 = time.monotonic()
    es.close()
    waited = time.monotonic() - t0
    assert waited >= 0.2  # close() waited for the listener in progress
    n = len(calls)
    time.sleep(0.3)
    assert len(calls) == n  # and nothing after it
    assert es.ready_state == CLOSED


def test_close_from_another_thread_ends_blocking_iteration(server: Any) -> None:
    es = EventSource(server.script(server.token(), hold1="1"))
    threading.Timer(0.3, es.close).start()
    t0 = time.monotonic()
    assert list(es) == []
    assert time.monotonic() - t0 < 3


def test_raising_callback_goes_to_unraisablehook(server: Any, monkeypatch: Any) -> None:
    import sys

    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u))
    body = "data: 1\n\ndata: 2\n\ndata: 3\n\n"
    es = EventSource(server.script(server.token(), c1=body, hold1="1"))
    got: list[str] = []
    done = threading.Event()

    def on(ev: Any) -> None:
        got.append(ev.data)
        if ev.data == "3":
            done.set()
        if ev.data == "2":
            raise RuntimeError("boom")

    es.onmessage = on
    assert done.wait(5)
    es.close()
    assert got == ["1", "2", "3"]  # the stream went on
    assert len(reported) == 1
    assert isinstance(reported[0].exc_value, RuntimeError)
    assert reported[0].object is on


def test_callbacks_run_on_one_library_thread(server: Any) -> None:
    threads: set[str] = set()
    done = threading.Event()
    sources = []
    for _ in range(3):
        es = EventSource(server.script(server.token(), c1="data: x\n\n", hold1="1"))

        def on(ev: Any) -> None:
            threads.add(threading.current_thread().name)
            if len(threads) and sum(1 for s in sources if s.ready_state == OPEN) == 3:
                done.set()

        es.onmessage = on
        sources.append(es)
    deadline = time.time() + 5
    while sum(1 for s in sources if s.ready_state == OPEN) < 3:
        assert time.time() < deadline
        time.sleep(0.01)
    for s in sources:
        s.close()
    assert threads == {"eventsource-dispatch"}


def test_onerror_while_iterating(server: Any) -> None:
    t = server.token()
    errors: list[Any] = []
    opens: list[Any] = []
    es = EventSource(server.script(t, c1="retry: 50\ndata: a\n\n", c2="data: b\n\n"))
    es.onerror = errors.append
    es.onopen = opens.append
    assert [ev.data for ev in es] == ["a", "b"]
    assert len(opens) == 2
    assert [e.kind for e in errors] == ["stream_ended", "stream_ended", "http_status"]


def test_read_timeout_reconnects(server: Any) -> None:
    t = server.token()
    es = EventSource(server.script(t, c1="data: a\n\n", hold1="1", c2="data: b\n\n"),
                     read_timeout=0.3, retry=0.05)
    errors: list[Any] = []
    es.onerror = errors.append
    assert [ev.data for ev in es] == ["a", "b"]
    assert errors[0].kind == "timeout"


def test_invalid_utf8_is_replaced(server: Any) -> None:
    import urllib.parse

    t = server.token()
    url = server.url(f"script?t={t}&c1=data%3A%20a%FFb%0A%0A")
    assert [ev.data for ev in EventSource(url)] == ["a\ufffdb"]
    _ = urllib


def test_event_too_large(server: Any) -> None:
    from eventsource_native import EventTooLargeError

    t = server.token()
    es = EventSource(server.script(t, c1="data: " + "x" * 5000 + "\n\n"), max_event_size=1024)
    with pytest.raises(EventTooLargeError):
        list(es)


def test_redirect_origin(server: Any) -> None:
    t = server.token()
    target = server.script(t, c1="data: r\n\n").replace(server.base, "")
    import urllib.parse

    url = server.url(f"redirect?code=307&to={urllib.parse.quote(target, safe='')}")
    evs = list(EventSource(url))
    assert [e.data for e in evs] == ["r"] and evs[0].origin == server.base


def test_message_event_constructor() -> None:
    ev = MessageEvent("x", data="d")
    assert (ev.type, ev.data, ev.last_event_id, ev.origin) == ("x", "d", "", "")
    assert MessageEvent(data="d") == MessageEvent("message", data="d")
    assert "MessageEvent(" in repr(ev)


@pytest.mark.parametrize("limit", [2**64 - 1, 2**64, 2**100, sys.maxsize])
def test_huge_max_event_size_means_no_limit(server: Any, limit: int) -> None:
    # A line cut across writes is carried whole: an overflowing limit once dropped its first
    # half and parsed the tail (`id: forged`) as a field of its own.
    t = server.token()
    url = server.script(t, c1="data: xid: forged\n\nid: 1\ndata: y\n\n", split1="8")
    evs = list(EventSource(url, max_event_size=limit))
    assert [(e.data, e.last_event_id) for e in evs] == [("xid: forged", ""), ("y", "1")]
