"""hello.py: print the first five messages of a stream, then close.

    pip install ./py
    python examples/python/hello.py http://127.0.0.1:PORT/stream?count=5

Iteration blocks with the GIL released; Ctrl-C works.
"""

import sys

from eventsource_native import EventSource


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: hello.py URL", file=sys.stderr)
        return 64
    with EventSource(sys.argv[1]) as es:
        es.onopen = lambda _ev: print(f"connected to {es.url}")
        for seen, ev in enumerate(es, start=1):
            print(f"{ev.type}: {ev.data}")
            if seen == 5:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
