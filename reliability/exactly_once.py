#!/usr/bin/env python3
"""Exactly once, in order, in every face: each face's `tail --json` program reads the
testserver's `/resume` route, which numbers its events, resumes after the request's
`Last-Event-ID` and cuts connections at seeded points (between events, inside a line, inside a
UTF-8 sequence; abrupt closes, RSTs, clean ends). After the last event the server answers 204,
which closes the source: the tail prints that error and exits 2.

Checked per face: every id 1..N delivered once, in order, with its exact data; one open per
connection; one CONNECTING error per drop; the 204 at the end; and, from the server's log,
that each request carried as `Last-Event-ID` the last id the face had printed.

    python3 reliability/exactly_once.py [--events N] [--drops D] [--seed S]
        [--linger MS --every E] [--faces rust,c,python,node] [--json OUT]

The faces run at once, against one testserver. Needs: target/debug/testserver and
target/debug/tail (`cargo build -p testserver -p examples`), target/ffi-c/tail
(`make -C ffi-c c-programs`), .venv with eventsource_native (`make -C py build`), and the Node
addon (`make -C node build`). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FACES = {
    "rust": [str(ROOT / "target/debug/tail")],
    "c": [str(ROOT / "target/ffi-c/tail")],
    "python": [str(ROOT / ".venv/bin/python"), str(ROOT / "examples/python/tail.py")],
    "node": ["node", str(ROOT / "examples/node/tail.mjs")],
}


def start_server() -> tuple[subprocess.Popen, str]:
    binary = ROOT / "target/debug/testserver"
    if not binary.exists():
        sys.exit(f"exactly_once: {binary} is missing: cargo build -p testserver -p examples")
    proc = subprocess.Popen(
        [str(binary), "--exit-on-eof", "--threads", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        sys.exit(f"exactly_once: unexpected first line from the testserver: {line!r}")
    return proc, line.removeprefix("listening on ")


def expected_data(n: int) -> str:
    return f"{n} \u00e9\U0001F600"


def sample_rss(proc: subprocess.Popen, out: list[int]) -> None:
    """The face program's resident set size (bytes), every half second from 2 s on."""
    time.sleep(2)
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out.append(int(line.split()[1]) * 1024)
        except OSError:
            return
        time.sleep(0.5)


def run_face(face: str, base: str, args: argparse.Namespace, seed: int, out: dict) -> None:
    token = f"eo-{face}-{seed}-{os.getpid()}"
    query = f"t={token}&count={args.events}&drops={args.drops}&seed={seed}&retry=0"
    if args.linger:
        query += f"&linger={args.linger}&every={args.every}"
    url = f"{base}/resume?{query}"
    cmd = FACES[face] + [url, "--json"]
    shown = shlex.join(cmd).replace(f"{ROOT}/", "").replace(base, "http://127.0.0.1:PORT")
    out.update(face=face, seed=seed, events=args.events, drops=args.drops, command=shown)
    missing = cmd[0] if not (Path(cmd[0]).exists() or cmd[0] == "node") else None
    if missing:
        out["problems"] = [f"{missing} is missing"]
        return
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    stderr: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    drain.start()
    timer = threading.Timer(args.timeout, proc.kill)
    timer.start()
    rss: list[int] = []
    sampler = threading.Thread(target=sample_rss, args=(proc, rss), daemon=True)
    sampler.start()

    seen = bytearray(args.events + 1)
    problems: list[str] = []
    tally = dict(delivered=0, duplicates=0, out_of_order=0, bad_data=0, opens=0, reconnects=0)
    expect = 1
    last: str | None = None
    sent_expected: list[str | None] = [None]
    final = None
    for raw in proc.stdout:
        try:
            line = json.loads(raw)
        except ValueError:
            problems.append(f"not a JSON line: {raw[:200]!r}")
            continue
        kind = line.get("kind")
        if kind == "open":
            tally["opens"] += 1
        elif kind == "message":
            tally["delivered"] += 1
            try:
                n = int(line["lastEventId"])
            except (KeyError, ValueError):
                problems.append(f"a message without a numeric lastEventId: {line}")
                continue
            if n != expect:
                tally["out_of_order"] += 1
                if len(problems) < 20:
                    problems.append(f"got id {n}, expected {expect}")
            if 1 <= n <= args.events:
                if seen[n]:
                    tally["duplicates"] += 1
                seen[n] = 1
            if line.get("data") != expected_data(n) or line.get("type") != "message":
                tally["bad_data"] += 1
                if len(problems) < 20:
                    problems.append(f"bad message: {line}")
            expect = n + 1
            last = str(n)
        elif kind == "error" and line.get("readyState") == 0:
            tally["reconnects"] += 1
            sent_expected.append(last)
        elif kind == "error":
            final = line
        else:
            problems.append(f"unexpected line: {line}")
    code = proc.wait()
    timer.cancel()
    drain.join(5)
    sampler.join(5)
    secs = time.monotonic() - started
    losses = sum(1 for n in range(1, args.events + 1) if not seen[n])

    if code != 2:
        problems.append(f"exit status {code} (expected 2, after the server's 204)")
    if final is None or final.get("status") != 204:
        problems.append(f"the last line is not the 204 error: {final}")
    if tally["opens"] != args.drops + 1:
        problems.append(f"{tally['opens']} opens, expected {args.drops + 1}")
    if tally["reconnects"] != args.drops + 1:
        problems.append(f"{tally['reconnects']} CONNECTING errors, expected {args.drops + 1}")
    with urllib.request.urlopen(f"{base}/log?t={token}") as r:
        log = json.load(r)
    sent = [e["headers"].get("last-event-id") for e in log]
    if sent != sent_expected:
        first = next(i for i, (a, b) in enumerate(zip(sent + [0], sent_expected + [0])) if a != b)
        problems.append(
            f"request {first + 1} sent Last-Event-ID {sent[first] if first < len(sent) else None!r}, "
            f"expected {sent_expected[first] if first < len(sent_expected) else None!r} "
            f"({len(sent)} requests, {len(sent_expected)} expected)"
        )
    if tally["duplicates"] or losses or tally["out_of_order"] or tally["bad_data"]:
        problems.append("not exactly once, in order")
    if stderr and stderr[0].strip() and problems:
        problems.append("stderr: " + stderr[0].decode(errors="replace")[-2000:])
    out.update(tally, losses=losses, requests=len(log), exit=code, secs=round(secs, 1), problems=problems)
    if rss:
        # The first sample is taken once the program has started and connected.
        out.update(rss_start=rss[0], rss_end=rss[-1], rss_max=max(rss))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=3000)
    p.add_argument("--drops", type=int, default=6)
    p.add_argument("--seed", type=int, default=1, help="face i uses seed + i")
    p.add_argument("--linger", type=int, default=0, help="ms a lingering connection waits before its cut")
    p.add_argument("--every", type=int, default=5, help="every E-th cut connection lingers")
    p.add_argument("--faces", default=",".join(FACES))
    p.add_argument("--timeout", type=float, default=None, help="seconds per face (default from the drops)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    faces = [f for f in args.faces.split(",") if f]
    for f in faces:
        if f not in FACES:
            p.error(f"unknown face {f!r} (known: {', '.join(FACES)})")
    if args.timeout is None:
        args.timeout = 120 + 6 * args.drops

    server, base = start_server()
    results = [dict() for _ in faces]
    threads = [
        threading.Thread(target=run_face, args=(f, base, args, args.seed + i, results[i]))
        for i, f in enumerate(faces)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stdin.close()
        server.wait(10)

    failed = False
    for r in results:
        status = "ok" if not r.get("problems") else "FAILED"
        failed |= status != "ok"
        print(
            f"{r['face']:>6}: {status}: {r.get('delivered', 0)}/{r['events']} events, "
            f"{r['drops']} drops, duplicates {r.get('duplicates', '-')}, losses {r.get('losses', '-')}, "
            f"{r.get('requests', '-')} requests, {r.get('secs', '-')} s"
        )
        for problem in r.get("problems", []):
            print(f"        {problem}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
