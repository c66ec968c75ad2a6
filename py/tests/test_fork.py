"""fork(): in a child process, a source made before the fork is CLOSED with the `forked` error,
and a new source streams (the child's first use builds a runtime of its own)."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
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


def test_fork_while_the_library_loop_watches_sources(server: Server) -> None:
    """The parent's callbacks run on the library thread's loop (its wake-up watched there) when
    it forks: the child gets callbacks of its own, on its own library loop and in its own
    asyncio loop, and the parent's source goes on receiving (the child never reads the parent's
    wake-up)."""
    import asyncio
    import threading

    parent_got: list[str] = []
    more = threading.Event()
    es = EventSource(server.url("stream?count=0&size=8&rate=50"))

    def on(ev: Any) -> None:
        parent_got.append(ev.data)
        if len(parent_got) >= 3:
            more.set()

    es.onmessage = on
    assert more.wait(10)
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()

    def run(conn: Any) -> None:
        url = f"{server.base}/stream?count=3&size=8&hold=1"
        got: list[str] = []
        done = threading.Event()

        def on_child(ev: Any) -> None:
            got.append(ev.data[:8])
            if len(got) == 3:
                done.set()

        lib = EventSource(url)  # no loop running: the child's library thread
        lib.onmessage = on_child
        ok_lib = done.wait(10)
        lib.close()

        async def in_loop() -> int:
            n = 0
            fut = asyncio.get_running_loop().create_future()

            def count(_: Any) -> None:
                nonlocal n
                n += 1
                if n == 3:
                    fut.set_result(None)

            s = EventSource(url)
            s.onmessage = count
            await asyncio.wait_for(fut, 10)
            s.close()
            return n

        conn.send((ok_lib, got, asyncio.run(in_loop())))

    before = len(parent_got)
    p = ctx.Process(target=run, args=(child_end,))
    p.start()
    assert parent_end.poll(30), "the child did not report"
    ok_lib, got, in_loop = parent_end.recv()
    p.join(10)
    assert p.exitcode == 0
    assert ok_lib and got == ['{"seq":1', '{"seq":2', '{"seq":3'], got
    assert in_loop == 3
    # The parent's source goes on (50 events/s).
    deadline = time.monotonic() + 5
    while len(parent_got) < before + 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    es.close()
    assert len(parent_got) >= before + 20, (before, len(parent_got))
