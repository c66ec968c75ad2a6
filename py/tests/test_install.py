"""Packaging: `pip install ./py` (maturin as the PEP 517 backend, build isolation) and a wheel
from `maturin build`, each into a brand-new virtualenv, then used from outside the source tree.

Both builds reuse the shared cargo `target/` (CARGO_TARGET_DIR), so they cost a few seconds
when the extension is already built, plus one download of maturin into pip's cache.
Set EVENTSOURCE_PIP_TEST=0 to skip them (e.g. offline: `pip install ./py` needs PyPI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import ROOT, Server

pytestmark = pytest.mark.skipif(
    os.environ.get("EVENTSOURCE_PIP_TEST") == "0", reason="EVENTSOURCE_PIP_TEST=0"
)

# What the fresh environment runs: the installed package (not the source tree), its typing
# files, a real stream from the testserver, and the tail example.
CHECK = r"""
import json, pathlib, subprocess, sys
import eventsource_native as m
from eventsource_native import EventSource, MessageEvent

pkg = pathlib.Path(m.__file__).parent
assert pkg.is_relative_to(pathlib.Path(sys.prefix)), (pkg, sys.prefix)
assert (pkg / "py.typed").exists() and (pkg / "_native.pyi").exists(), sorted(pkg.iterdir())
url, tail = sys.argv[1], sys.argv[2]
got = []
with EventSource(url) as es:
    for ev in es:
        assert isinstance(ev, MessageEvent), ev
        got.append(json.loads(ev.data)["seq"])
        if len(got) == 3:
            break
assert got == [1, 2, 3], got
out = subprocess.run([sys.executable, "-I", tail, url, "--json", "--max-events", "2"],
                     capture_output=True, text=True, timeout=30)
assert out.returncode == 0, out
lines = [json.loads(line) for line in out.stdout.splitlines()]
assert [line["kind"] for line in lines] == ["open", "message", "message"], lines
assert [json.loads(line["data"])["seq"] for line in lines[1:]] == [1, 2], lines
print(m.__version__)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(ROOT / "target")  # reuse the workspace's build
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(var, None)
    return env


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, f"{args}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
    return out


def _check(python: Path, server: Server, cwd: Path) -> None:
    url = server.url("stream?count=3&size=32")
    tail = ROOT / "examples" / "python" / "tail.py"
    out = _run(python, "-I", "-c", CHECK, url, tail, cwd=cwd)
    version = (ROOT / "Cargo.toml").read_text().split('version = "', 1)[1].split('"', 1)[0]
    assert out.stdout.strip() == version


def test_pip_install_from_source(server: Server, tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", ROOT / "py",
         cwd=tmp_path)
    _check(python, server, tmp_path)


def test_maturin_wheel(server: Server, tmp_path: Path) -> None:
    maturin = shutil.which("maturin", path=str(Path(sys.executable).parent))
    assert maturin, "maturin is not installed next to this Python (make -C py build installs it)"
    wheels = tmp_path / "wheels"
    _run(maturin, "build", "--release", "-q", "-o", wheels, cwd=ROOT / "py")
    (wheel,) = wheels.glob("eventsource_native-*-cp39-abi3-*.whl")
    python = _fresh_venv(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "-q", "--no-index", "--disable-pip-version-check", wheel,
         cwd=tmp_path)
    _check(python, server, tmp_path)
