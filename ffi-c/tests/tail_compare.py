#!/usr/bin/env python3
"""Runs the C tail (examples/c/tail.c) and the Rust tail (examples/src/bin/tail.rs) on the same
testserver scenarios and compares their output (--json lines parsed as JSON, human lines as text)
and exit codes.

    tail_compare.py C_TAIL RUST_TAIL TESTSERVER      (ffi-c/Makefile `test` runs it)

Prints one `ok`/`not ok` line per case and "N passed, N failed" last; exits 1 on any failure."""
import json
import re
import subprocess
import sys
import urllib.parse
import uuid

c_tail, rust_tail, testserver = sys.argv[1:4]
server = subprocess.Popen([testserver, "--port", "0", "--exit-on-eof"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
line = server.stdout.readline().strip()
assert line.startswith("listening on "), line
base = line.split()[-1]


def script(*conns, **extra):
    """A /script URL with a fresh token (connection counts are per token)."""
    q = {"t": uuid.uuid4().hex}
    for i, body in enumerate(conns, 1):
        q[f"c{i}"] = body
    q.update(extra)
    return base + "/script?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)


# A message named `error`, then a type, an id and data with ESC, BEL, DEL, C1 (U+0085, U+009B),
# U+0001 and a tab; then a backslash.
CONTROLS = ("event: error\ndata: e\x1b[31mred\n\n"
            "event: up\x07\nid: i\x1bd\u009b\ndata: a\tb\u0085c\x7fd\x01\ndata: two\\\n\n")

CASES = [
    # (name, url factory, args)
    ("stream", lambda: base + "/stream?count=5&size=48&id=1", ["--json", "--max-events", "5"]),
    ("named-and-reconnect",
     lambda: script("data: a\n\nevent: up\ndata: b\nid: 3\n\n", "data: c\n\n"),
     ["--json", "--retry", "50"]),
    ("listen-named",
     lambda: script("data: a\n\nevent: up\ndata: b\nid: 3\n\nevent: other\ndata: z\n\n"),
     ["--json", "--retry", "50", "--events", "up"]),
    ("escapes-and-unicode",
     lambda: script('data: h\u00e9llo "q" \\ \t\x01\x7f\ndata: \u65e5\u672c\r\n\r\ndata\n\n'),
     ["--json", "--retry", "50"]),
    ("human", lambda: script("data: a\\b\ndata: c\n\nevent: up\ndata: x\nid: 9\n\n", s2="500"),
     ["--retry", "50", "--events", "up"]),
    ("status-500", lambda: script("data: x\n\n", s1="500"), ["--json"]),
    ("content-type", lambda: script("data: x\n\n", ct1="text/plain"), ["--json"]),
    ("unsupported-scheme", lambda: "ftp://127.0.0.1/", ["--json"]),
    ("post-body-header", lambda: script("data: ok\n\n"),
     ["--json", "--method", "POST", "--body", "hi", "--header", "X-A: 1", "--max-events", "1"]),
    ("max-events-1", lambda: base + "/stream?count=100&size=10", ["--json", "--max-events", "1"]),
    # A message named `error` is printed always, counted only when listened to; in text mode
    # every control character (C0, DEL, C1) in type, id and data is escaped.
    ("error-named-text",
     lambda: script(CONTROLS + "data: m\n\n", hold1="1"),
     ["--retry", "50", "--events", "up\x07", "--max-events", "2"]),
    ("error-named-json", lambda: script(CONTROLS, "data: z\n\n"),
     ["--json", "--retry", "50", "--events", "error,up\x07"]),
    ("error-named-uncounted",
     lambda: script("event: error\ndata: \x1b]0;title\x07\n\ndata: ok\n\n", hold1="1"),
     ["--retry", "50", "--max-events", "1"]),
    ("error-named-listened-text", lambda: script(CONTROLS, "data: z\n\n"),
     ["--retry", "50", "--events", "error"]),
    ("invalid-url", lambda: "not a url", ["--json"]),
    ("bad-args", lambda: base, ["--retry", "soon"]),
]


# After the first failure in a run, the reconnection delay carries random jitter: the two tails
# cannot print the same number of milliseconds there.
JITTER = re.compile(r"reconnecting in \d+ ms")


def run(binary, url, args):
    p = subprocess.run([binary, url, *args], capture_output=True, timeout=30)
    # Lines end at LF only (splitlines() would also cut at U+0085 and friends, which the JSON
    # output keeps raw).
    lines = p.stdout.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return p.returncode, [JITTER.sub("reconnecting in N ms", l) for l in lines]


def normalize(lines, as_json):
    return [json.loads(l) for l in lines] if as_json else lines


passed = failed = 0
for name, url_of, args in CASES:
    as_json = "--json" in args
    rc_c, out_c = run(c_tail, url_of(), args)
    rc_r, out_r = run(rust_tail, url_of(), args)
    try:
        same = rc_c == rc_r and normalize(out_c, as_json) == normalize(out_r, as_json)
        # Keys in the contract's order, compact separators: the raw lines must match too.
        same = same and (not as_json or out_c == out_r)
    except json.JSONDecodeError as e:
        same = False
        print(f"  invalid JSON: {e}")
    if same and name not in ("invalid-url", "bad-args") and not out_c:
        same = False  # nothing compared: the case is broken
    if same:
        passed += 1
        print(f"ok tail {name} ({len(out_c)} lines, exit {rc_c})")
    else:
        failed += 1
        print(f"not ok tail {name}\n  C    exit {rc_c}: {out_c}\n  Rust exit {rc_r}: {out_r}")
# Ctrl-C: the C tail closes the source and exits 130 with its output intact.
import signal  # noqa: E402
p = subprocess.Popen([c_tail, base + "/stream?count=100000&size=10&rate=20", "--json"],
                     stdout=subprocess.PIPE)
first = p.stdout.readline()
p.send_signal(signal.SIGINT)
rest = p.stdout.read()
rc = p.wait(timeout=10)
if rc == 130 and json.loads(first)["kind"] == "open" and all(json.loads(l) for l in rest.splitlines()):
    passed += 1
    print("ok tail sigint (exit 130)")
else:
    failed += 1
    print(f"not ok tail sigint: exit {rc}, first line {first!r}")
server.stdin.close()
server.wait(timeout=10)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
