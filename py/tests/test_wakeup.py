"""One wake-up per event loop: descriptors per source, delivery through the shared wake-up
(order per source, several loops in several threads, a loop closed under its sources), and a
wake-up that cannot be made."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import pytest

from conftest import Server, _serve
from eventsource_native import EventSource

ONE_EVENT_LATER = "script?c1=data%3A%20x%0A%0A&bodydelay1=1000&hold1=1"  # open, 1 s, one event


def n_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def raise_nofile(need: int) -> None:
    """Raises the soft RLIMIT_NOFILE to the hard one; skips unless that leaves `need`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs RLIMIT_NOFILE >= {need}; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@pytest.fixture(scope="module")
def wide_server() -> Iterator[Server]:
    """A testserver of its own, started after the soft descriptor limit is raised (it inherits
    the limit, and holds one connection per source too)."""
    raise_nofile(12_000)
    yield from _serve()


async def open_all(sources: list[EventSource], timeout: float = 60) -> None:
    """Waits until every source delivered `open` (an `onopen` listener each)."""
    left = len(sources)
    done = asyncio.get_running_loop().create_future()

    def opened(_: Any) -> None:
        nonlocal left
        left -= 1
        if left == 0 and not done.done():
            done.set_result(None)

    for es in sources:
        es.onopen = opened
    await asyncio.wait_for(done, timeout)


WAVE = 500  # sources opened at a time: a burst of thousands of connects overflows the
# testserver's accept queue, and the retried connects then wait out SYN retransmits and backoff


def many_in_one_loop(server: Server, n: int) -> None:
    """n sources in one loop, half read by `async for`, half by callbacks: one descriptor each
    (the socket), and every one gets its event."""
    url = server.url(ONE_EVENT_LATER)

    async def main() -> None:
        warm = EventSource(url)  # the runtime, the client and the loop's wake-up exist
        await open_all([warm])
        warm.close()
        await asyncio.sleep(0.2)
        before = n_fds()
        got: dict[int, str] = {}
        all_in = asyncio.get_running_loop().create_future()

        def record(i: int, data: str) -> None:
            got[i] = data
            if len(got) == n and not all_in.done():
                all_in.set_result(None)

        async def first_event(i: int, es: EventSource) -> None:
            async for ev in es:
                record(i, ev.data)
                break

        sources: list[EventSource] = []
        tasks = []
        try:
            for start in range(0, n, WAVE):
                wave = [EventSource(url, retry=0.2) for _ in range(min(WAVE, n - start))]
                sources += wave
                for i, es in enumerate(wave, start):
                    if i % 2:
                        es.onmessage = lambda ev, i=i: record(i, ev.data)
                    else:
                        tasks.append(asyncio.ensure_future(first_event(i, es)))
                await open_all(wave)
            grown = n_fds() - before
            assert grown <= n + 20, f"{n} open sources hold {grown} more descriptors"
            await asyncio.wait_for(all_in, 120)
            assert sorted(got) == list(range(n)) and set(got.values()) == {"x"}
        finally:
            for es in sources:
                es.close()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def test_2000_sources_in_one_loop_one_descriptor_each(wide_server: Server) -> None:
    raise_nofile(2_000 + 500)
    many_in_one_loop(wide_server, 2_000)


def test_10000_sources_in_one_process(wide_server: Server) -> None:
    raise_nofile(12_000)
    many_in_one_loop(wide_server, 10_000)


def test_order_per_source_through_the_shared_wake_up(server: Server) -> None:
    """200 sources of 50 paced events each in one loop: every source gets 1..50 in order."""
    n, count = 200, 50
    url = server.url(f"stream?count={count}&rate=500")

    async def main() -> dict[int, list[int]]:
        seqs: dict[int, list[int]] = {i: [] for i in range(n)}

        def seq(data: str) -> int:
            return int(data.split(",")[0].removeprefix('{"seq":'))

        async def iterate(i: int, es: EventSource) -> None:
            async for ev in es:
                seqs[i].append(seq(ev.data))
                if len(seqs[i]) == count:
                    break

        async def callbacks(i: int, es: EventSource) -> None:
            done = asyncio.get_running_loop().create_future()

            def on(ev: Any) -> None:
                seqs[i].append(seq(ev.data))
                if len(seqs[i]) == count and not done.done():
                    done.set_result(None)

            es.onmessage = on
            await done

        sources = [EventSource(url) for _ in range(n)]
        try:
            await asyncio.wait_for(
                asyncio.gather(*((iterate if i % 2 else callbacks)(i, es) for i, es in enumerate(sources))),
                60,
            )
        finally:
            for es in sources:
                es.close()
        return seqs

    seqs = asyncio.run(main())
    assert all(s == list(range(1, count + 1)) for s in seqs.values()), [
        (i, s) for i, s in seqs.items() if s != list(range(1, count + 1))
    ][:3]


def test_several_loops_in_several_threads(server: Server) -> None:
    """Four threads, each its own loop with 100 sources: one wake-up per loop, every event in
    order, and every descriptor released once the loops are done."""
    n, count, threads = 100, 5, 4
    url = server.url(f"stream?count={count}&rate=50&hold=1")
    gc.collect()
    before = n_fds()
    peak: list[int] = []
    results: dict[int, Any] = {}
    all_open = threading.Barrier(threads + 1)
    counted = threading.Event()

    def run(t: int) -> None:
        async def main() -> list[list[str]]:
            got: list[list[str]] = [[] for _ in range(n)]
            sources = [EventSource(url) for _ in range(n)]
            done = asyncio.get_running_loop().create_future()

            def on(i: int, ev: Any) -> None:
                got[i].append(ev.data.split(",")[0])
                if all(len(g) == count for g in got) and not done.done():
                    done.set_result(None)

            for i, es in enumerate(sources):
                es.onmessage = lambda ev, i=i: on(i, ev)
            await asyncio.wait_for(done, 60)
            await asyncio.to_thread(all_open.wait, 60)  # all loops hold all their sources
            await asyncio.to_thread(counted.wait, 60)
            for es in sources:
                es.close()
            return got

        try:
            results[t] = asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            results[t] = e
            all_open.abort()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    try:
        all_open.wait(60)
        peak.append(n_fds() - before)
    finally:
        counted.set()
        for w in workers:
            w.join(60)
    want = ['{"seq":%d' % i for i in range(1, count + 1)]
    for t in range(threads):
        assert not isinstance(results[t], BaseException), results[t]
        assert all(g == want for g in results[t])
    # Sockets plus one wake-up per loop (and each loop's own selector and self-pipe).
    assert peak[0] <= threads * n + threads * 4 + 10, peak
    gc.collect()
    time.sleep(0.5)
    assert n_fds() <= before + 2, (before, n_fds())


def test_a_loop_closed_under_its_sources_releases_them(server: Server) -> None:
    """Sources with listeners that nobody closes, on a loop that then closes: the loop held
    them, so they are collected with it, their connections end and no descriptor is left."""
    token = server.token("loop-closed")
    url = server.url(f"stream?t={token}&count=1&hold=1")
    gc.collect()
    before = n_fds()

    async def main() -> None:
        got = asyncio.get_running_loop().create_future()
        seen = 0

        def on(_: Any) -> None:
            nonlocal seen
            seen += 1
            if seen == 20 and not got.done():
                got.set_result(None)

        for _ in range(20):
            EventSource(url).onmessage = on  # no reference kept: the loop's wake-up holds them
        await asyncio.wait_for(got, 10)

    asyncio.run(main())
    gc.collect()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = server.log(token)
        if len(log) == 20 and all(e["done_ms"] is not None for e in log):
            break
        time.sleep(0.05)
    assert len(log) == 20 and all(e["done_ms"] is not None for e in log), log
    assert n_fds() <= before + 1, (before, n_fds())


def test_a_wake_up_that_cannot_be_made(server: Server) -> None:
    """No descriptor left when a listener needs the loop's wake-up: setting the listener raises
    OSError (EMFILE), and close() then works (it raised the same error again); once descriptors
    are back, a listener on that loop works."""
    code = r"""
import asyncio, errno, os, resource, sys
from eventsource_native import EventSource

async def main():
    es = EventSource(sys.argv[1])
    while es.ready_state != 1:  # connected: no descriptor comes or goes from here on
        await asyncio.sleep(0.01)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        try:
            es.onmessage = print
            print("set")
        except OSError as e:
            print("refused", e.errno == errno.EMFILE)
        es.close()  # still without a descriptor to spare
        print("closed", es.ready_state)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    again = EventSource(sys.argv[1])
    got = asyncio.get_running_loop().create_future()
    again.onmessage = lambda ev: got.done() or got.set_result(ev.data)
    print("event", await asyncio.wait_for(got, 10))
    again.close()

asyncio.run(main())
"""
    url = server.url("script?c1=data%3A%20x%0A%0A&hold1=1")
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:3] == ["refused True", "closed 2", "event x"], out.stdout



class Stop(BaseException):
    """Not an Exception: a listener's BaseException propagates out of delivery."""


def test_a_base_exception_in_one_source_does_not_stall_the_others(server: Server) -> None:
    """Two sources woken by one drain: the first one's listener raises a BaseException, which
    reaches the loop's exception handler; the second still gets its event."""
    url = server.url("script?c1=data%3A%20x%0A%0A&hold1=1")

    async def main() -> tuple[list[str], list[BaseException]]:
        loop = asyncio.get_running_loop()
        raised: list[BaseException] = []
        loop.set_exception_handler(lambda _, ctx: raised.append(ctx["exception"]))
        got: list[str] = []
        done = loop.create_future()
        first, second = EventSource(url), EventSource(url)

        def stop(_: Any) -> None:
            raise Stop

        def on(ev: Any) -> None:
            got.append(ev.data)
            done.set_result(None)

        first.onmessage = stop
        second.onmessage = on
        time.sleep(0.5)  # both have their events before the loop looks: one drain names both
        try:
            await asyncio.wait_for(done, 5)
        finally:
            first.close()
            second.close()
        return got, raised

    got, raised = asyncio.run(main())
    assert got == ["x"]
    assert [type(e) for e in raised] == [Stop]
