#!/usr/bin/env python3
"""tail: print the events of a server-sent event stream, one line each.

Run it (after `make -C py build`, which installs `eventsource_native` into .venv):

    .venv/bin/python examples/python/tail.py 'http://127.0.0.1:PORT/stream?count=5&rate=20'
    .venv/bin/python examples/python/tail.py URL --json --events update,delete | jq .

Same arguments and output as every other face's tail (see shared/API.md, examples/tail).
Exit codes: 0 after --max-events messages, 2 once the source is closed by a fatal error,
130 on Ctrl-C, 64 for bad arguments or an invalid URL.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn, Optional, Union

from eventsource_native import ErrorEvent, Event, EventSource, EventSourceError, MessageEvent

USAGE = (
    "usage: tail URL [--json] [--header 'Name: value']... [--last-event-id ID] [--retry MS] "
    "[--with-credentials] [--method M] [--body TEXT] [--max-events N] [--events TYPE,TYPE...]"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"tail: {message}\n{USAGE}", file=sys.stderr)
        sys.exit(64)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog="tail", usage=USAGE, add_help=False)
    p.add_argument("url")
    p.add_argument("--json", action="store_true")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--last-event-id")
    p.add_argument("--retry", type=_non_negative_int, metavar="MS")
    p.add_argument("--with-credentials", action="store_true")
    p.add_argument("--method", default="GET")
    p.add_argument("--body")
    p.add_argument("--max-events", type=_non_negative_int)
    p.add_argument("--events", default="")
    return p.parse_args(argv)


def write_line(line: str) -> None:
    """One whole line, flushed at once: stdout is often a pipe read live."""
    out = sys.stdout.buffer
    out.write(line.encode("utf-8") + b"\n")
    out.flush()


def _json(obj: dict[str, object]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Every other control character (C0, DEL, C1) as \u{hex}, so a stream cannot drive the terminal.
_ESCAPES.update(
    {chr(c): f"\\u{{{c:x}}}" for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in _ESCAPES}
)
_TO_ESCAPE = str.maketrans(_ESCAPES)


def _escape(text: str) -> str:
    """Text for a terminal, as the Rust tail's escape(): a backslash, LF, CR and tab as
    ``\\ \\n \\r \\t``, every other control character as ``\\u{hex}``."""
    return text.translate(_TO_ESCAPE)


def format_event(ev: Union[Event, MessageEvent, ErrorEvent], as_json: bool) -> str:
    if isinstance(ev, MessageEvent):
        if as_json:
            return _json(
                {
                    "kind": "message",
                    "type": ev.type,
                    "data": ev.data,
                    "lastEventId": ev.last_event_id,
                    "origin": ev.origin,
                    "readyState": 1,
                }
            )
        tag = f" #{_escape(ev.last_event_id)}" if ev.last_event_id else ""
        return f"{_escape(ev.type)}{tag}: {_escape(ev.data)}"
    if isinstance(ev, ErrorEvent):
        if as_json:
            return _json(
                {
                    "kind": "error",
                    "readyState": ev.ready_state,
                    "message": ev.message,
                    "status": ev.status,
                }
            )
        http = f" (HTTP {ev.status})" if ev.status is not None else ""
        then = "closed" if ev.ready_state == EventSource.CLOSED else "reconnecting"
        return f"error: {_escape(ev.message)}{http}, {then}"
    return _json({"kind": "open", "readyState": 1}) if as_json else "open"


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    headers = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            print(f"tail: --header {h!r}: expected 'Name: value'\n{USAGE}", file=sys.stderr)
            return 64
        headers.append((name.strip(), value.strip()))
    types = {"message", *filter(None, args.events.split(","))}
    try:
        es = EventSource(
            args.url,
            headers=headers,
            last_event_id=args.last_event_id,
            retry=3.0 if args.retry is None else args.retry / 1000,
            with_credentials=args.with_credentials,
            method=args.method,
            body=args.body,
        )
    except ValueError as e:
        print(f"tail: {e}", file=sys.stderr)
        return 64

    def show(ev: Union[Event, ErrorEvent, MessageEvent]) -> None:
        # A message named `error` reaches the error listener too, as in a browser: the loop
        # below prints it.
        if not isinstance(ev, MessageEvent):
            write_line(format_event(ev, args.json))

    es.onopen = show
    es.onerror = show
    count = 0
    try:
        with es:
            for ev in es:  # every message event; we print the types we listen to
                # A message named `error` is printed always, and counted only when its type is
                # listened to as well.
                if ev.type not in types and ev.type != "error":
                    continue
                write_line(format_event(ev, args.json))
                if ev.type not in types:
                    continue
                count += 1
                if args.max_events is not None and count >= args.max_events:
                    # Close before leaving the loop: once iteration ends, an open source hands
                    # its next events (here the end of the stream) to the listeners again.
                    es.close()
                    return 0
    except EventSourceError:
        return 2  # the error line was printed by onerror
    except KeyboardInterrupt:
        es.close()
        return 130
    except BrokenPipeError:
        return 0
    return 0 if args.max_events == 0 else 2  # iteration ends only when the source is closed


if __name__ == "__main__":
    sys.exit(main())
