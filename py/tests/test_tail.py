"""examples/python/tail.py: same output as the Rust tail; exit codes; mypy --strict."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT

TAIL = ROOT / "examples" / "python" / "tail.py"
JITTER = re.compile(r"reconnecting in \d+ ms")


def run_py(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TAIL), *args], capture_output=True, text=True, timeout=30
    )


def run_rust(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)


# A message named `error`, then a type, an id and data with ESC, BEL, DEL, C1 (U+0085, U+009B),
# U+0001 and a tab; then a backslash (the same scenarios as ffi-c/tests/tail_compare.py).
CONTROLS = ("event: error\ndata: e\x1b[31mred\n\n"
            "event: up\x07\nid: i\x1bd\u009b\ndata: a\tb\u0085c\x7fd\x01\ndata: two\\\n\n")

SCENARIOS = [
    # (name, script params, extra args)
    ("messages", {"c1": "id: 1\ndata: héllo\n\nevent: upd\ndata: a\\b\n\ndata: x\ndata: y\n\n"},
     ["--events", "upd"]),
    ("reconnect", {"c1": "retry: 50\nid: 9\ndata: one\n\n", "c2": "data: two\n\n"}, []),
    ("status", {"s1": "500", "c1": "data: x\n\n"}, []),
    ("ctype", {"ct1": "text/plain", "c1": "data: x\n\n"}, []),
    ("unlistened", {"c1": "event: other\ndata: no\n\ndata: yes\n\n"}, []),
    ("max", {"c1": "data: 1\n\ndata: 2\n\ndata: 3\n\n", "hold1": "1"}, ["--max-events", "2"]),
    ("error-named", {"c1": CONTROLS, "c2": "data: z\n\n"}, ["--events", "error,up\x07"]),
    ("error-named-unlistened", {"c1": CONTROLS + "data: m\n\n", "hold1": "1"},
     ["--events", "up\x07", "--max-events", "2"]),
]

# Human output: the same scenarios, compared as text (no JSON layer to hide an escaping
# difference).
TEXT_SCENARIOS = [
    ("error-named-text", {"c1": CONTROLS + "data: m\n\n", "hold1": "1"},
     ["--events", "up\x07", "--max-events", "2"]),
    ("error-named-uncounted", {"c1": "event: error\ndata: \x1b]0;title\x07\n\ndata: ok\n\n",
                               "hold1": "1"}, ["--max-events", "1"]),
    ("error-named-listened-text", {"c1": CONTROLS, "c2": "data: z\n\n"}, ["--events", "error"]),
    ("human-reconnect", {"c1": "id: 5\ndata: a\ndata: b\\c\n\n", "s2": "404", "c2": "x"}, []),
]


def lines_of(out: str) -> list[str]:
    """Lines end at LF only (splitlines() would also cut at U+0085, which JSON keeps raw)."""
    lines = out.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [JITTER.sub("reconnecting in N ms", line) for line in lines]


@pytest.mark.parametrize("name, params, extra", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_json_matches_rust_tail(
    server: Any, rust_tail: Path, name: str, params: dict[str, str], extra: list[str]
) -> None:
    results = []
    for runner in ("py", "rust"):
        url = server.script(server.token(name), **params)
        args = [url, "--json", "--retry", "50", *extra]
        r = run_py(*args) if runner == "py" else run_rust(rust_tail, *args)
        # After the first failure in a run the reconnection delay has random jitter: the
        # number of milliseconds may differ. The origin carries the same port for both.
        lines = [json.loads(line) for line in lines_of(r.stdout)]
        results.append((r.returncode, lines))
    assert results[0] == results[1]
    assert results[0][1], "no output"


@pytest.mark.parametrize("name, params, extra", TEXT_SCENARIOS, ids=[s[0] for s in TEXT_SCENARIOS])
def test_text_matches_rust_tail(
    server: Any, rust_tail: Path, name: str, params: dict[str, str], extra: list[str]
) -> None:
    results = []
    for runner in ("py", "rust"):
        url = server.script(server.token(name), **params)
        args = [url, "--retry", "50", *extra]
        r = run_py(*args) if runner == "py" else run_rust(rust_tail, *args)
        # The origin is not printed in text mode: the two runs' lines compare as they are.
        results.append((r.returncode, lines_of(r.stdout)))
    assert results[0] == results[1]
    assert results[0][1], "no output"


def test_max_events_stops_before_the_stream_ends(server: Any) -> None:
    """The stream ends ~20 ms after the last counted event: tail stops at that event, as the Rust
    one does; the end of the stream must not reach the error listener once tail is done (it did
    when the source stayed open after iteration, in about one run in five)."""
    url = server.url("stream?count=3&size=8&rate=50&id=1")
    for _ in range(8):
        r = run_py(url, "--json", "--max-events", "3")
        kinds = [json.loads(line)["kind"] for line in r.stdout.splitlines()]
        assert (r.returncode, kinds) == (0, ["open", "message", "message", "message"])


def test_human_output(server: Any) -> None:
    url = server.script(server.token(), c1="id: 5\ndata: a\ndata: b\\c\n\n", s2="404", c2="x")
    r = run_py(url, "--retry", "50")
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert lines[0] == "open"
    assert lines[1] == "message #5: a\\nb\\\\c"
    assert lines[2].startswith("error: the server ended the stream") and lines[2].endswith(
        ", reconnecting"
    )
    assert lines[3].endswith("(HTTP 404), closed")


@pytest.mark.parametrize("args", [[], ["http://x", "--retry", "abc"], ["http://x", "--bogus"],
                                  ["not a url"], ["http://x", "--header", "novalue"]])
def test_bad_arguments_exit_64(args: list[str]) -> None:
    r = run_py(*args)
    assert r.returncode == 64
    assert r.stdout == ""
    assert "tail:" in r.stderr


def test_mypy_strict_on_the_example() -> None:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy is not installed in this environment")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(TAIL)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_on_the_package() -> None:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy is not installed in this environment")
    package = Path(__file__).resolve().parents[1] / "python" / "eventsource_native"
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(package)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_stub_matches_the_native_module() -> None:
    if shutil.which("stubtest", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy (stubtest) is not installed in this environment")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "eventsource_native._native"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
