#!/usr/bin/env python3
"""Interleaved before/after of eventsource_native builds on a noisy machine.

Copy each build's package somewhere first (after `make -C py bench` or `maturin develop`):

    cp -r py/python/eventsource_native /tmp/before/      # then change, rebuild, and
    cp -r py/python/eventsource_native /tmp/after/
    .venv-bench/bin/python bench/python/ab.py /tmp/before /tmp/after --rounds 6

Runs `bench.py --only eventsource_native --json` with PYTHONPATH set to each directory in turn
(ABBA order), then prints, per cell, the minimum and median Python-thread µs/event over the
rounds (interference from other processes only ever adds time, so the minimum is the steadiest
figure; the median shows outliers such as page-fault storms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", help="directories that each contain an eventsource_native/")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--server", default=str(ROOT / "target" / "release" / "testserver"))
    args = ap.parse_args()
    runs: dict[str, list[list[list[object]]]] = {d: [] for d in args.dirs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, d in enumerate(args.dirs if r % 2 == 0 else args.dirs[::-1]):
                out = Path(tmp) / f"{r}-{i}.json"
                subprocess.run(
                    [sys.executable, str(ROOT / "bench" / "python" / "bench.py"), "--only",
                     "eventsource_native", "--server", args.server, "--json", str(out)],
                    env=dict(os.environ, PYTHONPATH=d), check=True, cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                )
                runs[d].append(json.loads(out.read_text()))
            print(f"round {r + 1}/{args.rounds}, load average {os.getloadavg()[0]:.2f}",
                  file=sys.stderr, flush=True)
    cells: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for d, rows_per_run in runs.items():
        for rows in rows_per_run:
            for row in rows:
                key = (str(row[0]), "16 KiB" if row[1] == "16384" else "one per event", str(row[3]))
                cells.setdefault(key, {}).setdefault(d, []).append(float(row[6]) * 1e6)  # type: ignore[arg-type]
    print("| events | HTTP chunks | API | " + " | ".join(
        f"{Path(d).name} min | {Path(d).name} median" for d in args.dirs) + " |")
    print("|---|---|---|" + "---:|---:|" * len(args.dirs))
    for key, per_dir in cells.items():
        vals = " | ".join(f"{min(per_dir[d]):.2f} | {statistics.median(per_dir[d]):.2f}"
                          for d in args.dirs)
        print(f"| {' | '.join(key)} | {vals} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
