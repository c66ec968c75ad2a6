#!/usr/bin/env python3
"""Many idle sources in one asyncio loop, and the wake-up latency of one source.

    .venv/bin/python bench/python/many.py --server target/release/testserver --counts 1000 6000 10000
    .venv/bin/python bench/python/many.py --latency

`--counts`: for each N, a fresh process opens N sources in one running asyncio loop, each with
an `onmessage` callback (delivered on that loop), on `--transport`, against the testserver's
`--path` (default `/stream?count=1&hold=1`: one event right after the headers, then an idle
open connection). Reported: the time to make the N sources and attach their listeners
(`make_seconds`), the time from the first constructor call to the N-th first event
(`seconds`), the RSS and descriptor growth per source once all are idle (over a baseline taken
after one source warmed up the runtime), and how many opened if the process ran out of
descriptors. RLIMIT_NOFILE's soft limit is raised to the hard limit.

`--latency`: one source, one event every 5 ms for 2 s from a small server in this script that
writes `time.monotonic_ns()` (system-wide on Linux) into each event just before sending it;
p50/p99/max from that stamp to the callback (callbacks on a running loop) and to the
`async for` body, leaving out the first 20 events (connection start-up).

`--package DIR` puts another build's package first on `sys.path` (before/after comparisons).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def n_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_many(url: str, n: int, transport: str) -> dict[str, Any]:
    from eventsource_native import EventSource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        # Warm-up: runtime threads, client, the loop's wake-up.
        first = loop.create_future()
        w = EventSource(url, transport=transport)
        w.onmessage = lambda ev: first.done() or first.set_result(None)
        await asyncio.wait_for(first, 10)
        w.close()
        await asyncio.sleep(0.2)
        rss0, fds0 = rss_kib(), n_fds()

        got = 0
        all_in = loop.create_future()

        def on(ev: Any) -> None:
            nonlocal got
            got += 1
            if got == n and not all_in.done():
                all_in.set_result(None)

        sources = []
        error = None
        t0 = time.perf_counter()
        for _ in range(n):
            try:
                es = EventSource(url, transport=transport)
                es.onmessage = on
            except Exception as e:  # noqa: BLE001 - reported: how far it got
                error = f"{type(e).__name__}: {e}"
                break
            sources.append(es)
        made = time.perf_counter() - t0
        if error is None:
            try:
                await asyncio.wait_for(all_in, 120)
            except asyncio.TimeoutError:
                error = f"timeout: {got} of {n} first events"
        dt = time.perf_counter() - t0
        await asyncio.sleep(0.5)
        opened = len(sources)
        try:
            rss1, fds1 = rss_kib(), n_fds()
            per_source = {"rss_per_source_kib": round((rss1 - rss0) / max(opened, 1), 2),
                          "fds_per_source": round((fds1 - fds0) / max(opened, 1), 3)}
        except OSError as e:  # out of descriptors: /proc cannot be read either
            per_source = {"measure_error": str(e)}
        for es in sources:
            es.close()
        return {"n": n, "opened": opened, "events": got, "make_seconds": round(made, 3),
                "seconds": round(dt, 3),
                "error": error, **per_source, "nofile": hard}

    return asyncio.run(main())


STAMP_SERVER = r"""
import asyncio, sys, time
async def handle(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
    await writer.drain()
    end = time.monotonic() + float(sys.argv[2])
    nxt = time.monotonic()
    while time.monotonic() < end:
        nxt += float(sys.argv[1])
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
        writer.write(b"data: %d\n\n" % time.monotonic_ns())
        await writer.drain()
    writer.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
asyncio.run(main())
"""


def percentiles(lat_ns: list[int]) -> dict[str, float]:
    lat = sorted(lat_ns[20:])
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000  # noqa: E731
    return {"events": len(lat), "p50_us": pick(0.5), "p99_us": pick(0.99), "max_us": lat[-1] / 1000}


def latency(every: float, duration: float) -> dict[str, Any]:
    from eventsource_native import EventSource

    srv = subprocess.Popen([sys.executable, "-c", STAMP_SERVER, str(every), str(duration)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None
        url = f"http://127.0.0.1:{srv.stdout.readline().strip()}/"

        async def callbacks() -> list[int]:
            lat: list[int] = []
            done = asyncio.get_running_loop().create_future()
            es = EventSource(url, reconnect=False)
            es.onmessage = lambda ev: lat.append(time.monotonic_ns() - int(ev.data))
            es.onerror = lambda ev: done.done() or done.set_result(None)
            await done
            es.close()
            return lat

        async def iteration() -> list[int]:
            lat: list[int] = []
            async with EventSource(url, reconnect=False) as es:
                async for ev in es:
                    lat.append(time.monotonic_ns() - int(ev.data))
            return lat

        return {"callbacks": percentiles(asyncio.run(callbacks())),
                "async_for": percentiles(asyncio.run(iteration()))}
    finally:
        srv.kill()
        srv.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="target/release/testserver")
    ap.add_argument("--counts", type=int, nargs="*", default=[])
    ap.add_argument("--path", default="/stream?count=1&hold=1")
    ap.add_argument("--transport", default="default", choices=["default", "lean"])
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--package", help="a directory holding another build's eventsource_native")
    ap.add_argument("--child", nargs=3, metavar=("URL", "N", "TRANSPORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.package:
        sys.path.insert(0, args.package)
    if args.child:
        print(json.dumps(open_many(args.child[0], int(args.child[1]), args.child[2])))
        return 0
    if args.latency:
        for _ in range(3):
            print(json.dumps(latency(0.005, 2.0)), flush=True)
    if not args.counts:
        return 0
    proc = subprocess.Popen([args.server, "--port", "0", "--exit-on-eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().removeprefix("listening on ")
        for n in args.counts:
            cmd = [sys.executable, __file__, "--child", base + args.path, str(n), args.transport]
            if args.package:
                cmd[2:2] = ["--package", args.package]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            print(out.stdout.strip() or out.stderr.strip()[-2000:], flush=True)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
