#!/usr/bin/env python3
"""Instructions per event on the Python thread, per cell, for eventsource_native builds.

A deterministic companion of `ab.py` (whose CPU times swing by ±20% on a shared machine): runs
each cell under `valgrind --tool=callgrind --separate-threads=yes` twice, with 5,000 and 25,000
events, and prints the difference of the Python thread's instruction counts divided by 20,000
(startup, connection and imports cancel out). The Python thread is the main thread: callbacks
run on an asyncio loop in the main thread here (the same `_pump`/`dispatch` path as on the
library's thread). Under valgrind the threads take turns, so batches are smaller than in a
real run and per-batch costs weigh more; compare builds with each other, not with `bench.py`.

    .venv-bench/bin/python bench/python/callgrind.py /tmp/before /tmp/after
    .venv-bench/bin/python bench/python/callgrind.py /tmp/after --cells "1024 16384 cb"

Each directory contains an `eventsource_native/` (see `ab.py`). About 25 s per cell and build.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Iteration and `async for` are bench.py's own clients (the same loop bodies as the timed bench);
# callbacks run on this script's asyncio loop, so on the main thread, whose counts are read.
CONSUMER = r'''
import asyncio, sys
from bench import es_async, es_iter
from eventsource_native import EventSource
mode, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def cb():
    done = asyncio.Event()
    got = [0]
    def on(_):
        got[0] += 1
        if got[0] == n:
            done.set()
    es = EventSource(url)
    es.onmessage = on
    await done.wait()
    es.close()

if mode == "iter":
    es_iter(url, n)
elif mode == "async":
    es_async(url, n)
else:
    asyncio.run(cb())
'''

CELLS = [(size, chunk, mode) for size in ("16", "1024") for chunk in ("16384", "event")
         for mode in ("iter", "async", "cb")]


def instructions(pkg: str, consumer: Path, url: str, mode: str, n: int, tmp: Path) -> int:
    out = tmp / f"cg.{n}"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}",
         sys.executable, str(consumer), mode, url, str(n)],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([pkg, str(Path(__file__).parent)])),
        check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    main = next(p for p in tmp.iterdir() if p.name.startswith(out.name) and p.name.endswith("-01"))
    m = re.search(r"^(?:summary|totals): (\d+)", main.read_text(errors="replace"), re.M)
    assert m, main
    return int(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", help="directories that each contain an eventsource_native/")
    ap.add_argument("--server", default=str(ROOT / "target" / "release" / "testserver"))
    ap.add_argument("--cells", help='only these cells, e.g. "1024 16384 cb,16 event async"')
    args = ap.parse_args()
    cells = CELLS
    if args.cells:
        cells = []
        for c in args.cells.split(","):
            size, chunk, mode = c.split()
            cells.append((size, chunk, mode))
    proc = subprocess.Popen([args.server, "--port", "0", "--exit-on-eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    base = proc.stdout.readline().strip().removeprefix("listening on ")
    names = [Path(d).name for d in args.dirs]
    print("| events | HTTP chunks | API | " + " | ".join(f"{n} instr/event" for n in names) + " |")
    print("|---|---|---|" + "---:|" * len(names))
    try:
        with tempfile.TemporaryDirectory() as t:
            consumer = Path(t) / "consumer.py"
            consumer.write_text(CONSUMER)
            for size, chunk, mode in cells:
                url = f"{base}/stream?count=0&size={size}&chunk={chunk}"
                vals = []
                for d in args.dirs:
                    with tempfile.TemporaryDirectory(dir=t) as cell:
                        a = instructions(d, consumer, url, mode, 5000, Path(cell))
                        b = instructions(d, consumer, url, mode, 25000, Path(cell))
                    vals.append(f"{(b - a) / 20000:,.0f}")
                api = {"iter": "iteration", "async": "async for", "cb": "callbacks"}[mode]
                events = "small (16 B)" if size == "16" else "1 KB" if size == "1024" else f"{size} B"
                chunks = "16 KiB" if chunk == "16384" else "one per event"
                print(f"| {events} | {chunks} | {api} | " + " | ".join(vals) + " |", flush=True)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
