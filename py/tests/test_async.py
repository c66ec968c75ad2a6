"""asyncio: async iteration, two sources in one loop, callbacks on the creating loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from eventsource_native import CLOSED, OPEN, EventSource, HTTPStatusError


def test_two_sources_in_one_loop_without_threads(server: Any) -> None:
    async def consume(url: str, limit: int) -> list[str]:
        out: list[str] = []
        async with EventSource(url, retry=0.05) as es:
            async for ev in es:
                out.append(ev.data)
                if len(out) == limit:
                    break
        return out

    def python_threads() -> int:
        # Threads started by Python; a runtime thread that logs through `logging` shows up as
        # a dummy thread (logging asks for the current thread), and is not one per source.
        return sum(not isinstance(t, threading._DummyThread) for t in threading.enumerate())

    async def main() -> tuple[list[str], list[str], int]:
        before = python_threads()
        a = server.script(server.token(), c1="data: a1\n\ndata: a2\n\n", c2="data: a3\n\n")
        b = server.url("stream?count=300&rate=2000")
        ra, rb = await asyncio.gather(consume(a, 3), consume(b, 300))
        return ra, rb, python_threads() - before

    ra, rb, new_threads = asyncio.run(main())
    assert ra == ["a1", "a2", "a3"]
    assert len(rb) == 300 and rb[0].startswith('{"seq":1,')
    assert new_threads <= 0  # no thread per source (the core's runtime threads pre-exist)


def test_async_fatal_error_raises(server: Any) -> None:
    async def main() -> None:
        es = EventSource(server.script(server.token(), s1="503"))
        with pytest.raises(HTTPStatusError) as info:
            async for _ in es:
                pass
        assert info.value.status == 503
        assert es.ready_state == CLOSED

    asyncio.run(main())


def test_callbacks_run_on_the_creating_loop(server: Any) -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        threads: set[int] = set()
        got: list[str] = []
        done = asyncio.Event()
        es = EventSource(server.script(server.token(), c1="data: 1\n\ndata: 2\n\n", hold1="1"))

        def on(ev: Any) -> None:
            threads.add(threading.get_ident())
            got.append(ev.data)
            assert es.ready_state == OPEN
            if len(got) == 2:
                done.set()

        es.onmessage = on
        await asyncio.wait_for(done.wait(), 5)
        es.close()
        assert threads == {loop_thread}
        assert got == ["1", "2"]

    asyncio.run(main())


def test_close_ends_async_iteration(server: Any) -> None:
    async def main() -> list[Any]:
        es = EventSource(server.script(server.token(), hold1="1"))
        asyncio.get_running_loop().call_later(0.2, es.close)
        return [ev async for ev in es]

    assert asyncio.run(main()) == []


def test_close_from_another_thread_wakes_async_iteration(server: Any) -> None:
    async def main() -> list[Any]:
        es = EventSource(server.script(server.token(), hold1="1"))
        threading.Timer(0.2, es.close).start()
        return [ev async for ev in es]

    assert asyncio.run(asyncio.wait_for(main(), 5)) == []


def test_cancelling_an_async_iteration(server: Any) -> None:
    async def main() -> None:
        es = EventSource(server.script(server.token(), hold1="1"))

        async def it() -> None:
            async for _ in es:
                pass

        task = asyncio.ensure_future(it())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        es.close()

    asyncio.run(main())


def test_close_by_the_consumer_stops_mid_batch(server: Any) -> None:
    # 1000 queued events come in batches of a few hundred (the first with the open event):
    # closing at the 600th, in the middle of a batch of messages only, yields no more of it.
    async def main() -> list[str]:
        got: list[str] = []
        es = EventSource(server.url("stream?count=1000&rate=100000"))
        await asyncio.sleep(0.3)  # let the events queue up
        async for ev in es:
            got.append(ev.data)
            if len(got) == 600:
                es.close()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 5))
    assert len(got) == 600 and got[599].startswith('{"seq":600,')


def test_cancelled_async_iteration_leaves_the_source_usable(server: Any) -> None:
    # Cancelled while awaiting the next event: nothing is lost, a new `async for` goes on.
    async def main() -> list[str]:
        got: list[str] = []
        es = EventSource(server.url("stream?count=4&rate=10"))

        async def first() -> None:
            async for ev in es:
                got.append(ev.data)

        task = asyncio.ensure_future(first())
        while not got:
            await asyncio.sleep(0.01)
        task.cancel()  # waiting for the second event (100 ms apart)
        with pytest.raises(asyncio.CancelledError):
            await task
        async for ev in es:
            got.append(ev.data)
            if len(got) == 4:
                break
        es.close()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 5))
    assert [g.split(",")[0] for g in got] == ['{"seq":%d' % i for i in range(1, 5)]
