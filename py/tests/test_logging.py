"""The core's log records reach Python `logging` (logger `eventsource_native`), at their levels,
from the runtime threads; a disabled level never calls Python from those threads."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Server
from eventsource_native import EventSource, HTTPStatusError

LOGGER = logging.getLogger("eventsource_native")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def about(self, token: str) -> list[tuple[int, str, str]]:
        return [
            (r.levelno, r.name, r.getMessage()) for r in self.records if token in r.getMessage()
        ]


@pytest.fixture
def records() -> Iterator[Records]:
    h = Records()
    old = LOGGER.level
    LOGGER.addHandler(h)
    yield h
    LOGGER.removeHandler(h)
    LOGGER.setLevel(old)


def first(recs: list[tuple[int, str, str]], level: int, part: str, start: int = 0) -> int:
    for i in range(start, len(recs)):
        if recs[i][0] == level and part in recs[i][2]:
            return i
    return -1


def test_records_and_levels(server: Server, records: Records) -> None:
    LOGGER.setLevel(logging.DEBUG)  # read when the source is made
    t = server.token("log")
    es = EventSource(server.script(t, c1="data: a\n\n", s2="500", c2="x"), retry=0.05)
    with pytest.raises(HTTPStatusError):
        for _ in es:
            pass
    es.close()
    recs = records.about(t)
    c1 = first(recs, logging.DEBUG, "connecting")
    op = first(recs, logging.INFO, ": open")
    re = first(recs, logging.WARNING, "the server ended the stream; reconnecting in")
    c2 = first(recs, logging.DEBUG, "connecting", c1 + 1)
    fa = first(recs, logging.ERROR, "failed: the server answered HTTP 500")
    cl = first(recs, logging.DEBUG, "closed")
    assert 0 <= c1 < op < re < c2 < fa < cl, recs
    assert {name for _, name, _ in recs} == {"eventsource_native"}
    # made on the runtime threads (all but "closed", which close() logs on this thread)
    mine = threading.get_ident()
    threads = {
        r.thread for r in records.records if t in r.getMessage() and "closed" not in r.getMessage()
    }
    assert threads and mine not in threads


def test_a_higher_level_filters(server: Server, records: Records) -> None:
    LOGGER.setLevel(logging.WARNING)
    t = server.token("log")
    with pytest.raises(HTTPStatusError):
        list(EventSource(server.script(t, c1="data: a\n\n", s2="503", c2="x"), retry=0.05))
    levels = [lvl for lvl, _, _ in records.about(t)]
    assert levels == [logging.WARNING, logging.ERROR]


def test_disabled_records_do_not_call_python_from_the_runtime(
    server: Server, records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cheap when disabled: at WARNING, a clean stream (connecting, open: DEBUG and INFO) makes
    no call into the logger from any runtime thread."""
    LOGGER.setLevel(logging.WARNING)
    calls: list[int] = []
    for name in ("isEnabledFor", "makeRecord", "handle"):
        real = getattr(logging.Logger, name)

        def spy(self: logging.Logger, *a: Any, _real: Any = real, **k: Any) -> Any:
            if self.name.startswith("eventsource_native"):
                calls.append(threading.get_ident())
            return _real(self, *a, **k)

        monkeypatch.setattr(logging.Logger, name, spy)
    mine = threading.get_ident()
    t = server.token("quiet")
    with EventSource(server.script(t, c1="data: a\n\n", hold1="1")) as es:
        for _ in es:
            break
    assert [c for c in calls if c != mine] == []
    assert records.about(t) == []


def test_without_a_handler_nothing_is_printed(server: Server) -> None:
    """The package's NullHandler: a program that does not configure logging prints nothing of
    ours (Python's last-resort handler would print the WARNING and ERROR records). A fresh
    interpreter, as pytest's own handlers would hide the difference."""
    url = server.script(server.token(), c1="data: a\n\n", s2="500", c2="x")
    program = (
        "import sys\n"
        "from eventsource_native import EventSource, HTTPStatusError\n"
        "try:\n"
        f"    list(EventSource({url!r}, retry=0.05))\n"
        "except HTTPStatusError:\n"
        "    print('raised')\n"
    )
    r = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "raised\n", "")
