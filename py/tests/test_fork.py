"""fork(): in a child process, a source made before the fork is CLOSED with the `forked` error,
and a new source streams (the child's first use builds a runtime of its own)."""

from __future__ import annotations

import multiprocessing
import os
import sys
from typing import Any

import pytest

from conftest import Server
from eventsource_native import CLOSED, EventSource, EventSourceError, ForkedError

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
    # Python 3.12+ warns that fork() in a threaded process may deadlock: the point here.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def child(es: EventSource, base: str, out: Any) -> None:
    report: dict[str, Any] = {}
    try:
        for _ in es:
            report["got"] = "a message"
            break
    except ForkedError as e:
        report["error"] = (type(e).__name__, e.kind, "fork" in e.message)
    except EventSourceError as e:  # the wrong error
        report["error"] = (type(e).__name__, e.kind, e.message)
    report["state"] = es.ready_state
    es.close()
    fresh_data: list[str] = []
    with EventSource(f"{base}/stream?count=3&size=8&hold=1") as fresh:
        for ev in fresh:
            fresh_data.append(ev.data)
            if len(fresh_data) == 3:
                break
    report["fresh"] = fresh_data
    out.send(report)


def test_fork_child_gets_the_forked_error_and_a_working_library(server: Server) -> None:
    es = EventSource(server.url("stream?count=2&size=8&rate=5&hold=1"))
    it = iter(es)
    assert next(it).data.startswith('{"seq":1,')
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    p = ctx.Process(target=child, args=(es, server.base, child_end))
    p.start()
    assert parent_end.poll(30), "the child did not report"
    report = parent_end.recv()
    p.join(10)
    assert p.exitcode == 0
    assert report.get("error") == ("ForkedError", "forked", True), report
    assert report["state"] == CLOSED
    assert len(report["fresh"]) == 3 and report["fresh"][0].startswith('{"seq":1,')
    # The parent's source is untouched.
    assert next(it).data.startswith('{"seq":2,')
    es.close()


def test_fork_child_async(server: Server) -> None:
    """The same through `async for` in the child."""
    import asyncio

    es = EventSource(server.url("stream?count=1&size=8&hold=1"))
    assert next(iter(es)).data.startswith('{"seq":1,')
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()

    def run(conn: Any) -> None:
        async def main() -> str:
            try:
                async for _ in es:
                    return "a message"
            except ForkedError:
                return "forked"
            return "ended"

        conn.send(asyncio.run(main()))
        sys.stdout.flush()

    p = ctx.Process(target=run, args=(child_end,))
    p.start()
    assert parent_end.poll(30)
    assert parent_end.recv() == "forked"
    p.join(10)
    assert p.exitcode == 0
    es.close()
