#!/usr/bin/env python3
"""Scale and latency of the Python, Node and C faces against their peers: the same
measurements and the same schema-1 records as the Rust face's `scale` (bench/src/bin/scale.rs).

    python3 bench/scale.py --face python|node|c [--quick] [--json PATH] [--n 1,100,1000,10000]
                           [--clients a,b] [--http 1.1,2] [--skip scale,rate,broadcast]
                           [--runs R] [--h2-max-streams N]

This script is the parent: it starts the release testserver, runs every measurement in a fresh
process of the face's own language (`--one CLIENT HTTP TASK N BASE SERVER_PID K=V...`, as
scale.rs runs itself), adds the fields of the whole run to each record, appends them to
`--json`, and prints the tables. The children, where the sources and their callbacks live:

    python   bench/python/scale.py   (run with PYTHON, default: the interpreter running this)
    node     bench/node/scale.mjs    (run with NODE, default: node)
    c        target/ffi-c/scale_c    (built by `make -C ffi-c scale`)

The tasks, their parameters and the record schema are those of scale.rs (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# The clients of each face, in table order; the second field: whether it speaks h2c.
CLIENTS: dict[str, list[tuple[str, bool]]] = {
    "python": [
        ("ours-default", True),
        ("ours-lean", False),
        ("ours-default-async-for", True),
        ("ours-lean-async-for", False),
        ("httpx-sse", True),
        ("aiohttp-sse-client", False),
    ],
    "node": [
        ("ours-default", True),
        ("ours-lean", False),
        ("eventsource", False),
        ("undici", False),
    ],
    "c": [("ours-default", True), ("ours-lean", False)],
}


def child_command(face: str) -> list[str]:
    if face == "python":
        return [os.environ.get("PYTHON", sys.executable), str(ROOT / "bench/python/scale.py")]
    if face == "node":
        # --expose-gc: the child collects garbage before reading its RSS, as the others settle.
        return [os.environ.get("NODE", "node"), "--expose-gc", "--disable-warning=ExperimentalWarning",
                str(ROOT / "bench/node/scale.mjs")]
    return [os.environ.get("SCALE_C", str(ROOT / "target/ffi-c/scale_c"))]


def raise_fd_limit() -> int:
    """The soft open-files limit, raised to the hard one (the children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def control(base: str, method: str, path: str) -> dict[str, Any]:
    """One request to the testserver over a connection of its own; its JSON answer."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode()
    if not text.startswith("HTTP/1.1 200"):
        raise RuntimeError(f"{method} {path}: {text}")
    answer: dict[str, Any] = json.loads(text[text.index("{") : text.rindex("}") + 1])
    return answer


class TestServer:
    """The release testserver as a child process (stdin piped so that it exits with us)."""

    def __init__(self, h2_max_streams: int | None) -> None:
        binary = os.environ.get("TESTSERVER", str(ROOT / "target/release/testserver"))
        cmd = [binary, "--exit-on-eof", "--max-load-streams", "20000", "--max-load-secs", "600"]
        if h2_max_streams is not None:
            cmd += ["--max-concurrent-streams", str(h2_max_streams)]
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        except OSError as e:
            sys.exit(f"cannot start {binary} (cargo build --release -p testserver): {e}")
        assert self.proc.stdout is not None
        self.base = self.proc.stdout.readline().strip().removeprefix("listening on ")

    def wait_idle(self) -> None:
        """Waits (up to 30 s) until the streams of the last measurement are gone."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = control(self.base, "GET", "/load/stats")
            if stats["open_streams"] == 0 and stats["rate_streams"] == 0:
                return
            time.sleep(0.05)
        print("(the server still holds streams of the last measurement)", file=sys.stderr)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def jobs_of(args: argparse.Namespace, limit: int) -> list[tuple[str, str, str, int, list[str]]]:
    q = args.quick
    pairs = [(c, h) for h in args.http for c in args.clients if h == "1.1" or dict(CLIENTS[args.face])[c]]
    jobs: list[tuple[str, str, str, int, list[str]]] = []
    if "scale" not in args.skip:
        for n in args.n:
            # A socket per source in the client and one in the server (which inherits the
            # limit), plus a margin for the runtime, the pool and the warm-up source.
            if n + 200 > limit:
                print(f"skipping N={n}: the open-files limit is {limit} (raise the hard limit)")
                continue
            rounds = min(max((20_000 if q else 100_000) // n, 10), 100_000)
            settle = 200 if q else 500
            for client, http in pairs:
                jobs.append((client, http, "scale", n, [f"rounds={rounds}", f"settle_ms={settle}"]))
    if "rate" not in args.skip:
        count = 200 if q else 2000
        for client, http in pairs:
            jobs.append((client, http, "rate", 1, ["hz=200", f"count={count}", "skip=10"]))
    if "broadcast" not in args.skip:
        n, rounds, every_us = (100, 20, 20_000) if q else (1000, 50, 50_000)
        for client, http in pairs:
            jobs.append((client, http, "broadcast", n, [f"rounds={rounds}", f"every_us={every_us}"]))
    return jobs


def run_one(
    face: str, job: tuple[str, str, str, int, list[str]], server: TestServer
) -> list[dict[str, Any]]:
    """Runs one measurement in a fresh process; its records (a failure record if it died)."""
    client, http, task, n, params = job
    assert server.proc.pid is not None
    argv = ["--one", client, http, task, str(n), server.base, str(server.proc.pid), *params]
    cmd = child_command(face) + argv
    try:
        out = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True, timeout=900)
        stdout, status = out.stdout, f"exit status {out.returncode}"
        ok = out.returncode == 0
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        status, ok = "timed out after 900 s", False
    recs = [json.loads(line[4:]) for line in stdout.splitlines() if line.startswith("REC\t")]
    if ok and recs:
        return recs
    recs.append(
        {"schema": 1, "face": face, "client": client, "key": client, "http": http, "tls": False,
         "metric": task, "n": n, "value": None, "unit": "", "ok": False,
         "error": f"the measurement process failed: {status}", "run": shlex.join(cmd)}
    )
    return recs


def median_record(recs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the median value (a failed run if none succeeded)."""
    good = sorted((r for r in recs if r.get("ok")), key=lambda r: r["value"])
    if good:
        return good[len(good) // 2]
    return recs[0] if recs else None


def print_tables(args: argparse.Namespace, records: list[dict[str, Any]]) -> None:
    rows = [
        (c, h) for h in ("1.1", "2") if h in args.http
        for c in args.clients if h == "1.1" or dict(CLIENTS[args.face])[c]
    ]

    def find(key: str, http: str, metric: str, n: int | None) -> dict[str, Any] | None:
        return median_record([
            r for r in records
            if r.get("key") == key and r.get("http") == http and r.get("metric") == metric
            and (n is None or r.get("n") == n)
        ])

    def cell(r: dict[str, Any] | None, fmt: Any) -> str:
        if r is None:
            return ""
        return fmt(r) if r.get("ok") else "failed"

    sizes = sorted({r["n"] for r in records if r.get("metric") == "open_ms"})

    def table(title: str, metric: str, fmt: Any) -> None:
        print(f"\n### {title}\n")
        print("| client | HTTP | " + " | ".join(f"N={n}" for n in sizes) + " |")
        print("|---|---|" + "---:|" * len(sizes))
        for key, http in rows:
            cells = [cell(find(key, http, metric, n), fmt) for n in sizes]
            print(f"| {key} | {http} | " + " | ".join(cells) + " |")

    if sizes:
        table("Resident memory per idle source (KiB; RSS growth / N, after one event each)",
              "idle_kib_per_source", lambda r: f"{r['value']:.1f}")
        table("Time to open N sources (ms, until every source saw its open)", "open_ms",
              lambda r: f"{r['value']:.1f}")
        table("Connections the server saw (N sources to one origin)", "connections",
              lambda r: f"{r['value']:.0f}")
        table("Broadcast: events/s (write-paced, one event per write)", "broadcast_events_per_s",
              lambda r: f"{r['value']:.0f}")
        table("Broadcast: client CPU µs per event (server's in brackets)", "cpu_us_per_event",
              lambda r: f"{r['value']:.2f} ({r['server_cpu_us_per_event']:.2f})")

    def lat(r: dict[str, Any]) -> str:
        return f"{r['p50_us']:.0f} / {r['p99_us']:.0f} / {r['p999_us']:.0f} ({r['samples']})"

    bn = next((r["n"] for r in records if r.get("metric") == "latency_broadcast_us"), 0)
    print("\n### Latency, server write → callback: p50 / p99 / p99.9 µs (samples)\n")
    print(f"| client | HTTP | one source at 200 events/s | broadcast to {bn} sources |")
    print("|---|---|---:|---:|")
    for key, http in rows:
        a = cell(find(key, http, "latency_rate_us", None), lat)
        b = cell(find(key, http, "latency_broadcast_us", None), lat)
        print(f"| {key} | {http} | {a} | {b} |")

    failed: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if not r.get("ok"):
            what = f"{r['key']} HTTP/{r['http']} {r['metric']} N={r['n']}"
            failed.setdefault(what, []).append(r)
    if failed:
        print(f"\nFailed (runs of {args.runs}):")
        for what, rs in failed.items():
            first = rs[0].get("first_error")
            more = f"; first error: {first}" if first else ""
            print(f"- {what}: {len(rs)}× ({rs[0].get('error')}{more})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--face", required=True, choices=sorted(CLIENTS))
    ap.add_argument("--quick", action="store_true", help="about a minute: N = 1, 100, 1000")
    ap.add_argument("--json", metavar="PATH", help="append the records (JSON lines) to PATH")
    ap.add_argument("--n", help="the sizes, e.g. 1,100,1000,10000")
    ap.add_argument("--clients", help="the clients to run (default: all of the face)")
    ap.add_argument("--http", default="1.1", help="1.1, 2 or 1.1,2 (h2c: the clients that speak it)")
    ap.add_argument("--skip", default="", help="tasks to leave out: scale,rate,broadcast")
    ap.add_argument("--runs", type=int, default=1, help="every measurement R times, alternating")
    ap.add_argument("--h2-max-streams", type=int, help="the testserver's MAX_CONCURRENT_STREAMS")
    args = ap.parse_args()

    known = [c for c, _ in CLIENTS[args.face]]
    args.clients = args.clients.split(",") if args.clients else known
    for c in args.clients:
        if c not in known:
            ap.error(f"unknown client {c} (the {args.face} face has {','.join(known)})")
    args.http = args.http.split(",")
    if any(h not in ("1.1", "2") for h in args.http):
        ap.error("--http 1.1,2")
    args.skip = [s for s in args.skip.split(",") if s]
    if args.runs < 1:
        ap.error("--runs R, R ≥ 1")
    try:
        sizes = [int(v) for v in args.n.split(",")] if args.n else None
    except ValueError:
        ap.error("--n 1,100")
    args.n = sizes or ([1, 100, 1000] if args.quick else [1, 100, 1000, 10_000])

    limit = raise_fd_limit()
    server = TestServer(args.h2_max_streams)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    command = "bench/scale.py " + shlex.join(sys.argv[1:])
    print(f"{args.face}: testserver at {server.base}; open-files limit {limit}; load average {load}")
    records: list[dict[str, Any]] = []
    jobs = jobs_of(args, limit)
    total = len(jobs) * args.runs
    t0 = time.monotonic()
    try:
        # Runs alternate (every job once, then again) so that a noisy minute hits them all alike.
        for i, (repeat, job) in enumerate((r, j) for r in range(args.runs) for j in jobs):
            server.wait_idle()
            client, http, task, n, _ = job
            print(f"[{i + 1}/{total}] {client} HTTP/{http} {task} N={n} ... ", end="",
                  file=sys.stderr, flush=True)
            started = time.monotonic()
            got = run_one(args.face, job, server)
            print(f"{time.monotonic() - started:.1f} s", file=sys.stderr)
            for rec in got:
                rec.update(repeat=repeat, server_h2_max_streams=args.h2_max_streams or 200,
                           command=command, loadavg=load, cpus=len(os.sched_getaffinity(0)))
                records.append(rec)
            if args.json:  # as each measurement ends: an interrupted run keeps what it measured
                with open(args.json, "a") as out:
                    out.writelines(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in got)
    finally:
        server.stop()
    print(f"{total} measurements in {time.monotonic() - t0:.0f} s")
    if args.runs > 1:
        print(f"each cell: the run with the median value of {args.runs} runs")
    print_tables(args, records)
    if args.json:
        print(f"\nrecords appended to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
