#!/usr/bin/env bash
# Builds examples/c with a plain cc line and with CMake, both through pkg-config and the
# generated eventsource.pc (installed into a staging prefix), then runs them on the testserver.
#   examples_build.sh OUT_DIR LIB_DIR TESTSERVER
set -euo pipefail
out=$1 lib=$2 testserver=$3
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
stage=$out/stage
rm -rf "$stage" "$out/cmake-build"
mkdir -p "$stage/lib/pkgconfig" "$stage/include"
cp "$lib/libeventsource.so" "$lib/libeventsource.a" "$stage/lib/"
cp "$root/include/eventsource.h" "$stage/include/"
make -s -C "$here" pc PREFIX="$stage" >/dev/null
cp "$root/target/ffi-c/eventsource.pc" "$stage/lib/pkgconfig/"
export PKG_CONFIG_PATH=$stage/lib/pkgconfig
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); echo "ok $*"; else failed=$((failed + 1)); echo "not ok $*"; fi; }

coproc TS { exec "$testserver" --port 0 --exit-on-eof; }
read -r line <&"${TS[0]}"
base=http://127.0.0.1:${line##*:}

# plain cc line (shared), and a static link with pkg-config --static
cc_shared() {
    cc -std=c11 -Wall -Wextra -Werror "$root/examples/c/hello.c" -o "$out/hello-pc" \
        $(pkg-config --cflags --libs eventsource) -Wl,-rpath,"$stage/lib" -lpthread
}
cc_static() {
    cc -std=c11 -Wall -Wextra -Werror "$root/examples/c/tail.c" -o "$out/tail-static" \
        $(pkg-config --cflags eventsource) "$stage/lib/libeventsource.a" \
        $(pkg-config --static --libs-only-l eventsource | sed 's/-leventsource//')
}
cmake_build() {
    cmake -S "$root/examples/c" -B "$out/cmake-build" -DCMAKE_BUILD_RPATH="$stage/lib" >/dev/null &&
        cmake --build "$out/cmake-build" >/dev/null
}
run_hello() { [ "$("$1" "$base/stream?count=5&size=8" | wc -l)" = 3 ]; }
run_tail() { [ "$("$1" "$base/stream?count=4&size=8" --max-events 4 | grep -c '^message: ')" = 4 ]; }
check cc_shared
check run_hello "$out/hello-pc"
check cc_static
check run_tail "$out/tail-static"
check cmake_build
check run_hello "$out/cmake-build/hello"
check run_tail "$out/cmake-build/tail"
exec {TS[1]}>&-
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
