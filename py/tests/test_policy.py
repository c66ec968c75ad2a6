"""The reconnection policy (a POST is never sent twice unless asked, max_reconnects,
retry_initial), how reconnections show during an iteration, and the User-Agent."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from conftest import Server
from eventsource_native import (
    CLOSED,
    CONNECTING,
    DEFAULT_USER_AGENT,
    ConnectError,
    ErrorEvent,
    EventSource,
    __version__,
)


def test_llm_post_is_requested_once_and_ends_normally(server: Server) -> None:
    t = server.token("llm")
    es = EventSource(
        server.url(f"llm?t={t}&tokens=3"),
        method="POST",
        headers={"Authorization": "Bearer sk-test"},
        json={"model": "m", "stream": True},
        retry=0.01,
    )
    errors: list[ErrorEvent] = []
    es.onerror = errors.append
    text = []
    with es:
        for ev in es:  # ends without an exception: the end of a POST stream is its answer's end
            if ev.data == "[DONE]":
                continue
            text.append(ev.json()["choices"][0]["delta"]["content"])
    assert "".join(text) == "tok1 tok2 tok3 "
    (end,) = errors
    assert (end.ready_state, end.kind) == (CLOSED, "stream_ended")
    assert "not sent again" in end.message
    time.sleep(0.1)  # a second request would have come after retry (10 ms)
    (req,) = server.log(t)
    assert req["method"] == "POST"
    assert req["headers"]["authorization"] == "Bearer sk-test"
    assert req["headers"]["content-type"] == "application/json"
    assert json.loads(req["body"]) == {"model": "m", "stream": True}


def test_llm_stop_at_done(server: Server) -> None:
    t = server.token("llm")
    with EventSource(server.url(f"llm?t={t}&tokens=50&ms=20"), method="POST", json={}) as es:
        n = 0
        for ev in es:
            if ev.data == "[DONE]":
                break
            n += 1
            if n == 2:
                break
    assert n == 2 and len(server.log(t)) == 1


def test_post_with_reconnect_on_is_sent_again(server: Server) -> None:
    t = server.token()
    es = EventSource(server.script(t, c1="data: a\n\n", c2="data: b\n\n"), method="POST",
                     body="q", reconnect=True, retry=0.01)
    with es:
        assert [ev.data for ev in es] == ["a", "b"]  # then 204
    assert [r["body"] for r in server.log(t)] == ["q", "q", "q"]


def test_unreachable_host_with_retry_initial_off_raises_at_once() -> None:
    t0 = time.monotonic()
    with pytest.raises(ConnectError) as info:
        for _ in EventSource("http://127.0.0.1:1/", retry_initial=False):
            pass
    assert time.monotonic() - t0 < 5
    assert info.value.kind == "connect" and "retry_initial" in info.value.message

    async def main() -> None:
        with pytest.raises(ConnectError):
            async for _ in EventSource("http://127.0.0.1:1/", retry_initial=False):
                pass

    t0 = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - t0 < 5


def test_max_reconnects_raises_and_reconnections_reach_onerror(server: Server) -> None:
    t = server.token()
    # Every connection opens, sends `retry: 0` and ends at once.
    es = EventSource(server.url(f"scenario/instant-close?t={t}&retry=0"), max_reconnects=2)
    seen: list[tuple[int, str]] = []
    es.onerror = lambda ev: seen.append((ev.ready_state, ev.kind))
    with pytest.raises(ConnectError) as info:
        for _ in es:
            pass
    # A reconnecting source that gives up raises, even though a stream end came last.
    assert info.value.kind == "stream_ended" and "max_reconnects" in info.value.message
    assert seen == [(CONNECTING, "stream_ended")] * 2 + [(CLOSED, "stream_ended")]
    assert len(server.log(t)) == 3


def test_max_reconnects_on_an_unreachable_host() -> None:
    es = EventSource("http://127.0.0.1:1/", max_reconnects=1, retry=0.01)
    seen: list[int] = []
    es.onerror = lambda ev: seen.append(ev.ready_state)
    with pytest.raises(ConnectError, match="max_reconnects"):
        list(es)
    assert seen == [CONNECTING, CLOSED]


def test_get_with_reconnect_off_ends_normally(server: Server) -> None:
    t = server.token()
    with EventSource(server.script(t, c1="data: a\n\n"), reconnect=False) as es:
        assert [ev.data for ev in es] == ["a"]
    assert len(server.log(t)) == 1


@pytest.mark.parametrize(
    "kwargs, want",
    [({}, f"eventsource-native/{__version__}"), ({"user_agent": None}, None),
     ({"user_agent": "my-agent/2.0"}, "my-agent/2.0")],
)
def test_user_agent(server: Server, kwargs: dict[str, Any], want: str) -> None:
    assert DEFAULT_USER_AGENT == f"eventsource-native/{__version__}"
    t = server.token()
    with EventSource(server.script(t, c1="data: x\n\n"), reconnect=False, **kwargs) as es:
        list(es)
    (req,) = server.log(t)
    assert req["headers"].get("user-agent") == want
