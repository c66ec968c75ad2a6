#!/usr/bin/env python3
"""`make bench-report`: fresh measurements of every face against its peers, then bench/RESULTS.md
and bench/charts/*.png rewritten from them (nothing else writes that page).

    python bench/report/report.py [--profile full|quick] [--out bench] [--run-dir target/bench-report]
                                  [--render-only] [--steps parser,e2e,scale,c,python,node]

Each step runs one benchmark with a machine-readable output in the run directory (cleared first,
so that every figure on the page comes from this run) and its log beside it. Every schema-1 JSON
lines file in the run directory (`*.jsonl`, bench/README.md "The record schema") feeds the scale
and latency tables, whichever face wrote it. `--render-only` rebuilds the page from the run
directory as it is, without measuring. The page says the profile, the machine, the load average
at the start of each step and the command of each table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Profile:
    """How much each step measures. `full` is the published page (< 30 min on 2 cores); `quick`
    checks the pipeline and gives indicative figures (`make bench`, a few minutes)."""

    parser_rounds: int
    e2e: list[str]
    scale: list[str]
    c_env: dict[str, str]
    python: str
    node: str


PROFILES = {
    "full": Profile(
        parser_rounds=15,
        e2e=["--runs", "5", "--idle", "10000"],
        scale=["--runs", "3"],
        c_env={"ES_BENCH_RUNS": "3"},
        python="--repeat 2",
        node="--reps 3",
    ),
    "quick": Profile(
        parser_rounds=5,
        e2e=["--runs", "1", "--idle", "2000", "--scale", "0.2"],
        scale=["--quick"],
        c_env={"ES_BENCH_RUNS": "1", "ES_BENCH_SCALE": "0.25"},
        python="--repeat 1 --scale 0.25",
        node="--reps 1 --scale 0.2",
    ),
}


# ---------------------------------------------------------------------------------------------
# Running the steps.


@dataclass
class Step:
    name: str
    title: str
    argv: list[str]
    output: str
    env: dict[str, str] = field(default_factory=dict)


def steps(p: Profile, run: Path) -> list[Step]:
    rel = run.relative_to(ROOT) if run.is_relative_to(ROOT) else run
    return [
        Step("build", "build the testserver and the Rust benchmarks", [
            "sh", "-c", "cargo build --release -p testserver && cargo build --profile bench "
            "-p eventsource-bench --bin quick --bin e2e --bin scale --bin tls_front"], ""),
        Step("parser", "parser vs sse-stream",
             ["target/release/quick", "", str(p.parser_rounds), "--json", f"{rel}/parser.json"],
             "parser.json"),
        Step("e2e", "Rust end to end and idle memory",
             ["target/release/e2e", *p.e2e, "--json", f"{rel}/e2e.json"], "e2e.json"),
        Step("scale", "Rust scale and latency",
             ["target/release/scale", *p.scale, "--json", f"{rel}/scale-rust.jsonl"],
             "scale-rust.jsonl"),
        Step("c", "C callbacks vs the Rust core",
             ["make", "-C", "ffi-c", "bench", f"BENCH_JSON={ROOT / rel}/c.json"], "c.json",
             p.c_env),
        Step("python", "Python vs httpx-sse and sseclient-py",
             ["make", "-C", "py", "bench", f"BENCH_ARGS={p.python}",
              f"BENCH_JSON={ROOT / rel}/python.json"], "python.json"),
        Step("node", "Node vs eventsource and eventsource-client",
             ["make", "-C", "node", "bench", f"BENCH_ARGS={p.node}",
              f"BENCH_JSON={ROOT / rel}/node.json"], "node.json"),
    ]


def face_scale_steps(quick: bool, run: Path) -> list[Step]:
    """The per-face scale harnesses: each face's `make -C FACE scale`, with SCALE_JSON (the
    schema-1 JSON lines it writes) and SCALE_ARGS (`--quick` in the quick profile)."""
    return [
        Step(f"scale-{face}", f"{face} scale and latency", [
            "make", "-C", directory, "scale", f"SCALE_JSON={run}/scale-{face}.jsonl",
            f"SCALE_ARGS={'--quick' if quick else ''}"], f"scale-{face}.jsonl")
        for face, directory in (("c", "ffi-c"), ("python", "py"), ("node", "node"))
    ]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def command_text(s: Step) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in s.env.items())
    cmd = s.argv[2] if s.argv[:2] == ["sh", "-c"] else shlex.join(s.argv)
    return f"{env} {cmd}".strip().replace(str(ROOT) + "/", "")


def run_steps(todo: list[Step], run: Path) -> None:
    meta_path = run / "steps.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    for s in todo:
        print(f"== {s.name}: {command_text(s)}", flush=True)
        rec: dict[str, Any] = {"title": s.title, "command": command_text(s), "loadavg": loadavg(),
               "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        t0 = time.monotonic()
        with open(run / f"{s.name}.log", "w") as log:
            proc = subprocess.Popen(s.argv, cwd=ROOT, env={**os.environ, **s.env},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
            rc = proc.wait()
        rec.update(seconds=round(time.monotonic() - t0, 1), rc=rc)
        meta[s.name] = rec
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
        print(f"== {s.name}: exit {rc} after {rec['seconds']:.0f} s", flush=True)


def machine() -> dict[str, Any]:
    model = next((ln.split(":", 1)[1].strip() for ln in
                  Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")

    def version(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.split("\n")[0].strip()
        except OSError:
            return "missing"

    return {"cpus": os.cpu_count(), "model": model, "kernel": platform.release(),
            "loadavg": loadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "rustc": version("rustc", "--version"), "python": platform.python_version(),
            "node": version("node", "--version")}


# ---------------------------------------------------------------------------------------------
# Reading the results.


def load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def scale_records(run: Path) -> list[dict[str, Any]]:
    """Every schema-1 record in the run directory's JSON lines files."""
    out = []
    for f in sorted(run.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(r, dict) and r.get("schema") == 1:
                out.append(r)
    return out


def ours(r: dict[str, Any]) -> bool:
    return bool(r.get("client") == "eventsource-core" or str(r.get("key", "")).startswith("ours"))


def median_records(recs: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """One record per (face, key, http, metric, n): the run with the median value, as scale
    prints them; a failed run is kept only when no run succeeded."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault((r["face"], r["key"], r["http"], r["metric"], r["n"]), []).append(r)
    out = {}
    for k, rs in groups.items():
        good = sorted((r for r in rs if r.get("ok") and r.get("value") is not None),
                      key=lambda r: r["value"])
        out[k] = good[(len(good) - 1) // 2] if good else rs[0]
    return out


# ---------------------------------------------------------------------------------------------
# Formatting.


def num(x: Optional[float], digits: int = 0) -> str:
    if x is None:
        return "–"
    if digits == 0 and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def si(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k" if x >= 1e4 else f"{x:.0f}"


def ratio(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.2f}×"


def table(head: list[str], rows: Iterable[list[str]], right: Iterable[int] = ()) -> list[str]:
    r = set(right)
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if i in r else "---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


class Page:
    def __init__(self, run: Path, meta: dict[str, Any]):
        self.run = run
        self.meta = meta
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def provenance(self, *names: str) -> None:
        """The machine state and the exact command under a table."""
        for n in names:
            m = self.meta.get(n)
            if m is None:
                self.add("", f"_Not run: step `{n}`._")
                continue
            failed = "" if m["rc"] == 0 else f"; **exit {m['rc']}**: see `{self.run.name}/{n}.log`"
            self.add("", f"_Command: `{m['command']}`; started {m['started']}, load average "
                     f"{m['loadavg']} (1, 5, 15 min) on {M['cpus']} CPUs; {m['seconds'] / 60:.1f} "
                     f"min{failed}._")


M: dict[str, Any] = {}
FACE = {"rust": "Rust", "c": "C", "python": "Python", "node": "Node"}


# ---------------------------------------------------------------------------------------------
# The sections.


def best_peer(rows: list[dict[str, Any]], value: Callable[[dict[str, Any]], float],
              is_ours: Callable[[dict[str, Any]], bool], low: bool = False) -> Optional[float]:
    vals = [value(r) for r in rows if not is_ours(r)]
    if not vals:
        return None
    return min(vals) if low else max(vals)


E2E_HEADLINE = ["ours/push", "default/push", "sse-stream/reqwest", "reqwest-eventsource"]
E2E_OURS = ("ours/", "default/")
E2E_LABEL = {"ours/push": "ours, lean transport", "default/push": "ours, default (reqwest)"}


def rust_section(page: Page, e2e: Optional[dict[str, Any]]) -> None:
    page.add("## Rust", "")
    if not e2e:
        page.add("_No end-to-end figures in this run._")
        return
    page.add(
        "One stream from the release testserver over loopback (`/stream`), counted in callbacks "
        "(`EventSource::with_handler`). The peers are each consumed in a task spawned on a 2-worker "
        "tokio runtime, their best configuration. CPU is the whole client process's (user + system); "
        "ratios: events/s over the best peer's, and the best peer's CPU per event over ours (above 1: "
        "ours uses less).", "")
    rows = []
    for w in dict.fromkeys(r["workload"] for r in e2e["rows"]):
        group = [r for r in e2e["rows"] if r["workload"] == w and r["client"] in E2E_HEADLINE]
        peer_rate = best_peer(group, lambda r: r["events_per_s"], lambda r: r["client"].startswith(E2E_OURS))
        peer_cpu = best_peer(group, lambda r: r["cpu_us_per_event"],
                             lambda r: r["client"].startswith(E2E_OURS), low=True)
        for r in sorted(group, key=lambda r: E2E_HEADLINE.index(r["client"])):
            mine = r["client"].startswith(E2E_OURS)
            rows.append([w, E2E_LABEL.get(r["client"], r["client"]), si(r["events_per_s"]),
                         num(r["mb_per_s"]), num(r["cpu_us_per_event"], 3),
                         ratio(r["events_per_s"] / peer_rate) if mine and peer_rate else "",
                         ratio(peer_cpu / r["cpu_us_per_event"]) if mine and peer_cpu else ""])
    page.add(*table(["workload", "client", "events/s", "MB/s", "CPU µs/event", "× best peer events/s",
                     "best peer CPU ÷ ours"], rows, right=[2, 3, 4, 5, 6]))
    page.provenance("e2e")
    idle = e2e.get("idle") or []
    if idle:
        page.add("", "Idle memory: resident memory growth per open source that got its one event and sits "
                 "idle, each figure in a fresh process.", "")
        page.add(*table(["sources", "client", "KiB per source"],
                        [[str(i["sources"]), i["label"], num(i["kib_per_source"], 1)
                          if i["kib_per_source"] is not None else f"failed: {i.get('error', '')}"]
                         for i in idle], right=[0, 2]))
        page.provenance("e2e")


SCALE_COLS = [
    ("idle_kib_per_source", "idle KiB/source", 1, True),
    ("open_ms", "open N (ms)", 0, True),
    ("broadcast_events_per_s", "broadcast events/s", None, False),
    ("cpu_us_per_event", "CPU µs/event", 2, True),
]


def scale_section(page: Page, face: str, recs: dict[tuple[Any, ...], dict[str, Any]],
                  step: str) -> None:
    mine = {k: r for k, r in recs.items() if k[0] == face}
    if not mine:
        page.add("", f"_No scale or latency records for this face in this run (any `*.jsonl` of "
                 f"schema 1 with `\"face\": \"{face}\"` in the run directory would appear here)._")
        return
    clients = list(dict.fromkeys((k[1], k[2]) for k in mine))
    sizes = sorted({k[4] for k in mine if k[3] == "open_ms"})
    n = sizes[-1] if sizes else None
    page.add("", f"Scale and latency (N = {n} sources for memory, open time and broadcast throughput; "
             "latency from the server's write to the callback). In brackets: ours over the best peer "
             "on the same HTTP version (below 1 is better for memory, time and latency).", "")
    head = ["client", "HTTP"] + [c[1] for c in SCALE_COLS] + [
        "200/s p50 / p99 / p99.9 µs", "broadcast p50 / p99 / p99.9 µs (N)"]
    rows = []

    def get(key: str, http: str, metric: str, size: Optional[int]) -> Optional[dict[str, Any]]:
        r = mine.get((face, key, http, metric, size))
        return r if r and r.get("ok") and r.get("value") is not None else None

    def lat(r: Optional[dict[str, Any]]) -> str:
        if not r:
            return "–"
        return f"{num(r.get('p50_us'))} / {num(r.get('p99_us'))} / {num(r.get('p999_us'))}"

    bsizes = sorted({k[4] for k in mine if k[3] == "latency_broadcast_us"})
    bn = bsizes[-1] if bsizes else None
    our_keys = {k[1] for k, r in mine.items() if ours(r)}
    for key, http in clients:
        is_ours = key in our_keys
        row = [key, http]
        for metric, _, digits, low in SCALE_COLS:
            r = get(key, http, metric, n)
            if r is None:
                failed = mine.get((face, key, http, metric, n))
                row.append("failed" if failed else "–")
                continue
            cell = si(r["value"]) if digits is None else num(r["value"], digits)
            peers = [get(k, h, metric, n) for k, h in clients if h == http and k not in our_keys]
            pv = [p["value"] for p in peers if p]
            if is_ours and pv:
                best = min(pv) if low else max(pv)
                cell += f" ({r['value'] / best:.2f}×)"
            row.append(cell)
        row.append(lat(get(key, http, "latency_rate_us", 1)))
        row.append(lat(get(key, http, "latency_broadcast_us", bn)) + (f" ({bn})" if bn else ""))
        rows.append(row)
    page.add(*table(head, rows))
    errs = [r for r in mine.values() if not r.get("ok") or r.get("errors")]
    if errs:
        page.add("", "Failed or with error events: " + "; ".join(
            f"{r['key']} HTTP/{r['http']} {r['metric']} N={r['n']}: "
            f"{r.get('error') or str(r.get('errors')) + ' errors: ' + str(r.get('first_error', ''))}"
            for r in errs[:8]) + ("." if len(errs) <= 8 else f"; and {len(errs) - 8} more."))
    cmds = sorted({r.get("command", "") for r in mine.values()} - {""})
    loads = sorted({r.get("loadavg", "") for r in mine.values()} - {""})
    if step in page.meta:
        page.provenance(step)
    elif cmds:
        page.add("", f"_Command: {', '.join(f'`{c}`' for c in cmds)}; load average at its start "
                 f"{', '.join(loads)}._")


def c_section(page: Page, rows: Optional[list[dict[str, Any]]]) -> None:
    page.add("", "## C", "")
    if not rows:
        page.add("_No C figures in this run._")
        return
    page.add("Events/s through the C callback API (release `libeventsource.so`, `ffi-c/benches/bench_c.c`) "
             "against the Rust core it wraps (`EventSource::with_handler`), on the same testserver stream, "
             "alternating runs, median. No C SSE library is measured as a peer: the C face's peer here is "
             "the Rust core, and the figure that matters is what the boundary costs.", "")
    page.add(*table(["workload", "events", "Rust core events/s", "C events/s", "C ÷ Rust", "FFI cost"],
                    [[r["workload"], num(r["events"]), si(r["rust_events_per_s"]), si(r["c_events_per_s"]),
                      ratio(r["c_events_per_s"] / r["rust_events_per_s"]), f"{r['ffi_cost_pct']:+.1f}%"]
                     for r in rows], right=[1, 2, 3, 4, 5]))
    page.provenance("c")


def py_ours(r: dict[str, Any]) -> bool:
    return bool(r["client"] == "eventsource_native")


def node_ours(r: dict[str, Any]) -> bool:
    return bool(r["client"] == "eventsource-native")


def python_section(page: Page, rows: Optional[list[dict[str, Any]]]) -> None:
    page.add("", "## Python", "")
    if not rows:
        page.add("_No Python figures in this run._")
        return
    page.add("One loopback stream from the release testserver (`/stream?size=B&chunk=C`), each cell the best "
             "of its repeats. CPU = the client process's (all threads); Python thread = the thread running "
             "the Python code (eventsource_native only). Ratios against the best peer (httpx-sse, "
             "sseclient-py) of the same row group.", "")
    out = []
    for g in dict.fromkeys((r["events"], r["chunk"]) for r in rows):
        group = [r for r in rows if (r["events"], r["chunk"]) == g]
        pr = best_peer(group, lambda r: r["events_per_s"], py_ours)
        pc = best_peer(group, lambda r: r["cpu_us_per_event"], py_ours, low=True)
        for r in group:
            mine = py_ours(r)
            out.append([g[0], g[1], r["client"], r["api"], si(r["events_per_s"]), num(r["mb_per_s"], 1),
                        num(r["cpu_us_per_event"], 2),
                        num(r["python_thread_us_per_event"], 2) if mine else "",
                        ratio(r["events_per_s"] / pr) if mine and pr else "",
                        ratio(pc / r["cpu_us_per_event"]) if mine and pc else ""])
    page.add(*table(["events", "HTTP chunks", "client", "API", "events/s", "MB/s", "CPU µs/event",
                     "Python thread µs/event", "× best peer events/s", "best peer CPU ÷ ours"], out,
                    right=[4, 5, 6, 7, 8, 9]))
    page.provenance("python")


def node_section(page: Page, rows: Optional[list[dict[str, Any]]]) -> None:
    page.add("", "## Node", "")
    if not rows:
        page.add("_No Node figures in this run._")
        return
    page.add("One loopback stream per fresh Node process, median of the runs: ASCII from the release "
             "testserver (16 KiB writes), and a text corpus (JSON whose words include `ünïcødé` and `日本語`, "
             "V8 two-byte strings) from a `node:http` server with 64 KiB writes. Every listener reads "
             "`data.length`. CPU = the whole process's; MB = event data bytes. `js-ceiling` is no network: "
             "`new MessageEvent` + `dispatchEvent` in a loop.", "")
    out = []
    for w in dict.fromkeys(r["workload"] for r in rows):
        group = [r for r in rows if r["workload"] == w and r["client"] != "js-ceiling"]
        pr = best_peer(group, lambda r: r["events_s"], node_ours)
        pc = best_peer(group, lambda r: r["cpu_per_mb"], node_ours, low=True)
        for r in [r for r in rows if r["workload"] == w]:
            mine = node_ours(r)
            out.append([w, r["client"], si(r["events_s"]), num(r["mb_s"]), num(r["cpu_per_mb"], 1),
                        ratio(r["events_s"] / pr) if mine and pr else "",
                        ratio(pc / r["cpu_per_mb"]) if mine and pc else ""])
    page.add(*table(["workload", "client", "events/s", "MB/s", "CPU ms/MB", "× best peer events/s",
                     "best peer CPU ÷ ours"], out, right=[2, 3, 4, 5, 6]))
    page.provenance("node")


ASCII = {"small", "json_1k_ascii", "llm_chunk_ascii"}


def parser_section(page: Page, rows: Optional[list[dict[str, Any]]]) -> None:
    page.add("", "### Parser", "")
    if not rows:
        page.add("_No parser figures in this run._")
        return
    page.add("Ours (spec-complete `MessageEvent`s) against `sse-stream` 0.3 (`SseByteStream` over an in-memory "
             "stream of the same `Bytes` chunks, its best configuration: no I/O, no runtime), every corpus "
             "~4 MiB; both must find every event before they are timed. The parsers alternate and each keeps "
             "its fastest run in thread CPU time. Floors: `simdutf8` validating the chunks alone, and `memchr` "
             "counting LFs alone. Pure-ASCII corpora first, then those whose words include `é` and `😀`.", "")
    order = sorted(rows, key=lambda r: (r["corpus"] not in ASCII, r["corpus"], r["chunk_kib"]))
    page.add(*table(["corpus", "text", "chunks", "ours MB/s", "sse-stream MB/s", "ours ÷ sse-stream",
                     "UTF-8 floor MB/s", "LF floor MB/s"],
                    [[r["corpus"], "ASCII" if r["corpus"] in ASCII else "non-ASCII", f"{r['chunk_kib']} KiB",
                      num(r["ours_mb_s"]), num(r["sse_stream_mb_s"]),
                      ratio(r["ours_mb_s"] / r["sse_stream_mb_s"]), num(r["utf8_floor_mb_s"]),
                      num(r["lines_floor_mb_s"])] for r in order], right=[3, 4, 5, 6, 7]))

    def span(names: set[str], key: Callable[[dict[str, Any]], float]) -> tuple[float, float]:
        v = [key(r) for r in rows if r["corpus"] in names]
        return (min(v), max(v)) if v else (float("nan"), float("nan"))

    def rat(r: dict[str, Any]) -> float:
        return float(r["ours_mb_s"] / r["sse_stream_mb_s"])

    ascii_json = {"json_1k_ascii", "llm_chunk_ascii"}
    mixed = {"json_1k", "llm_token", "llm_id", "multi_line", "crlf", "mixed"}
    a, b = span(ascii_json, rat), span(mixed, rat)
    # The share of sse-stream's time that validating the bytes alone would take (its validator
    # is simdutf8, the floor's), and the LF floor's range.
    def share(r: dict[str, Any]) -> float:
        return float(r["sse_stream_mb_s"] / r["utf8_floor_mb_s"] * 100)

    va, vb = span(ascii_json, share), span(mixed, share)
    lf = span(ascii_json | mixed, lambda r: r["lines_floor_mb_s"])
    ours_a = span(ascii_json, lambda r: r["ours_mb_s"])
    page.add("", f"On the pure-ASCII JSON shapes ours is {a[0]:.2f}–{a[1]:.2f}× `sse-stream`; on the corpora "
             f"whose words include `é` and `😀`, {b[0]:.2f}–{b[1]:.2f}×. Validating the bytes alone "
             f"(`simdutf8`, the validator `sse-stream` uses) would take {va[0]:.0f}–{va[1]:.0f}% of "
             f"`sse-stream`'s time on the ASCII shapes and {vb[0]:.0f}–{vb[1]:.0f}% on the others, while "
             f"finding the LFs alone runs at {lf[0]:,.0f}–{lf[1]:,.0f} MB/s on all of them: on ASCII the "
             f"lead comes from line scanning and event building ({ours_a[0]:,.0f}–{ours_a[1]:,.0f} MB/s), "
             "on non-ASCII text validation becomes a large part of `sse-stream`'s cost, where ours uses its "
             "own validator (core/src/utf8.rs: AVX2/AVX-512 where the CPU has them).")
    page.provenance("parser")


def e2e_guard(page: Page, e2e: Optional[dict[str, Any]]) -> None:
    page.add("", "### End to end against `sse-stream` over reqwest", "")
    if not e2e:
        page.add("_No end-to-end figures in this run._")
        return
    page.add("Every client of the end-to-end benchmark against `sse-stream` 0.3 over reqwest 0.12 (a parser, no "
             "EventSource), consumed in a task spawned on a 2-worker runtime (its best configuration: drained "
             "from a thread outside the runtime, every chunk wakes that thread). `ours/*` run on the lean "
             "transport, `default/*` on reqwest; push = callbacks, pull = `try_recv_many`, stream = "
             "`futures::Stream` on a 2-worker runtime, recv = blocking `recv_timeout`. Best run of each.", "")
    out = []
    for w in dict.fromkeys(r["workload"] for r in e2e["rows"]):
        group = [r for r in e2e["rows"] if r["workload"] == w]
        peer = next((r for r in group if r["client"] == "sse-stream/reqwest"), None)
        for r in group:
            out.append([w, r["client"], si(r["events_per_s"]), num(r["cpu_us_per_event"], 3),
                        num(r["server_cpu_us_per_event"], 3),
                        ratio(r["events_per_s"] / peer["events_per_s"]) if peer else "–",
                        ratio(peer["cpu_us_per_event"] / r["cpu_us_per_event"]) if peer else "–"])
    page.add(*table(["workload", "client", "events/s", "CPU µs/event", "server CPU µs/event",
                     "events/s ÷ sse-stream", "sse-stream CPU ÷ this"], out, right=[2, 3, 4, 5, 6]))
    page.provenance("e2e")


# ---------------------------------------------------------------------------------------------
# Targets: each computed from this run's figures.


def verdict(value: Optional[float], limit: float, low: bool, unit: str, fmt: str = "{:.2f}") -> str:
    """`low`: the value must be at most `limit`; else at least."""
    if value is None:
        return "not measured in this run"
    shown = fmt.format(value) + unit
    if (value <= limit) if low else (value >= limit):
        return f"**met** ({shown})"
    against = f"{shown} against {'≤' if low else '≥'} {fmt.format(limit)}{unit}"
    if low and value >= 2 * limit:
        return f"**missed**: {value / limit:.1f}× the limit ({against})"
    miss = (value / limit - 1) if low else (1 - value / limit)
    return f"**missed** by {miss * 100:.0f}% ({against})"


def worst(pairs: list[tuple[str, float]]) -> tuple[Optional[str], Optional[float]]:
    if not pairs:
        return None, None
    where, v = min(pairs, key=lambda p: p[1])
    return where, v


def targets(page: Page, e2e: Optional[dict[str, Any]], py: Optional[list[dict[str, Any]]],
            node: Optional[list[dict[str, Any]]], recs: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    page.add("", "## Targets", "", "Each verdict is computed from the figures above.", "",
             "### Issue 17 (scale, latency, every face against its peers)", "")
    rows = []
    # Ahead of every peer in events/s and CPU per MB on every corpus (CPU per event within a workload).
    for face, pairs in throughput_pairs(e2e, py, node).items():
        for what, key in (("events/s", 0), ("CPU per MB", 1)):
            where, v = worst([(w, p[key]) for w, p in pairs])
            rows.append([f"{face}: ahead of each peer in {what} on every corpus",
                         verdict(v, 1.0, False, "×") + (f"; lowest: {where}" if where else "")])
    rows.append(["C: ahead of each peer", "no C peer is measured (the C face is compared with the Rust core)"])
    faces = list(FACE) + sorted({k[0] for k in recs} - set(FACE))
    for face in faces:
        opens = [r for k, r in recs.items() if k[0] == face and k[3] == "open_ms" and k[4] >= 10000 and ours(r)]
        if not opens:
            ns = [k[4] for k in recs if k[0] == face and k[3] == "open_ms"]
            rows.append([f"{FACE.get(face, face)}: 10,000 sources without an error",
                         "not measured in this run" + (f" (largest N: {max(ns)})" if ns else "")])
            continue
        bad = [r for r in opens if not r.get("ok") or r.get("errors") or r.get("errors_while_opening")]
        rows.append([f"{FACE.get(face, face)}: 10,000 sources without an error",
                     "**met** (" + ", ".join(f"{r['key']} HTTP/{r['http']}" for r in opens) + ")" if not bad
                     else "**missed**: " + "; ".join(f"{r['key']} HTTP/{r['http']}: "
                                                     f"{r.get('error') or r.get('first_error') or 'errors'}"
                                                     for r in bad)])
    for face in faces:
        for r, peer in compare_ours(recs, face, "idle_kib_per_source", "1.1"):
            rows.append([f"{FACE.get(face, face)}: idle memory per source below the best peer's ({r['key']}, N={r['n']})",
                         verdict(r["value"] / peer if peer else None, 1.0, True, "× the best peer")])
    for face in ("rust", "c"):
        rs = [r for k, r in recs.items() if k[0] == face and k[3] == "latency_rate_us" and ours(r)]
        if not rs:
            rows.append([f"{FACE.get(face, face)}: single-source p99 ≤ 100 µs", "not measured in this run"])
        for r in rs:
            rows.append([f"{FACE.get(face, face)}: single-source p99 ≤ 100 µs ({r['key']}, HTTP/{r['http']})",
                         verdict(r.get("p99_us") if r.get("ok") else None, 100, True, " µs", "{:.0f}")])
    for face in faces:
        for http in ("1.1", "2"):
            for r, peer in compare_ours(recs, face, "latency_broadcast_us", http):
                rows.append([f"{FACE.get(face, face)}: broadcast p99 ≤ half the best peer's ({r['key']}, HTTP/{http}, N={r['n']})",
                             verdict(r["value"] / peer if peer else None, 0.5, True, "× the best peer")])
    h2 = [r for k, r in recs.items() if k[3] == "idle_kib_per_source" and k[2] == "2" and ours(r)]
    if h2:
        for r in h2:
            if r["n"] == max(x["n"] for x in h2 if x["face"] == r["face"]):
                rows.append([f"{FACE.get(r['face'], r['face'])}: HTTP/2 multiplexed sources ≤ 6 KiB each ({r['key']}, N={r['n']})",
                             verdict(r["value"] if r.get("ok") else None, 6, True, " KiB", "{:.1f}")])
    else:
        rows.append(["HTTP/2 multiplexed sources ≤ 6 KiB each", "not measured in this run"])
    page.add(*table(["target", "this run"], rows))

    page.add("", "### Issue 13 (the transports)", "")
    rows = []
    ev = {(r["workload"], r["client"]): r for r in (e2e or {}).get("rows", [])}
    work = list(dict.fromkeys(r["workload"] for r in (e2e or {}).get("rows", [])))

    def cpu(w: str, c: str) -> Optional[float]:
        r = ev.get((w, c))
        return r["cpu_us_per_event"] if r else None

    for w in [w for w in work if "one write per event" in w]:
        d, lean, peer = cpu(w, "default/push"), cpu(w, "ours/push"), cpu(w, "sse-stream/reqwest")
        rows.append([f"{w}: default CPU/event ≤ 3.5× lean's",
                     verdict(d / lean if d and lean else None, 3.5, True, "×")])
        rows.append([f"{w}: default CPU/event within 1.1× of sse-stream over reqwest (best configuration)",
                     verdict(d / peer if d and peer else None, 1.1, True, "×")])
    for w in [w for w in work if "16 KiB writes" in w]:
        d, lean, peer = cpu(w, "default/push"), cpu(w, "ours/push"), cpu(w, "sse-stream/reqwest")
        rows.append([f"{w}: default CPU/event within 1.25× of lean's",
                     verdict(d / lean if d and lean else None, 1.25, True, "×")])
        rows.append([f"{w}: default at least 1.5× sse-stream (its CPU/event ÷ ours)",
                     verdict(peer / d if d and peer else None, 1.5, False, "×")])
    idle = {i["kind"]: i for i in (e2e or {}).get("idle", [])}
    for kind, label, limit in (("default", "default over HTTP/1.1", 24.0), ("lean", "lean", 5.0),
                               ("h2c", "HTTP/2 multiplexed to one origin", 6.0)):
        i = idle.get(kind)
        n = f", {i['sources']} sources" if i else ""
        rows.append([f"idle memory, {label} ≤ {limit:g} KiB per source (target at 10,000{n})",
                     verdict(i["kib_per_source"] if i else None, limit, True, " KiB", "{:.1f}")])
    page.add(*table(["target", "this run"], rows))
    page.add("", "CPU per event is the comparison used for the transport targets: on two cores shared with the "
             "server it is steadier than events/s.")


def throughput_pairs(e2e: Optional[dict[str, Any]], py: Optional[list[dict[str, Any]]],
                     node: Optional[list[dict[str, Any]]]) -> dict[str, list[tuple[str, tuple[float, float]]]]:
    """Per face: (where, (ours ÷ best peer events/s, best peer CPU ÷ ours CPU)) for every one of
    our configurations on every workload."""
    out: dict[str, list[tuple[str, tuple[float, float]]]] = {}
    for w in dict.fromkeys(r["workload"] for r in (e2e or {}).get("rows", [])):
        g = [r for r in e2e["rows"] if r["workload"] == w] if e2e else []
        peers = [r for r in g if r["client"] in ("sse-stream/reqwest", "reqwest-eventsource")]
        for c, face in (("ours/push", "Rust (lean)"), ("default/push", "Rust (default)")):
            r = next((r for r in g if r["client"] == c), None)
            if r and peers:
                out.setdefault(face, []).append((w, (
                    r["events_per_s"] / max(p["events_per_s"] for p in peers),
                    min(p["cpu_us_per_event"] for p in peers) / r["cpu_us_per_event"])))
    for ev, ch in dict.fromkeys((r["events"], r["chunk"]) for r in py or []):
        grp = [r for r in py or [] if (r["events"], r["chunk"]) == (ev, ch)]
        peers = [r for r in grp if not py_ours(r)]
        for r in grp:
            if py_ours(r) and peers:
                out.setdefault("Python", []).append((f"{ev}, {ch}, {r['api']}", (
                    r["events_per_s"] / max(p["events_per_s"] for p in peers),
                    min(p["cpu_us_per_event"] for p in peers) / r["cpu_us_per_event"])))
    for w in dict.fromkeys(r["workload"] for r in node or []):
        grp = [r for r in node or [] if r["workload"] == w]
        peers = [r for r in grp if r["client"] not in ("eventsource-native", "js-ceiling")]
        r = next((r for r in grp if r["client"] == "eventsource-native"), None)
        if r and peers:
            out.setdefault("Node", []).append((w, (
                r["events_s"] / max(p["events_s"] for p in peers),
                min(p["cpu_per_mb"] for p in peers) / r["cpu_per_mb"])))
    return out


def compare_ours(recs: dict[tuple[Any, ...], dict[str, Any]], face: str, metric: str,
                 http: str) -> list[tuple[dict[str, Any], Optional[float]]]:
    """Our records of `metric` at the largest N a peer also reached, each with the best (lowest)
    peer value there."""
    rs = {k: r for k, r in recs.items() if k[0] == face and k[3] == metric and k[2] == http
          and r.get("ok") and r.get("value") is not None}
    peer_ns = {k[4] for k, r in rs.items() if not ours(r)}
    if not peer_ns:
        return []
    n = max(peer_ns & {k[4] for k, r in rs.items() if ours(r)}, default=None)
    if n is None:
        return []
    best = min(r["value"] for k, r in rs.items() if k[4] == n and not ours(r))
    return [(r, best) for k, r in rs.items() if k[4] == n and ours(r)]


# ---------------------------------------------------------------------------------------------
# Charts.


def charts(out: Path, e2e: Optional[dict[str, Any]], c: Optional[list[dict[str, Any]]],
           py: Optional[list[dict[str, Any]]], node: Optional[list[dict[str, Any]]],
           recs: list[dict[str, Any]], med: dict[tuple[Any, ...], dict[str, Any]]) -> list[tuple[str, str]]:
    import matplotlib  # type: ignore[import-not-found]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    made = []

    # Throughput per face vs its peers.
    panels: list[tuple[str, list[str], dict[str, list[float]]]] = []
    if e2e:
        ws = list(dict.fromkeys(r["workload"] for r in e2e["rows"]))
        series = {E2E_LABEL.get(cl, cl): [next((r["events_per_s"] for r in e2e["rows"]
                                               if r["workload"] == w and r["client"] == cl), 0) for w in ws]
                  for cl in E2E_HEADLINE}
        panels.append(("Rust (end to end)", ws, series))
    if c:
        ws = [r["workload"] for r in c]
        panels.append(("C vs the Rust core", ws, {"Rust core": [r["rust_events_per_s"] for r in c],
                                                 "C callbacks": [r["c_events_per_s"] for r in c]}))
    if py:
        gs = list(dict.fromkeys((r["events"], r["chunk"]) for r in py))
        names = list(dict.fromkeys(f"{r['client']} ({r['api']})" for r in py))
        panels.append(("Python", [f"{a}, {b}" for a, b in gs], {
            n: [next((r["events_per_s"] for r in py if (r["events"], r["chunk"]) == g
                      and f"{r['client']} ({r['api']})" == n), 0) for g in gs] for n in names}))
    if node:
        ws = list(dict.fromkeys(r["workload"] for r in node))
        names = [n for n in dict.fromkeys(r["client"] for r in node) if n != "js-ceiling"]
        panels.append(("Node", ws, {n: [next((r["events_s"] for r in node if r["workload"] == w
                                              and r["client"] == n), 0) for w in ws] for n in names}))
    if panels:
        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
        for ax, (title, ws, series) in zip(axes[:, 0], panels):
            h = 0.8 / len(series)
            for i, (name, vals) in enumerate(series.items()):
                ax.barh([j + i * h for j in range(len(ws))], vals, height=h, label=name)
            # DejaVu Sans has no CJK glyphs.
            ax.set_yticks([j + 0.4 - h / 2 for j in range(len(ws))], [w.replace("日本語", "CJK") for w in ws],
                          fontsize=8)
            ax.invert_yaxis()
            ax.set_xscale("log")
            # Bars on a log axis start at its left edge: put that well below the smallest bar.
            low = min((v for vals in series.values() for v in vals if v > 0), default=1)
            ax.set_xlim(left=low / 10)
            ax.set_xlabel("events/s (log)")
            ax.set_title(title)
            ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=90)
        plt.close(fig)
        made.append(("throughput.png", "Throughput per face against its peers (events/s, log scale)"))

    # Memory per idle source vs N.
    mem: dict[str, list[tuple[int, float]]] = {}
    for k, r in med.items():
        if k[3] == "idle_kib_per_source" and r.get("ok") and r.get("value") is not None:
            mem.setdefault(f"{k[0]}: {k[1]} HTTP/{k[2]}", []).append((k[4], r["value"]))
    if mem:
        fig, ax = plt.subplots(figsize=(10, 5))
        for name, pts in sorted(mem.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    linestyle="-" if "ours" in name else "--", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("idle open sources (N, log)")
        ax.set_yscale("log")  # at N = 1 the fixed costs dwarf the per-source ones
        ax.set_ylabel("KiB per source (log)")
        ax.set_title("Resident memory per idle source")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=90)
        plt.close(fig)
        made.append(("memory.png", "Resident memory per idle source against N"))

    # Latency percentiles.
    lat = [(k, r) for k, r in med.items() if k[3] in ("latency_rate_us", "latency_broadcast_us")
           and r.get("ok") and r.get("p50_us") is not None]
    if lat:
        fig, axes = plt.subplots(1, 2, figsize=(12, 5), squeeze=False)
        for ax, metric, title in ((axes[0, 0], "latency_rate_us", "one source, 200 events/s"),
                                  (axes[0, 1], "latency_broadcast_us", "broadcast")):
            sel = sorted([(k, r) for k, r in lat if k[3] == metric], key=lambda kr: (kr[0][0], kr[0][1], kr[0][2]))
            if not sel:
                ax.set_axis_off()
                ax.set_title(f"{title}: no records in this run")
                continue
            labels = [f"{k[0]}: {k[1]} HTTP/{k[2]}" + (f" N={k[4]}" if k[4] > 1 else "") for k, _ in sel]
            for i, (p, name) in enumerate((("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))):
                ax.barh([j + i * 0.27 for j in range(len(sel))], [r.get(p) or 0 for _, r in sel],
                        height=0.27, label=name)
            ax.set_yticks([j + 0.27 for j in range(len(sel))], labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xscale("log")
            ax.set_xlabel("µs from the server's write to the callback (log)")
            ax.set_title(title)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=90)
        plt.close(fig)
        made.append(("latency.png", "Latency percentiles, server write to callback"))
    return made


# ---------------------------------------------------------------------------------------------
# The page.

# Why the targets that the figures miss are missed: each from a profile, with how it was taken.
MISSES = [
    ("Idle memory of the default transport over HTTP/1.1",
     "heaptrack over 2,000 idle sources (live allocations at exit): per connection, hyper's dispatch "
     "channel (a tokio mpsc block, 8,992 B), its 8 KiB header write buffer and 8 KiB read buffer, "
     "reqwest's boxed connection (1,104 B, sized for TLS on plain http), hyper-util's connection tasks "
     "(~870 B); the source's own task is 1,024 B (`RUSTC_BOOTSTRAP=1 cargo rustc --release -p "
     "eventsource-core --lib -- -Zprint-type-sizes`). Going lower needs reqwest to pass hyper-util's "
     "`http1_read_buf_exact_size`, and hyper options for its write buffer and a smaller dispatch channel."),
    ("Rust events/s on 1 KB JSON in 16 KiB writes",
     "at 2 GB/s of event data the client and the testserver share two cores: events/s follows the "
     "server's share of them, which is why the client's CPU per event is the steadier column (there, "
     "ours leads or ties). Ours builds spec-complete events (type, data, id, origin as shared strings) "
     "where `sse-stream` yields raw field blocks; the parser guards below compare that work alone"),
    ("Rust default transport, CPU on one-write-per-event streams",
     "each event is a chunk, handed from hyper's connection task to the source's task and back: two "
     "task wake-ups per event. tokio runs at most three woken tasks in a row from its LIFO slot; the "
     "next goes to the run queue and wakes the idle worker (`perf`: the eventfd write is ~14% of the "
     "client's CPU, that worker's sleeping and waking ~15%). `sse-stream` pays the same reqwest and "
     "the same wake-ups; the lean transport reads the socket in the source's own task. A second poll "
     "of the body to batch the chunks already there measured no faster"),
    ("Rust default transport, 1 KB JSON in 16 KiB writes, 1.5× `sse-stream`",
     "above what the parser's lead can show end to end: the parsers alone are about 1.5× apart on "
     "ASCII 1 KB JSON (the guards below), and both clients also pay the same per byte (the kernel's copy "
     "of each read, ~14% of the client's CPU) and per wake-up of an idle thread when the server is "
     "slower than the client. The lean transport, with no reqwest at all, stays below 1.5× too"),
    ("Idle memory of the default transport against the peers (Python)",
     "the bytes above are reqwest's and hyper's, and reqwest-eventsource pays them too; ours adds the "
     "source's task, its request state and its parser's buffers (about 4 KiB, not profiled apart). "
     "aiohttp keeps a plain socket and a small read buffer per stream. The lean transport is the "
     "answer for many idle streams: below every peer in every face"),
    ("Node, small events",
     "the `js-ceiling` row is `new MessageEvent` + `dispatchEvent` in a loop with no network: those two "
     "take most of our time per small event. Node's `MessageEvent` constructor defines its five fields "
     "with `Object.defineProperties`, about twice the cost of constructing a bare `Event` (a loop of "
     "2,000,000 of each under `node`). The contract gives listeners real `MessageEvent`s on a real "
     "`EventTarget`; `eventsource-client` hands plain objects to a callback"),
    ("Latency p99 and broadcast p99",
     "the testserver, the client and other work share two cores: a p99 is a scheduling delay of the "
     "machine, tens of times the p50; compare the p50s, and read the p99 targets on a quiet machine."),
]

DESIGN_NOTES = [
    ("A thread outside the runtime draining a reqwest body (`block_on` on a 2-worker runtime)",
     "every chunk wakes that thread: several µs per event; the default transport consumes the body in a task "
     "spawned on the runtime, and every peer is measured that way"),
    ("Line-end bitmaps per 4 KiB window (SSE2 per 64 bytes, then AVX-512 compares)",
     "slower than the per-window scan plus `memchr2` for long lines on every corpus"),
    ("The event taking the parser's data buffer at dispatch (no copy)",
     "the allocator's shrink-and-grow cost more than the copy it saved"),
    ("Making the event kind byte an enum to hold `Event`'s tag",
     "events moved as one byte plus 95 unaligned ones: store-forwarding stalls, ~40% slower on small events"),
    ("Holding back per-chunk count releases in a thread-local", "no change in CPU per event; not kept"),
    ("Reading a reqwest body through `Response::chunk` (one boxed layer fewer per chunk than `reqwest::Body`)",
     "no change in CPU per event in alternating runs, and each source kept the response's URL and parts: "
     "+0.3 KiB per idle HTTP/2 source"),
    ("Handing push events over in pieces of 64 per read",
     "push unchanged, `Stream` consumers slower (many small appends and wake-ups)"),
    ("A wake-up pipe per Python source", "three descriptors a source capped a process near 6,650 sources; "
     "one wake-up per event loop instead"),
    ("Prefetching the next event's data, or aligning long data before decoding it in Python",
     "no measurable change"),
]


def render(run: Path, out: Path, profile: str) -> None:
    meta = load(run / "steps.json") or {}
    M.update(load(run / "machine.json") or machine())
    parser, e2e = load(run / "parser.json"), load(run / "e2e.json")
    c, py, node = load(run / "c.json"), load(run / "python.json"), load(run / "node.json")
    recs = scale_records(run)
    med = median_records(recs)
    page = Page(run, meta)
    total = sum(m["seconds"] for m in meta.values()) / 60
    page.add("# Benchmark results", "",
             "Every figure on this page comes from one run of "
             + ("`make bench-report`" if profile == "full" else f"bench/report/report.py, {profile} profile")
             + " (the only writer of this page and `bench/charts/`); every ratio and verdict is computed from "
             "the figures of that run. Earlier figures are in the history of this file.", "",
             f"Machine: {M['cpus']} CPUs ({M['model']}), Linux {M['kernel']}, {M['rustc']}, Python "
             f"{M['python']}, Node {M['node']}. Run started {M['date']} with a load average of {M['loadavg']} "
             f"(1, 5, 15 min); all steps took {total:.0f} min, builds included. Each table names its command and the load "
             "average when that step started: other work on the machine makes figures swing between runs, "
             "so compare rows within a table.")
    if profile == "quick":
        page.add("", "**Quick profile**: fewer events, runs and sources than the full report (`make "
                 "bench-report`); indicative figures, not the published ones.")
    failed = [n for n, m in meta.items() if m["rc"] != 0]
    if failed:
        page.add("", "**Steps that failed in this run**: " + ", ".join(f"`{n}` (exit {meta[n]['rc']})"
                                                                       for n in failed) + ".")
    page.add("", "Contents: [Rust](#rust) · [C](#c) · [Python](#python) · [Node](#node) · [Charts](#charts) · "
             "[Targets](#targets) · [Regression guards](#regression-guards-against-sse-stream) · "
             "[Design notes](#design-notes)", "")
    rust_section(page, e2e)
    scale_section(page, "rust", med, "scale")
    c_section(page, c)
    scale_section(page, "c", med, "scale-c")
    python_section(page, py)
    scale_section(page, "python", med, "scale-python")
    node_section(page, node)
    scale_section(page, "node", med, "scale-node")
    page.add("", "## Charts", "")
    try:
        made = charts(out / "charts", e2e, c, py, node, recs, med)
        for f, alt in made:
            page.add(f"![{alt}](charts/{f})", "")
        if not made:
            page.add("_No figures to chart in this run._", "")
    except ImportError:
        page.add("_matplotlib is not installed: no charts (`make bench-report` installs it in .venv-bench)._", "")
    targets(page, e2e, py, node, med)
    page.add("", "### Where the misses come from", "",
             "From profiles, not from this run: what a missed target costs and where the bytes or the time go.", "")
    page.add(*[f"- **{what}**: {why}" for what, why in MISSES])
    page.add("", "## Regression guards against `sse-stream`")
    parser_section(page, parser)
    e2e_guard(page, e2e)
    page.add("", "## Design notes", "", "Tried and dropped, with the reason:", "")
    page.add(*[f"- {what}: {why}." for what, why in DESIGN_NOTES])
    page.add("", "## Reproduce", "", "```sh", "make bench-report          # this page, full profile (< 30 min)",
             "make bench                 # the quick profile, into target/bench-report-quick/page/", "```", "",
             "The steps of this run, in order:", "")
    page.add(*[f"- {m['title']}: `{m['command']}`" for m in meta.values()])
    text = "\n".join(page.lines).rstrip() + "\n"
    (out / "RESULTS.md").write_text(text)
    print(f"wrote {out / 'RESULTS.md'} ({text.count(chr(10))} lines)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full")
    ap.add_argument("--out", default="bench", help="where RESULTS.md and charts/ go")
    ap.add_argument("--run-dir", default="target/bench-report", help="the measurements of this run")
    ap.add_argument("--render-only", action="store_true", help="rebuild the page from --run-dir")
    ap.add_argument("--steps", default="", help="run only these steps (comma-separated), keep the others' files")
    args = ap.parse_args()
    run = (ROOT / args.run_dir).resolve()
    out = (ROOT / args.out).resolve()
    if not args.render_only:
        todo = steps(PROFILES[args.profile], run) + face_scale_steps(args.profile == "quick", run)
        if args.steps:
            todo = [s for s in todo if s.name in args.steps.split(",")]
            run.mkdir(parents=True, exist_ok=True)
        else:
            shutil.rmtree(run, ignore_errors=True)
            run.mkdir(parents=True)
            (run / "machine.json").write_text(json.dumps(machine(), indent=1) + "\n")
            (run / "profile").write_text(args.profile)
        run_steps(todo, run)
    profile = (run / "profile").read_text().strip() if (run / "profile").exists() else args.profile
    render(run, out, profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
