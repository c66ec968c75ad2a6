"""Lifetimes: Ctrl-C during a blocking iteration, a source collected while streaming, and
create/close cycles with flat memory and descriptors (`ES_SOAK_CYCLES=100000` for the long
form)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from typing import Any

import pytest

from conftest import Server
from eventsource_native import EventSource

CYCLES = int(os.environ.get("ES_SOAK_CYCLES") or 2000)


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _n_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _wait_closed(server: Server, token: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The server's log of `token` once every request in it is done (the client went away)."""
    deadline = time.monotonic() + timeout
    while True:
        log = server.log(token)
        if (log and all(e["done_ms"] is not None for e in log)) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_sigint_interrupts_a_blocking_iteration(server: Any) -> None:
    code = (
        "import sys, time\n"
        "from eventsource_native import EventSource\n"
        "es = EventSource(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    for ev in es: pass\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', es.ready_state, flush=True)\n"
        "    es.close()\n"
        "    print('closed', es.ready_state, flush=True)\n"
        "    sys.exit(130)\n"
    )
    url = server.script(server.token(), hold1="1")
    proc = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # inside the blocking wait, GIL released
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert proc.returncode == 130
    assert out.split("\n")[:2] == ["interrupted 1", "closed 2"]


def test_10000_create_close_cycles_bounded_memory(server: Any) -> None:
    url = server.script(server.token(), hold1="1")

    def cycles(n: int) -> None:
        for i in range(n):
            es = EventSource(url)
            if i % 2:
                es.onmessage = lambda ev: None  # the callback machinery too
            es.close()

    cycles(1000)  # warm up: runtime, client pool, allocator
    gc.collect()
    before = _rss_kib()
    cycles(10_000)
    gc.collect()
    time.sleep(0.5)
    grown = _rss_kib() - before
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB over 10,000 cycles"
    n_fds = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    assert n_fds < 200, n_fds  # the wake-up pipes were released


@pytest.mark.parametrize("consumer", ["iteration", "async for"])
def test_a_source_collected_while_streaming_closes_its_connection(
    server: Server, consumer: str
) -> None:
    """Read two events of an endless stream, then drop every reference without close(): the
    source is collected, its connection ends and its descriptors are released."""
    token = server.token("collected")
    url = server.url(f"stream?t={token}&count=0&rate=50")
    gc.collect()
    before = _n_fds()

    def sync() -> weakref.ref[EventSource]:
        es = EventSource(url)
        it = iter(es)
        next(it), next(it)
        return weakref.ref(es)

    async def in_loop() -> weakref.ref[EventSource]:
        es = EventSource(url)
        it = es.__aiter__()
        await it.__anext__()
        await it.__anext__()
        ref = weakref.ref(es)
        del es, it  # the loop closes the abandoned async generator on a later turn
        for _ in range(5):
            gc.collect()
            await asyncio.sleep(0.05)
        assert ref() is None, "alive while the loop runs"
        assert _wait_closed(server, token)[0]["done_ms"] is not None
        return ref

    ref = sync() if consumer == "iteration" else asyncio.run(in_loop())
    gc.collect()
    assert ref() is None
    log = _wait_closed(server, token)
    assert len(log) == 1 and log[0]["done_ms"] is not None, log
    assert _n_fds() <= before, (before, _n_fds())


@pytest.mark.parametrize("consumer", ["async for", "callbacks", "dropped"])
def test_create_stream_close_cycles_keep_memory_and_descriptors_flat(
    server: Server, consumer: str
) -> None:
    """CYCLES sources, one after another in one loop, each opened, read one event and closed
    (`dropped`: iterated, then let go without close()). After a warm-up, RSS stays within
    8 MiB and the descriptor count does not grow."""
    url = server.url("script?c1=data%3A%20x%0A%0A&hold1=1")

    async def cycle() -> None:
        es = EventSource(url)
        if consumer == "callbacks":
            got = asyncio.get_running_loop().create_future()
            es.onmessage = lambda ev: got.done() or got.set_result(None)
            await got
        else:
            async for _ in es:
                break
        if consumer != "dropped":
            es.close()

    async def cycles(n: int) -> None:
        for _ in range(n):
            await asyncio.wait_for(cycle(), 10)

    async def main() -> tuple[int, int, int, int]:
        await cycles(300)  # warm up: runtime, client pool, allocator, the loop's wake-up
        gc.collect()
        await asyncio.sleep(0.3)
        rss0, fds0 = _rss_kib(), _n_fds()
        await cycles(CYCLES)
        gc.collect()
        await asyncio.sleep(0.5)
        return rss0, fds0, _rss_kib(), _n_fds()

    rss0, fds0, rss1, fds1 = asyncio.run(main())
    record = dict(face="python", what=consumer, cycles=CYCLES, rss_before_kib=rss0, rss_after_kib=rss1,
                  fds_before=fds0, fds_after=fds1)
    print(f"SOAK {json.dumps(record)}")  # `make soak` reads these lines
    assert rss1 - rss0 < 8 * 1024, f"RSS grew by {rss1 - rss0} KiB over {CYCLES} cycles"
    assert fds1 <= fds0, (fds0, fds1)
