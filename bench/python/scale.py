#!/usr/bin/env python3
"""One scale or latency measurement of the Python face, in a process of its own.

Run by bench/scale.py (`make -C py scale`), which starts the testserver and runs this once per
measurement: `scale.py --one CLIENT HTTP TASK N BASE SERVER_PID K=V...`. The tasks (`scale`,
`rate`, `broadcast`) and the records (schema 1, `REC\\t{json}` lines on stdout) are those of the
Rust face's bench/src/bin/scale.rs; bench/README.md describes both.

Every client runs in one asyncio loop (the default loop), in its best configuration:
- `ours-default`, `ours-lean`: eventsource_native with callbacks (`onmessage`, one shared
  function for every source) delivered on the running loop, on either transport;
- `ours-default-async-for`, `ours-lean-async-for`: one task per source doing `async for`;
- `httpx-sse`: one task per source in `aconnect_sse` on an `httpx.AsyncClient` per 100 sources
  (no connection limit; h2c with `http1=False, http2=True`): with one client for all, httpcore's
  pool scan makes 10,000 sources open none in minutes;
- `aiohttp-sse-client`: one task per source, `async for` over its `EventSource` on one shared
  `aiohttp.ClientSession` (`TCPConnector(limit=0)`).
The callback, or the body of the `async for`, reads `time.monotonic_ns()` (CLOCK_MONOTONIC, the
server's stamp clock) first thing.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
STALL = 10.0  # seconds without progress before a wait gives up
STALL_FIRST_OPEN = 60.0  # for the first of N opens: httpx-sse at N = 10,000 takes > 10 s

# ---------------------------------------------------------------------------------------------
# What every client's callback does: count, and when asked, the latency of the event.


class Counter:
    """A count that the loop can wait for, woken by the increment that reaches the target."""

    def __init__(self) -> None:
        self.n = 0
        self.want = 0
        self.fut: asyncio.Future[None] | None = None

    def add(self) -> None:
        self.n += 1
        if self.n == self.want and self.fut is not None and not self.fut.done():
            self.fut.set_result(None)

    async def wait_progress(self, want: int, stall: float = STALL) -> bool:
        """Waits until the count is at least `want`; False once it has not moved for `stall`."""
        last, since = self.n, time.monotonic()
        loop = asyncio.get_running_loop()
        while self.n < want:
            self.want, self.fut = want, loop.create_future()
            await asyncio.wait([self.fut], timeout=0.25)
            if self.n != last:
                last, since = self.n, time.monotonic()
            elif time.monotonic() - since >= stall:
                return False
        return True


OPENED = Counter()
MESSAGES = Counter()
ERRORS = 0
FIRST_ERROR = ""
RECORD = False
SAMPLES: list[int] = []


def on_open(_ev: object = None) -> None:
    OPENED.add()


def on_data(data: str) -> None:
    if RECORD:
        now = time.monotonic_ns()
        # data is {"seq":S,"t":T}
        SAMPLES.append(now - int(data[data.rindex(":") + 1 : -1]))
    MESSAGES.add()


def on_message(ev: Any) -> None:
    on_data(ev.data)


def on_error(e: object = None) -> None:
    """An error event or exception; aiohttp-sse-client calls its `on_error` with no argument."""
    global ERRORS, FIRST_ERROR
    ERRORS += 1
    if ERRORS == 1:
        FIRST_ERROR = "error" if e is None else str(getattr(e, "message", None) or e) or type(e).__name__


# ---------------------------------------------------------------------------------------------
# The clients.


class Driver:
    """Opens sources whose events go to the functions above."""

    client = ""
    transport = ""

    def versions(self) -> tuple[str, str]:
        return metadata.version(self.client), metadata.version(self.transport)

    async def start(self) -> None:
        pass

    def open(self, url: str) -> None:
        raise NotImplementedError


def cargo_lock_version(spec: str) -> str:
    """The version Cargo.lock resolved for `name` (`name@MAJOR.MINOR` picks among several)."""
    name, _, prefix = spec.partition("@")
    text = (ROOT / "Cargo.lock").read_text()
    at = text.find(f'name = "{name}"\nversion = "{prefix}')
    if at < 0:
        return "?"
    return text[at:].splitlines()[1].split('"')[1]


class Ours(Driver):
    client = "eventsource-core"

    def __init__(self, transport: str, h2: bool, async_for: bool) -> None:
        from eventsource_native import EventSource

        self.cls = EventSource
        self.transport = "lean" if transport == "lean" else "reqwest"
        self.transport_name, self.h2 = transport, h2
        self.async_for = async_for
        self.sources: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    def versions(self) -> tuple[str, str]:
        core = cargo_lock_version("eventsource-core")
        return core, core if self.transport == "lean" else cargo_lock_version("reqwest@0.13")

    def open(self, url: str) -> None:
        es = self.cls(url, transport=self.transport_name, http2_prior_knowledge=self.h2)
        self.sources.append(es)
        if not self.async_for:
            es.onopen = on_open
            es.onmessage = on_message
            es.onerror = on_error
            return

        # The open event comes to a listener; once it has, no listener is left, so that the
        # iteration takes its fast path (batches of messages straight to the loop body).
        def opened(_ev: object) -> None:
            es.onopen = None
            on_open()

        es.onopen = opened
        self.tasks.append(asyncio.ensure_future(self.iterate(es)))

    @staticmethod
    async def iterate(es: Any) -> None:
        try:
            async for ev in es:
                on_data(ev.data)
        except Exception as e:  # noqa: BLE001 - counted: a fatal error ends the iteration
            on_error(e)


class HttpxSse(Driver):
    client, transport = "httpx-sse", "httpx"
    # httpcore's pool matches every queued request against every connection each time a request
    # comes or goes: one pool for 10,000 streams opens none in minutes. A client (pool) per 100
    # sources keeps that scan short.
    PER_CLIENT = 100

    def __init__(self, h2: bool) -> None:
        self.h2 = h2
        self.clients: list[Any] = []
        self.opened = 0
        self.tasks: list[asyncio.Task[None]] = []

    def http(self) -> Any:
        import httpx

        if self.opened % self.PER_CLIENT == 0:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
            self.clients.append(httpx.AsyncClient(
                limits=limits, timeout=httpx.Timeout(None), trust_env=False,
                http1=not self.h2, http2=self.h2,
            ))
        self.opened += 1
        return self.clients[-1]

    def open(self, url: str) -> None:
        self.tasks.append(asyncio.ensure_future(self.consume(self.http(), url)))

    async def consume(self, http: Any, url: str) -> None:
        from httpx_sse import aconnect_sse

        try:
            async with aconnect_sse(http, "GET", url) as source:
                on_open()
                async for sse in source.aiter_sse():
                    on_data(sse.data)
        except Exception as e:  # noqa: BLE001 - counted, as an error event would be
            on_error(e)


class AiohttpSse(Driver):
    client, transport = "aiohttp-sse-client", "aiohttp"

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )

    def open(self, url: str) -> None:
        self.tasks.append(asyncio.ensure_future(self.consume(url)))

    async def consume(self, url: str) -> None:
        from aiohttp_sse_client.client import EventSource

        try:
            async with EventSource(url, session=self.session, on_error=on_error) as es:
                on_open()
                async for ev in es:
                    on_data(ev.data)
        except Exception as e:  # noqa: BLE001 - counted, as an error event would be
            on_error(e)


def driver(key: str, h2: bool) -> Driver:
    if key in ("ours-default", "ours-lean", "ours-default-async-for", "ours-lean-async-for"):
        transport = "lean" if key.startswith("ours-lean") else "default"
        return Ours(transport, h2, key.endswith("async-for"))
    if key == "httpx-sse":
        return HttpxSse(h2)
    if key == "aiohttp-sse-client" and not h2:
        return AiohttpSse()
    raise SystemExit(f"unknown client {key} (or no HTTP/2 for it)")


# ---------------------------------------------------------------------------------------------
# Measuring.


def rss_kib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return 0.0


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def server_cpu_seconds(pid: int) -> float:
    """Another process's CPU: the sum of its threads' schedstat run times."""
    ns = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        pass
    return ns / 1e9


async def control(base: str, method: str, path: str) -> dict[str, Any]:
    """One request to the testserver over a connection of its own (not blocking the loop)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    text = (await reader.read()).decode()
    writer.close()
    if not text.startswith("HTTP/1.1 200"):
        raise RuntimeError(f"{method} {path}: {text}")
    answer: dict[str, Any] = json.loads(text[text.index("{") : text.rindex("}") + 1])
    return answer


def latency_fields(ns: list[int]) -> dict[str, float | None]:
    """Nearest-rank percentiles in µs of latencies in ns."""
    ns = sorted(ns)
    n = len(ns)

    def at(q: float) -> float | None:
        if not n:
            return None
        rank = min(max(int(-(-q * n // 1)), 1), n)
        return ns[rank - 1] / 1e3

    return {"samples": n, "p50_us": at(0.5), "p99_us": at(0.99), "p999_us": at(0.999),
            "max_us": at(1.0), "mean_us": sum(ns) / max(n, 1) / 1e3}


class One:
    def __init__(self, argv: list[str]) -> None:
        client, http, task, n, base, pid, *rest = argv
        self.client, self.http, self.task = client, http, task
        self.n, self.base, self.server_pid = int(n), base, int(pid)
        self.params = dict(kv.split("=", 1) for kv in rest)
        self.run = " ".join([sys.executable, os.path.abspath(__file__), "--one", *argv])
        self.d = driver(client, http == "2")
        self.versions = self.d.versions()

    def param(self, name: str) -> int:
        return int(self.params[name])

    def url(self, path: str) -> str:
        return self.base + path

    def record(self, metric: str, value: float | None, unit: str, **extra: Any) -> dict[str, Any]:
        return {"schema": 1, "face": "python", "client": self.d.client,
                "client_version": self.versions[0], "transport": self.d.transport,
                "transport_version": self.versions[1], "key": self.client, "http": self.http,
                "tls": False, "metric": metric, "n": self.n, "value": value, "unit": unit,
                "ok": True, **extra}

    def failed(self, metric: str, why: str) -> dict[str, Any]:
        return self.record(metric, None, "", ok=False, error=why)

    def emit(self, r: dict[str, Any]) -> None:
        r.update(run=self.run, time=int(time.time()), errors=ERRORS)
        if FIRST_ERROR:
            r["first_error"] = FIRST_ERROR
        print("REC\t" + json.dumps(r, ensure_ascii=False), flush=True)

    async def warm_up(self) -> None:
        """A first source on the plain /stream, so that the loop, the runtime, the HTTP client
        and its pool exist before the "before" figures are taken."""
        self.d.open(self.url("/stream?count=1&hold=1"))
        ok = await OPENED.wait_progress(1, 20) and await MESSAGES.wait_progress(1, 20)
        if not ok:
            raise SystemExit("the warm-up source got no event")
        OPENED.n = MESSAGES.n = 0

    async def open_all(self) -> float | None:
        url = self.url("/load/stream")
        t0 = time.perf_counter()
        for _ in range(self.n):
            self.d.open(url)
        first = await OPENED.wait_progress(1, STALL_FIRST_OPEN)
        if not (first and await OPENED.wait_progress(self.n)):
            return None
        return time.perf_counter() - t0


async def scale(one: One) -> None:
    global RECORD
    n = one.n
    pause = one.param("settle_ms") / 1e3
    gc.collect()
    rss_before, fds_before = rss_kib(), fds()
    errors_before = ERRORS
    secs = await one.open_all()
    if secs is None:
        one.emit(one.failed("open_ms", f"{OPENED.n} of {n} sources opened"))
        return
    one.emit(one.record("open_ms", secs * 1e3, "ms", errors_while_opening=ERRORS - errors_before))

    await asyncio.sleep(pause)
    gc.collect()
    rss_open = rss_kib()
    stats = await control(one.base, "GET", "/load/stats")
    h1, h2 = stats["connections"]["http1"], stats["connections"]["http2"]
    one.emit(one.record("connections", h1 + h2, "connections", http1_connections=h1,
                        http2_connections=h2, server_open_streams=stats["open_streams"]))

    # Every source gets one event, then idles: the memory of a source that has seen traffic.
    await control(one.base, "POST", "/load/broadcast?n=1")
    if not await MESSAGES.wait_progress(n):
        one.emit(one.failed("idle_kib_per_source", f"{MESSAGES.n} of {n} sources got the first broadcast"))
        return
    await asyncio.sleep(pause)
    gc.collect()
    rss_idle = rss_kib()
    one.emit(one.record("idle_kib_per_source", (rss_idle - rss_before) / n, "KiB",
                        rss_before_kib=rss_before, rss_open_kib=rss_open, rss_idle_kib=rss_idle,
                        open_kib_per_source=(rss_open - rss_before) / n,
                        fds_per_source=(fds() - fds_before) / n))

    # Write-paced broadcasts: one event per write, as fast as every stream takes them.
    rounds = one.param("rounds")
    total = n * rounds
    MESSAGES.n = 0
    SAMPLES.clear()
    RECORD = True
    cpu0, server0, t0 = cpu_seconds(), server_cpu_seconds(one.server_pid), time.perf_counter()
    await control(one.base, "POST", f"/load/broadcast?n={rounds}&paced=1")
    done = await MESSAGES.wait_progress(total)
    secs = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    server_cpu = server_cpu_seconds(one.server_pid) - server0
    RECORD = False
    if not done:
        one.emit(one.failed("broadcast_events_per_s", f"{MESSAGES.n} of {total} broadcast events arrived"))
        return

    def per(s: float) -> float:
        return s / total * 1e6

    one.emit(one.record("broadcast_events_per_s", total / secs, "events/s", events=total,
                        rounds=rounds, secs=secs, cpu_us_per_event=per(cpu),
                        server_cpu_us_per_event=per(server_cpu), **latency_fields(SAMPLES)))
    one.emit(one.record("cpu_us_per_event", per(cpu), "us",
                        server_cpu_us_per_event=per(server_cpu), events=total))


async def latency_rate(one: One) -> None:
    global RECORD
    hz, count, skip = one.param("hz"), one.param("count"), one.param("skip")
    RECORD = True
    one.d.open(one.url(f"/load/rate?hz={hz}&count={count}"))
    if not await MESSAGES.wait_progress(count):
        one.emit(one.failed("latency_rate_us", f"{MESSAGES.n} of {count} events arrived"))
        return
    lat = latency_fields(SAMPLES[skip:])
    one.emit(one.record("latency_rate_us", lat["p99_us"], "us", hz=hz, events=count,
                        skipped=skip, **lat))


async def latency_broadcast(one: One) -> None:
    global RECORD
    n, rounds, every_us = one.n, one.param("rounds"), one.param("every_us")
    if await one.open_all() is None:
        one.emit(one.failed("latency_broadcast_us", f"{OPENED.n} of {n} sources opened"))
        return
    await control(one.base, "POST", "/load/broadcast?n=1")
    if not await MESSAGES.wait_progress(n):
        one.emit(one.failed("latency_broadcast_us", "the warm-up broadcast did not arrive"))
        return
    MESSAGES.n = 0
    SAMPLES.clear()
    RECORD = True
    await control(one.base, "POST", f"/load/broadcast?n={rounds}&every_us={every_us}")
    if not await MESSAGES.wait_progress(n * rounds):
        one.emit(one.failed("latency_broadcast_us", f"{MESSAGES.n} of {n * rounds} events arrived"))
        return
    lat = latency_fields(SAMPLES)
    one.emit(one.record("latency_broadcast_us", lat["p99_us"], "us", rounds=rounds,
                        every_us=every_us, **lat))


TASKS: dict[str, Callable[[One], Any]] = {
    "scale": scale, "rate": latency_rate, "broadcast": latency_broadcast,
}


async def amain(argv: list[str]) -> None:
    one = One(argv)
    await one.d.start()
    await one.warm_up()
    await TASKS[one.task](one)
    # Exit without tearing down thousands of sources (asyncio.run would cancel every task):
    # the kernel closes the sockets.
    sys.stdout.flush()
    os._exit(0)


def main() -> int:
    if len(sys.argv) < 8 or sys.argv[1] != "--one":
        print(__doc__, file=sys.stderr)
        return 2
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(amain(sys.argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
