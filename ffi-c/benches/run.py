#!/usr/bin/env python3
"""C benchmark driver (`make -C ffi-c bench`): events/s through the C callbacks (bench_c, the
release libeventsource.so) vs the Rust core's with_handler (es-bench-rust), on the same
testserver /stream workloads, alternating runs, median of ES_BENCH_RUNS (5). Prints the rows;
with JSON_OUT, writes them there as JSON for bench/report.

    run.py BENCH_C BENCH_RUST TESTSERVER [JSON_OUT]"""
import json
import os
import re
import statistics
import subprocess
import sys

bench_c, bench_rust, testserver = sys.argv[1:4]
json_out = sys.argv[4] if len(sys.argv) > 4 else None
RUNS = int(os.environ.get("ES_BENCH_RUNS", "5"))
SCALE = float(os.environ.get("ES_BENCH_SCALE", "1"))
WORKLOADS = [("1 KiB events", 1024, int(200_000 * SCALE)), ("small events (16 B)", 16, int(1_000_000 * SCALE))]

server = subprocess.Popen([testserver, "--port", "0", "--exit-on-eof"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
base = server.stdout.readline().split()[-1]


def once(binary, url, count):
    out = subprocess.run([binary, url, str(count)], capture_output=True, text=True, timeout=300,
                         check=True).stdout
    return float(re.search(r"events_per_s=(\d+)", out).group(1))


rows = []
for name, size, count in WORKLOADS:
    url = f"{base}/stream?count={count}&size={size}"
    c_runs, r_runs = [], []
    for _ in range(RUNS):
        r_runs.append(once(bench_rust, url, count))
        c_runs.append(once(bench_c, url, count))
    c, r = statistics.median(c_runs), statistics.median(r_runs)
    cost = (r - c) / r * 100
    rows.append({"workload": name, "size": size, "events": count, "runs": RUNS,
                 "rust_events_per_s": r, "c_events_per_s": c, "ffi_cost_pct": cost})
    print(f"{name}: Rust {r:,.0f} ev/s, C {c:,.0f} ev/s, FFI cost {cost:+.1f}%")
server.stdin.close()
server.wait(timeout=10)

if json_out:
    with open(json_out, "w") as f:
        json.dump(rows, f, indent=1)
