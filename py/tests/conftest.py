"""Fixtures: a real testserver per session (target/debug/testserver, built if missing): `server`
(the plain listener) and, started on first use, `full_server` (`--all`: TLS, mTLS and the
proxies too).

ES_TEST_TRANSPORT=lean runs the tests on the lean transport: every `EventSource` a test makes
without naming a `transport` gets `transport="lean"` (in this process; the examples the tests
run as programs keep their default).
"""

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

from eventsource_native import EventSource

ROOT = Path(__file__).resolve().parents[2]
_tokens = itertools.count()
TRANSPORT = os.environ.get("ES_TEST_TRANSPORT") or "default"


def pytest_configure(config: pytest.Config) -> None:
    if TRANSPORT not in ("default", "lean"):
        raise pytest.UsageError(f"ES_TEST_TRANSPORT must be default or lean, not {TRANSPORT!r}")


def pytest_report_header(config: pytest.Config) -> str:
    return f"eventsource transport: {TRANSPORT} (ES_TEST_TRANSPORT)"


@pytest.fixture(autouse=True)
def _test_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    if TRANSPORT == "default":
        return
    init = EventSource.__init__

    def init_on_test_transport(self: EventSource, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("transport", TRANSPORT)
        init(self, *args, **kwargs)

    monkeypatch.setattr(EventSource, "__init__", init_on_test_transport)


class Server:
    def __init__(self, base: str, lines: dict[str, str] | None = None) -> None:
        self.base = base
        # With --all: "tls", "mtls", "http-proxy", "https-proxy", "socks5-proxy" (URLs) and
        # "ca-cert", "client-cert", "client-key" (paths), as the server printed them.
        self.lines = lines or {}

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

    def proxy_log(self, user: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url(f"proxy-log?user={user}"), timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


def _binary(name: str, package: str) -> Path:
    path = ROOT / "target" / "debug" / name
    if not path.exists():
        subprocess.run(["cargo", "build", "-q", "-p", package], cwd=ROOT, check=True)
    return path


def _serve(*flags: str) -> Iterator[Server]:
    proc = subprocess.Popen(
        [str(_binary("testserver", "testserver")), "--port", "0", "--exit-on-eof", *flags],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), line
    lines: dict[str, str] = {}
    if flags:  # more lines follow, "NAME WORD VALUE", then "ready"
        for extra in proc.stdout:
            if extra.strip() == "ready":
                break
            name, _, value = extra.rstrip("\n").split(" ", 2)
            lines[name] = value
    yield Server(line.removeprefix("listening on "), lines)
    proc.stdin.close()  # --exit-on-eof: the server exits and removes its certificate dir
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture(scope="session")
def full_server() -> Iterator[Server]:
    yield from _serve("--all")


@pytest.fixture(scope="session")
def rust_tail() -> Path:
    return _binary("tail", "examples")
