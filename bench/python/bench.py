#!/usr/bin/env python3
"""Python benchmark: eventsource_native vs httpx-sse and sseclient-py on one loopback stream.

Run with `make -C py bench` (it builds a bench venv with the peers and the release testserver).
Each cell reads N events from the testserver's /stream and measures wall time, process CPU
(all threads of this process: the client's total cost) and, for eventsource_native, the CPU of
the Python thread alone (the Python-side cost per event). The server's CPU is not counted.
Prints the rows; `--json PATH` writes them as a JSON list of objects for bench/report (which
owns bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def es_iter(url: str, n: int) -> int:
    from eventsource_native import EventSource

    got = 0
    with EventSource(url) as es:
        for _ in es:
            got += 1
            if got == n:
                break
    return got


def es_async(url: str, n: int) -> int:
    from eventsource_native import EventSource

    async def main() -> int:
        got = 0
        async with EventSource(url) as es:
            async for _ in es:
                got += 1
                if got == n:
                    break
        return got

    return asyncio.run(main())


def es_callbacks(url: str, n: int) -> int:
    from eventsource_native import EventSource

    # The callbacks run on the library's dispatcher thread: its CPU time is read there, from
    # the first event to the n-th (n - 1 events), and stored in `thread_cpu` for measure().
    done = threading.Event()
    got = [0]
    t = [0.0, 0.0]

    def on(_: Any) -> None:
        got[0] += 1
        if got[0] == 1:
            t[0] = time.thread_time()
        elif got[0] == n:
            t[1] = time.thread_time()
            done.set()

    es = EventSource(url)
    es.onmessage = on
    done.wait()
    es.close()
    thread_cpu[0] = (t[1] - t[0]) * n / (n - 1)
    return got[0]


thread_cpu: list[Optional[float]] = [None]


def httpx_sse_iter(url: str, n: int) -> int:
    import httpx
    from httpx_sse import connect_sse

    got = 0
    with httpx.Client(timeout=None) as client, connect_sse(client, "GET", url) as source:
        for _ in source.iter_sse():
            got += 1
            if got == n:
                break
    return got


def httpx_sse_async(url: str, n: int) -> int:
    import httpx
    from httpx_sse import aconnect_sse

    async def main() -> int:
        got = 0
        async with httpx.AsyncClient(timeout=None) as client:
            async with aconnect_sse(client, "GET", url) as source:
                async for _ in source.aiter_sse():
                    got += 1
                    if got == n:
                        break
        return got

    return asyncio.run(main())


def sseclient_iter(url: str, n: int) -> int:
    import requests
    import sseclient

    got = 0
    resp = requests.get(url, stream=True, headers={"Accept": "text/event-stream"})
    client = sseclient.SSEClient(resp)
    for _ in client.events():
        got += 1
        if got == n:
            break
    resp.close()
    return got


CLIENTS: list[tuple[str, str, Callable[[str, int], int]]] = [
    ("eventsource_native", "iteration", es_iter),
    ("eventsource_native", "async for", es_async),
    ("eventsource_native", "callbacks", es_callbacks),
    ("httpx-sse", "iteration", httpx_sse_iter),
    ("httpx-sse", "async for", httpx_sse_async),
    ("sseclient-py", "iteration", sseclient_iter),
]


def measure(fn: Callable[[str, int], int], url: str, n: int) -> tuple[float, float, float]:
    thread_cpu[0] = None
    t0, c0, p0 = time.perf_counter(), cpu(), time.thread_time()
    got = fn(url, n)
    dt, dc, dp = time.perf_counter() - t0, cpu() - c0, time.thread_time() - p0
    if thread_cpu[0] is not None:  # callbacks: the dispatcher thread's CPU
        dp = thread_cpu[0]
    assert got >= n, (got, n)  # callbacks may run a few past n before close()
    return n / dt, dc / n, dp / n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="target/release/testserver")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply event counts")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per cell")
    ap.add_argument("--only", default="", help="run only the clients whose name contains this")
    ap.add_argument("--json", help="write the rows of this run to this file")
    args = ap.parse_args()
    clients = [c for c in CLIENTS if args.only in c[0]]

    proc = subprocess.Popen(
        [args.server, "--port", "0", "--exit-on-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    base = proc.stdout.readline().strip().removeprefix("listening on ")
    rows: list[dict[str, Any]] = []
    try:
        for size, size_name in [(16, "small (16 B)"), (1024, "1 KB")]:
            for chunk in ["16384", "event"]:
                for name, mode, fn in clients:
                    fast = name == "eventsource_native"
                    n = int((400_000 if fast else 60_000) * (0.5 if size == 1024 else 1) * args.scale)
                    url = f"{base}/stream?count=0&size={size}&chunk={chunk}"
                    best: Optional[tuple[float, float, float]] = None
                    for _ in range(args.repeat):
                        r = measure(fn, url, n)
                        if best is None or r[0] > best[0]:
                            best = r
                    assert best is not None
                    rows.append({
                        "events": size_name, "size": size, "n": n, "repeat": args.repeat,
                        "chunk": "16 KiB" if chunk == "16384" else "one per event",
                        "client": name, "api": mode, "events_per_s": best[0],
                        "mb_per_s": best[0] * size / 1e6, "cpu_us_per_event": best[1] * 1e6,
                        "python_thread_us_per_event": best[2] * 1e6 if fast else None,
                    })
                    print(f"{size_name:13} chunk={chunk:6} {name:18} {mode:10} "
                          f"{best[0]:>12,.0f} ev/s {best[1] * 1e6:6.2f} us CPU/ev "
                          f"{best[2] * 1e6:6.2f} us thread/ev "
                          f"{best[0] * size / 1e6:7.1f} MB/s", flush=True)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)

    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
