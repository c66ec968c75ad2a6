#!/usr/bin/env python3
"""C benchmark driver (`make -C ffi-c bench`): events/s through the C callbacks (bench_c, the
release libeventsource.so) vs the Rust core's with_handler (es-bench-rust), on the same
testserver /stream workloads, alternating runs, median of 5. Writes the `## C` section of
bench/RESULTS.md (other sections are kept as they are).

    run.py BENCH_C BENCH_RUST TESTSERVER RESULTS_MD"""
import os
import platform
import re
import statistics
import subprocess
import sys

bench_c, bench_rust, testserver, results = sys.argv[1:5]
RUNS = int(os.environ.get("ES_BENCH_RUNS", "5"))
WORKLOADS = [("1 KiB events", 1024, 200_000), ("small events (16 B)", 16, 1_000_000)]

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
    rows.append((name, count, r, c, cost))
    print(f"{name}: Rust {r:,.0f} ev/s, C {c:,.0f} ev/s, FFI cost {cost:+.1f}%")
server.stdin.close()
server.wait(timeout=10)

section = [
    "## C",
    "",
    "Events/s through the C callback API (`ffi-c/benches/bench_c.c`, release `libeventsource.so`)",
    "vs the Rust core's `EventSource::with_handler` (`ffi-c/src/bin/bench_rust.rs`), same testserver",
    f"`/stream?count=N&size=B` workload over loopback, median of {RUNS} alternating runs",
    f"(`make -C ffi-c bench`; {platform.machine()}, {os.cpu_count()} cores). Target: FFI cost < 10% on 1 KiB events.",
    "",
    "| workload | events | Rust core (ev/s) | C callbacks (ev/s) | FFI cost |",
    "|---|---:|---:|---:|---:|",
]
for name, count, r, c, cost in rows:
    section.append(f"| {name} | {count:,} | {r:,.0f} | {c:,.0f} | {cost:+.1f}% |")
section.append("")
text = open(results).read() if os.path.exists(results) else "# Benchmark results\n"
pattern = re.compile(r"^## C\n.*?(?=^## |\Z)", re.S | re.M)
new = "\n".join(section) + "\n"
text = pattern.sub(new, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + new
open(results, "w").write(text)
print(f"wrote the ## C section of {results}")
