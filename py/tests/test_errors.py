"""What the server said, on errors and on open: status, headers (a case-insensitive mapping) and
the start of the body, on the exception an iteration raises and on the ErrorEvent; the headers
of the response that opened the connection."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from typing import Any

import pytest

from conftest import Server
from eventsource_native import (
    CLOSED,
    CONNECTING,
    ErrorEvent,
    EventSource,
    EventSourceError,
    Headers,
    HTTPStatusError,
)

OPENAI_401 = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}


def api_error(server: Server, status: str, header: str, body: str, **extra: str) -> str:
    return server.script(
        server.token("api"), s1=status, ct1="application/json", hdr1=header, c1=body, **extra
    )


def test_json_401_on_the_exception_and_the_error_event(server: Server) -> None:
    url = api_error(server, "401", "x-request-id: req_123", json.dumps(OPENAI_401))
    es = EventSource(url)
    errors: list[ErrorEvent] = []
    es.onerror = errors.append
    with pytest.raises(HTTPStatusError) as info:
        for _ in es:
            pass
    e = info.value
    assert (e.kind, e.status) == ("http_status", 401)
    assert e.headers["X-Request-Id"] == "req_123"
    assert e.headers.get("x-request-id") == "req_123"
    assert "CONTENT-TYPE" in e.headers and e.headers["content-type"] == "application/json"
    assert e.body == json.dumps(OPENAI_401).encode()
    assert e.json() == OPENAI_401
    assert e.text == json.dumps(OPENAI_401)
    assert e.json()["error"]["message"] == "Incorrect API key provided"
    (ev,) = errors
    assert (ev.ready_state, ev.status, ev.kind) == (CLOSED, 401, "http_status")
    assert ev.headers["x-request-id"] == "req_123"
    assert ev.body == e.body and ev.json() == OPENAI_401 and ev.text == e.text
    assert isinstance(ev.headers, Headers) and isinstance(e.headers, Headers)


def test_json_401_through_callbacks_only(server: Server) -> None:
    url = api_error(server, "401", "x-request-id: req_cb", json.dumps(OPENAI_401))
    got: list[ErrorEvent] = []
    done = threading.Event()

    def on_error(ev: ErrorEvent) -> None:
        got.append(ev)
        done.set()

    es = EventSource(url)
    es.onerror = on_error
    assert done.wait(10)
    es.close()
    assert got[0].headers["X-REQUEST-ID"] == "req_cb"
    assert got[0].json() == OPENAI_401


def test_429_retry_after_async(server: Server) -> None:
    url = api_error(server, "429", "Retry-After: 7", "{}")

    async def main() -> EventSourceError:
        with pytest.raises(HTTPStatusError) as info:
            async with EventSource(url) as es:
                async for _ in es:
                    pass
        return info.value

    e = asyncio.run(main())
    assert e.status == 429
    assert e.headers["retry-after"] == "7"
    assert int(e.headers["Retry-After"]) == 7
    assert e.body == b"{}" and e.json() == {}


def test_max_error_body_caps_the_body(server: Server) -> None:
    url = api_error(server, "401", "x-a: 1", json.dumps(OPENAI_401))
    with pytest.raises(HTTPStatusError) as info:
        list(EventSource(url, max_error_body=10))
    assert info.value.body == json.dumps(OPENAI_401).encode()[:10]
    with pytest.raises(json.JSONDecodeError):
        info.value.json()
    url = api_error(server, "401", "x-a: 1", json.dumps(OPENAI_401))  # a fresh token
    with pytest.raises(HTTPStatusError) as info:
        list(EventSource(url, max_error_body=0))
    assert info.value.body == b"" and info.value.text == ""
    assert info.value.headers["x-a"] == "1"  # the headers are kept whatever the body


def test_repeated_header_fields(server: Server) -> None:
    url = server.url(
        f"script?t={server.token()}&s1=503&hdr1=X-Multi%3A%20a&hdr1=x-multi%3A%20b&c1=down"
    )
    with pytest.raises(HTTPStatusError) as info:
        list(EventSource(url))
    h = info.value.headers
    assert h["x-multi"] == "a, b"
    assert h.get_list("X-Multi") == ["a", "b"]
    assert [f for f in h.multi_items() if f[0] == "x-multi"] == [("x-multi", "a"), ("x-multi", "b")]
    assert list(h).count("x-multi") == 1
    assert info.value.text == "down"


def test_headers_readable_on_open_and_while_iterating(server: Server) -> None:
    url = server.script(
        server.token(), hdr1="X-Custom: abc", c1="data: x\n\n", hold1="1"
    )
    assert EventSource("http://127.0.0.1:1/").response_headers == {}  # before any open
    es = EventSource(url)
    seen: list[Any] = []
    opened = threading.Event()

    def on_open(ev: Any) -> None:
        seen.append(es.response_headers)
        opened.set()

    es.onopen = on_open
    assert opened.wait(10)
    es.close()
    assert seen[0]["x-custom"] == "abc"
    assert seen[0]["Content-Type"] == "text/event-stream"
    with EventSource(url.replace("X-Custom", "X-Other")) as es2:
        for _ in es2:
            assert es2.response_headers["x-other"] == "abc"
            break


def test_errors_without_a_response_carry_nothing(server: Server) -> None:
    es = EventSource(server.script(server.token(), c1="data: a\n\n"), retry=0.05)
    errors: list[ErrorEvent] = []
    es.onerror = errors.append
    with es:
        assert [ev.data for ev in es] == ["a"]
    reconnecting = errors[0]
    assert (reconnecting.ready_state, reconnecting.kind) == (CONNECTING, "stream_ended")
    assert reconnecting.headers == {} and len(reconnecting.headers) == 0
    assert reconnecting.body == b""
    # the 204 that stopped it is a response: its headers are there, its body empty
    assert errors[-1].status == 204 and errors[-1].body == b""


def test_headers_mapping_is_read_only_and_case_insensitive() -> None:
    h = Headers([("Retry-After", "7"), ("x-a", "1"), ("X-A", "2")])
    assert h["retry-after"] == "7" and h["RETRY-AFTER"] == "7"
    assert h["x-a"] == "1, 2" and h.get_list("x-a") == ["1", "2"]
    assert h.get("missing") is None and h.get("missing", "d") == "d"
    assert 1 not in h and "missing" not in h  # type: ignore[comparison-overlap]
    assert list(h) == ["retry-after", "x-a"] and len(h) == 2
    assert dict(h) == {"retry-after": "7", "x-a": "1, 2"}
    with pytest.raises(TypeError):
        h["x"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        h.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        h["missing"]
    assert Headers({"A": "b"}) == Headers([("a", "b")]) == {"a": "b"}
    assert pickle.loads(pickle.dumps(h)).multi_items() == h.multi_items()
    with pytest.raises(TypeError):
        Headers([("a", 1)])  # type: ignore[list-item]


def test_error_event_and_exception_constructors() -> None:
    ev = ErrorEvent("http_status", "m", 401, headers={"X-A": "1"}, body=b'{"a": 1}')
    assert ev.headers["x-a"] == "1" and ev.json() == {"a": 1} and ev.text == '{"a": 1}'
    plain = ErrorEvent("network", "m")
    assert plain.headers == {} and plain.body == b"" and plain.status is None
    e = EventSourceError("m", kind="http_status", status=500, headers=[("a", "b")], body=b"x")
    assert e.headers["A"] == "b" and e.body == b"x" and e.text == "x"
    assert EventSourceError("m").headers == {} and EventSourceError("m").body == b""
