#!/usr/bin/env python3
"""The long forms of the reliability proofs, and the page that reports them.

    python3 reliability/soak.py [--minutes N] [--events 100000] [--drops 1000] [--out bench/RELIABILITY.md]

Runs, from the repository root (`make soak SOAK_MINUTES=N` builds what they need first):
- exactly once in every face: reliability/exactly_once.py with the long form, in the
  background while the rest runs;
- exactly once in the core, both transports (`exactly_once` tests, `--ignored`);
- create/close cycles, both transports (`leaks`, `--ignored`): live heap and RSS;
- create/close cycles in the C, Python and Node faces (their cycle tests' long forms): RSS and
  descriptors;
- the `retry: 0` storm (`faults`, `--ignored`): requests per second;
- the fault suite (`faults`) again and again until N minutes have passed since the start;
then writes the figures, each with the command that produced it, to the page. Exits 1 if any
part failed (the page then says which).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target/reliability"

# What the faces' tails need so that 1,000 drops are not spent in backoff: the core doubles a
# 100 ms floor per consecutive short connection and starts again after one stayed open 5 s;
# the tails have no backoff option. Every 5th cut connection stays open 5.5 s before its cut:
# per 5 drops about 0.1+0.2+0.4+0.8 s of backoff and one 5.5 s connection.
LINGER_MS = 5500
LINGER_EVERY = 5

failures: list[str] = []


def soak_lines(text: str) -> list[dict]:
    # Anywhere in a line: with -q, libtest's progress dots can come first.
    return [json.loads(m.group(1)) for m in re.finditer(r"SOAK (\{[^\n]*\})", text)]


def run(cmd: list[str], env: dict | None = None, timeout: float = 3600) -> tuple[int, str]:
    shown = shlex.join(cmd)
    if env:
        shown = " ".join(f"{k}={v}" for k, v in env.items()) + " " + shown
    print(f"== {shown}", flush=True)
    started = time.monotonic()
    p = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    print(f"   exit {p.returncode} after {time.monotonic() - started:.0f} s", flush=True)
    if p.returncode != 0:
        failures.append(f"`{shown}` exited {p.returncode}")
        sys.stdout.write(p.stdout[-4000:] + p.stderr[-4000:])
    return p.returncode, p.stdout + p.stderr


def cargo_test(test: str, *extra: str) -> list[str]:
    return ["cargo", "test", "-q", "-p", "eventsource-core", "--test", test, "--", *extra]


def mib(b: float) -> str:
    return f"{b / (1 << 20):.1f} MiB"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10, help="how long the fault suite repeats")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--drops", type=int, default=1000)
    p.add_argument("--storm-secs", type=int, default=60)
    p.add_argument("--cycles", type=int, default=100_000, help="create/close cycles per face test")
    p.add_argument("--out", type=Path, default=ROOT / "bench/RELIABILITY.md")
    args = p.parse_args()
    start = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)

    # 1. The faces, in the background (mostly waiting: lingering connections and backoff).
    faces_json = WORK / "faces.json"
    faces_cmd = [
        "python3", "reliability/exactly_once.py", "--events", str(args.events), "--drops", str(args.drops),
        "--linger", str(LINGER_MS), "--every", str(LINGER_EVERY), "--json", str(faces_json.relative_to(ROOT)),
    ]
    print(f"== {shlex.join(faces_cmd)} (background)", flush=True)
    faces_log = open(WORK / "faces.log", "w")
    faces = subprocess.Popen(faces_cmd, cwd=ROOT, stdout=faces_log, stderr=subprocess.STDOUT)

    # 2. The core's long forms.
    eo_cmd = cargo_test("exactly_once", "--ignored", "--nocapture")
    _, out = run(eo_cmd)
    core_eo = soak_lines(out)
    leaks_cmd = cargo_test("leaks", "--ignored", "--nocapture")
    _, out = run(leaks_cmd)
    leaks = soak_lines(out)
    face_cycles, face_cycle_cmds = run_face_cycles(args.cycles)
    storm_env = {"SOAK_STORM_SECS": str(args.storm_secs)}
    storm_cmd = cargo_test("faults", "--ignored", "--nocapture")
    _, out = run(storm_cmd, storm_env)
    storms = soak_lines(out)
    for name, got, want in [
        ("exactly_once", core_eo, 2), ("leaks", leaks, 2), ("storm", storms, 4), ("face cycles", face_cycles, 7)
    ]:
        if len(got) != want:
            failures.append(f"{name}: {len(got)} SOAK lines, expected {want}")

    # 3. The fault suite until the time is up (at least once).
    suite_cmd = cargo_test("faults")
    suite_runs = suite_passed = suite_failed = 0
    while True:
        code, out = run(suite_cmd)
        suite_runs += 1
        m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", out)
        if m:
            suite_passed += int(m.group(1))
            suite_failed += int(m.group(2))
        elif code != 0:
            suite_failed += 1
        if time.monotonic() - start >= args.minutes * 60:
            break

    # 4. The faces' result.
    faces_timeout = 600 + 8 * args.drops
    try:
        faces.wait(timeout=max(1, faces_timeout - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        faces.kill()
        failures.append(f"`{shlex.join(faces_cmd)}` did not finish in {faces_timeout} s")
    faces_log.close()
    if faces.returncode not in (0, None):
        failures.append(f"`{shlex.join(faces_cmd)}` exited {faces.returncode}")
        sys.stdout.write((WORK / "faces.log").read_text()[-4000:])
    face_results = json.loads(faces_json.read_text()) if faces_json.exists() else []

    minutes = (time.monotonic() - start) / 60
    write_page(args, minutes, core_eo, face_results, leaks, face_cycles, storms,
               (suite_runs, suite_passed, suite_failed),
               dict(faces=faces_cmd, eo=eo_cmd, leaks=leaks_cmd, face_cycles=face_cycle_cmds,
                    storm=(storm_env, storm_cmd), suite=suite_cmd))
    print(f"== wrote {args.out.relative_to(ROOT)} ({minutes:.0f} minutes)")
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures else 0


def run_face_cycles(cycles: int) -> tuple[list[dict], list[str]]:
    """Each face's create/close cycle test, long form; their SOAK lines (RSS and descriptors
    before and after, from the end of a warm-up)."""
    n = str(cycles)
    steps: list[tuple[list[str], dict]] = [
        ([str(ROOT / "target/ffi-c/test_ffi_shared")],
         {"ES_TESTSERVER": "target/debug/testserver", "ES_TEST_ONLY": "test_create_close_cycles",
          "ES_TEST_CYCLES": n, "ES_TEST_TRANSPORT": transport})
        for transport in ("default", "lean")
    ]
    steps.append((
        [".venv/bin/python", "-m", "pytest", "py/tests/test_lifecycle.py", "-q", "-s", "-p", "no:cacheprovider",
         "-k", "keep_memory_and_descriptors_flat"],
        {"ES_SOAK_CYCLES": n},
    ))
    steps.append((
        ["node", "--expose-gc", "--test", "--test-reporter=spec", "node/test/lifetime.test.mjs"],
        {"ES_SOAK_CYCLES": n},
    ))
    records: list[dict] = []
    shown: list[str] = []
    for cmd, env in steps:
        _, out = run(cmd, env, timeout=7200)
        records += soak_lines(out)
        shown.append(" ".join(f"{k}={v}" for k, v in env.items()) + " " + shlex.join(cmd).replace(str(ROOT) + "/", ""))
    return records, shown


def write_page(args, minutes, core_eo, faces, leaks, face_cycles, storms, suite, cmds) -> None:
    sh = shlex.join
    storm_env, storm_cmd = cmds["storm"]
    runs, passed, failed = suite
    drops_survived = sum(r["drops"] for r in core_eo) + sum(r.get("reconnects", 1) - 1 for r in faces)
    lines = [
        "# Reliability",
        "",
        "Figures from one run of `make soak SOAK_MINUTES="
        f"{args.minutes:g}` ({minutes:.0f} minutes) on a shared 2-core Linux machine "
        f"({platform.machine()}, {datetime.date.today().isoformat()}), each with the command that produced "
        "it, run from the repository root: the core's tests, the Rust `tail` and the C library in debug "
        "builds, the Python and Node addons as `make -C py build` and `make -C node build` make them "
        "(release). The short forms of the same checks run in `make test`; the tests and the harness are "
        "described in [`reliability/README.md`](../reliability/README.md).",
        "",
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        f"| fault cases survived | {passed} of {passed + failed} ({runs} runs of the fault suite) |",
        f"| dropped connections survived (exactly-once runs) | {drops_survived} |",
        f"| events delivered (exactly-once runs) | {sum(r['delivered'] for r in core_eo) + sum(r.get('delivered', 0) for r in faces)} |",
        f"| duplicates | {sum(r['duplicates'] for r in core_eo) + sum(r.get('duplicates', 0) for r in faces)} |",
        f"| losses | {sum(r['losses'] for r in core_eo) + sum(r.get('losses', 0) for r in faces)} |",
        f"| create/close cycles | {sum(r['cycles'] for r in leaks) + sum(r['cycles'] for r in face_cycles)} |",
        "",
        "## Exactly once across dropped connections",
        "",
        f"The testserver's `/resume` route: events `1..=N` with ids, resumed after `Last-Event-ID`, "
        f"connections cut at seeded points (between events, inside a line, inside a UTF-8 sequence; "
        f"abrupt closes, TCP RSTs and clean ends), then `204`. Checked: every id once, in order, with "
        f"its exact data, and each request's `Last-Event-ID` equal to the last id delivered.",
        "",
        "| who | events | drops | delivered | duplicates | losses | connections | time | RSS (start → end, max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in core_eo:
        lines.append(
            f"| core, {r['transport']} transport | {r['events']} | {r['drops']} | {r['delivered']} | "
            f"{r['duplicates']} | {r['losses']} | {r['connections']} | {r['secs']:.0f} s | |"
        )
    for r in faces:
        ok = "" if not r.get("problems") else " **FAILED**"
        rss = (
            f"{mib(r['rss_start'])} → {mib(r['rss_end'])}, {mib(r['rss_max'])}" if "rss_start" in r else ""
        )
        lines.append(
            f"| {r['face']} `tail`{ok} | {r['events']} | {r['drops']} | {r.get('delivered', 0)} | "
            f"{r.get('duplicates', '-')} | {r.get('losses', '-')} | {r.get('opens', '-')} | {r.get('secs', 0):.0f} s | {rss} |"
        )
    lines += [
        "",
        f"- core: `{sh(cmds['eo'])}` (backoff 1.0: consecutive reconnections wait the 100 ms floor)",
        f"- faces: `{sh(cmds['faces'])}`, each face's program being",
    ]
    for r in faces:
        lines.append(f"  - `{r['command']}`")
    lines += [
        "",
        f"  The tails use the default options (backoff ×2 from a 100 ms floor, reset after a connection "
        f"stayed open 5 s), so every {LINGER_EVERY}th cut connection stays open {LINGER_MS} ms before "
        "its cut: a run of 1,000 drops then takes about 1.5 s a drop instead of waiting 30 s (the cap) "
        "between most reconnections.",
        "",
        "## Memory over create/close cycles",
        "",
        "Sources created and ended four ways in turn (closed after the first event, closed while "
        "connecting, a handler source dropped without `close()`, dropped while reconnecting), after a "
        "warm-up. Live heap: the bytes allocated and not freed, counted by the test's allocator.",
        "",
        "| transport | cycles | time | live heap before → after | RSS before → after |",
        "|---|---|---|---|---|",
    ]
    for r in leaks:
        lines.append(
            f"| {r['transport']} | {r['cycles']} | {r['secs']:.0f} s | {r['live_before']} → {r['live_after']} bytes "
            f"({r['live_after'] - r['live_before']:+}) | {mib(r['rss_before'])} → {mib(r['rss_after'])} |"
        )
    lines += [
        "",
        f"- `{sh(cmds['leaks'])}`",
        "",
        "The faces: the same kind of cycles through each face's API, after a warm-up; RSS and open "
        "descriptors of the process. C: `es_source_new` then `es_source_free` (a third closed first, "
        "half with callbacks, some freed while connecting); Python: one asyncio loop, each source "
        "reads one event (`async for`, an `onmessage` callback, or iterated and let go without "
        "`close()`); Node: `new EventSource` then `close()`, and sources dropped without `close()` "
        "(collected by the garbage collector), in rounds of 1,000 with `gc()` between rounds.",
        "",
        "| face | what | cycles | RSS before → after | descriptors before → after |",
        "|---|---|---|---|---|",
    ]
    for r in face_cycles:
        if r.get("face") == "node":
            rss = f"{r['rss'] / 1024:+.0f} KiB (JS heap {r['heap'] / 1024:+.0f} KiB)"
            fds = f"requests still open on the server: {r['open']}"
            what = r["what"]
        else:
            rss = f"{r['rss_before_kib'] / 1024:.1f} → {r['rss_after_kib'] / 1024:.1f} MiB"
            fds = f"{r['fds_before']} → {r['fds_after']}"
            what = r.get("what") or f"{r['transport']} transport"
        lines.append(f"| {r.get('face', 'node')} | {what} | {r['cycles']} | {rss} | {fds} |")
    lines += [""] + [f"- `{c}`" for c in cmds["face_cycles"]] + [
        "",
        "## Request rate under a `retry: 0` storm",
        "",
        "Sources against `/scenario/instant-close?retry=0` (every response sets `retry: 0` and ends at "
        "once), all at the same time.",
        "",
        "| transport | backoff | sources | seconds | requests | requests/s | per source per second |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in storms:
        lines.append(
            f"| {r['transport']} | {r['backoff']:g} | {r['sources']} | {r['secs']} | {r['requests']} | "
            f"{r['per_second']:.1f} | {r['per_source_per_second']:.2f} |"
        )
    lines += [
        "",
        f"- `{' '.join(f'{k}={v}' for k, v in storm_env.items())} {sh(storm_cmd)}`",
        "",
        "## The fault suite",
        "",
        f"`{sh(cmds['suite'])}`, run {runs} times: {passed} cases passed, {failed} failed. Each case is "
        "one fault route on one transport (default, lean, and h2c where HTTP/2 differs): a reset "
        "mid-event and mid-UTF-8, accept-and-never-answer, headers then a stall, an endless line and "
        "an endless event, a redirect loop, a lying Content-Length, instant closes with `retry: 0`, "
        "and a flood of tiny events.",
        "",
    ]
    if failures:
        lines += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
