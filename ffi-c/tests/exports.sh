#!/usr/bin/env bash
# Fails if libeventsource.so exports (defines) any dynamic symbol outside the es_ prefix.
set -euo pipefail
so=$1
all=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | sort -u)
bad=$(grep -v '^es_' <<<"$all" || true)
n=$(grep -c '^es_' <<<"$all" || true)
if [ -n "$bad" ]; then
    echo "symbols outside the es_ prefix:"; echo "$bad"; echo "0 passed, 1 failed"; exit 1
fi
if [ "$n" -lt 30 ]; then echo "only $n es_ symbols?"; echo "0 passed, 1 failed"; exit 1; fi
echo "$n es_ symbols, none other"
echo "1 passed, 0 failed"
