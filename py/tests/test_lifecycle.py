"""Ctrl-C during a blocking iteration, and many create/close cycles with bounded memory."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from typing import Any

from eventsource_native import EventSource


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_sigint_interrupts_a_blocking_iteration(server: Any) -> None:
    code = (
        "import sys, time\n"
        "from eventsource_native import EventSource\n"
        "es = EventSource(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    for ev in es: pass\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', es.ready_state, flush=True)\n"
        "    es.close()\n"
        "    print('closed', es.ready_state, flush=True)\n"
        "    sys.exit(130)\n"
    )
    url = server.script(server.token(), hold1="1")
    proc = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # inside the blocking wait, GIL released
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert proc.returncode == 130
    assert out.split("\n")[:2] == ["interrupted 1", "closed 2"]


def test_10000_create_close_cycles_bounded_memory(server: Any) -> None:
    url = server.script(server.token(), hold1="1")

    def cycles(n: int) -> None:
        for i in range(n):
            es = EventSource(url)
            if i % 2:
                es.onmessage = lambda ev: None  # the callback machinery too
            es.close()

    cycles(1000)  # warm up: runtime, client pool, allocator
    gc.collect()
    before = _rss_kib()
    cycles(10_000)
    gc.collect()
    time.sleep(0.5)
    grown = _rss_kib() - before
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB over 10,000 cycles"
    n_fds = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    assert n_fds < 200, n_fds  # the wake-up pipes were released
