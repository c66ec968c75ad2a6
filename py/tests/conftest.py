"""Fixtures: one real testserver per session (target/debug/testserver, built if missing)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
_tokens = itertools.count()


class Server:
    def __init__(self, base: str) -> None:
        self.base = base

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def token(self, name: str = "t") -> str:
        return f"py-{name}-{os.getpid()}-{next(_tokens)}"

    def script(self, token: str, **params: str) -> str:
        q = urllib.parse.urlencode({"t": token, **params}, quote_via=urllib.parse.quote)
        return self.url(f"script?{q}")

    def log(self, token: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url(f"log?t={token}"), timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


def _binary(name: str, package: str) -> Path:
    path = ROOT / "target" / "debug" / name
    if not path.exists():
        subprocess.run(["cargo", "build", "-q", "-p", package], cwd=ROOT, check=True)
    return path


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    proc = subprocess.Popen(
        [str(_binary("testserver", "testserver")), "--port", "0", "--exit-on-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), line
    yield Server(line.removeprefix("listening on "))
    proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def rust_tail() -> Path:
    return _binary("tail", "examples")
