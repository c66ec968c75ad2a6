#!/usr/bin/env bash
# Installs each artifact of dist/ into a fresh place, with no Rust toolchain on PATH, and
# streams from the testserver through it: the wheel into a new venv, the npm tarballs into a
# new project, the C tarball built against with pkg-config and with CMake's
# find_package(eventsource CONFIG). Also checks the SONAME, that the shipped binaries are
# stripped, and the manylinux tag; prints install times and sizes. `make test-dist`.
#   packaging/test-dist.sh DIST_DIR TESTSERVER
set -euo pipefail
dist=$(cd "$1" && pwd) testserver=$(realpath "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/.venv/bin # auditwheel (installed by `make -C py dist-tools`)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
major=${version%%.*}
work=$(mktemp -d "${TMPDIR:-/tmp}/es-dist-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0 failed=0
check() {
    local name=$1; shift
    if "$@" >"$work/last.log" 2>&1; then
        passed=$((passed + 1)); echo "ok - $name"
    else
        failed=$((failed + 1)); echo "not ok - $name"; sed 's/^/    /' "$work/last.log" | tail -40
    fi
}
# timed NAME CMD...: runs CMD and prints how long it took (fd 3: past check's log).
exec 3>&1
timed() {
    local name=$1; shift
    local t0=${EPOCHREALTIME/./} rc=0
    "$@" || rc=$?
    local us=$((${EPOCHREALTIME/./} - t0))
    printf '    time: %s: %d.%02d s\n' "$name" $((us / 1000000)) $((us / 10000 % 100)) >&3
    return $rc
}
kb() { echo "$(($(stat -c %s "$1") / 1000)) kB"; }
one() { # the single file matching a glob, or fail
    local f=("$@")
    [ "${#f[@]}" = 1 ] && [ -e "${f[0]}" ] || { echo "expected one file: $*" >&2; return 1; }
    echo "${f[0]}"
}
# (No `cmd | grep -q` under pipefail: grep's early exit can fail cmd with SIGPIPE.)
stripped() { # an ELF file with neither a symbol table nor debug info
    local sections
    sections=$(readelf -S --wide "$1") && ! grep -qE ' \.(symtab|debug_[a-z]+) ' <<<"$sections"
}
glibc_floor() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1; }

# --- No Rust toolchain: every PATH entry that has cargo/rustc is replaced by a copy of it (of
# symlinks) without cargo, rustc, rustup and the cargo-* plugins; the Rust environment goes.
norust=$work/norust-bin
mkdir -p "$norust"
IFS=: read -ra path_dirs <<<"$PATH"
new_path=()
i=0
for d in "${path_dirs[@]}"; do
    [ -d "$d" ] || continue
    if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ]; then
        i=$((i + 1)); mkdir -p "$norust/$i"
        for f in "$d"/*; do
            case ${f##*/} in cargo | cargo-* | rustc | rustdoc | rustup | rust-* | rustfmt | clippy-driver) continue ;; esac
            ln -s "$f" "$norust/$i/"
        done
        new_path+=("$norust/$i")
    else
        new_path+=("$d")
    fi
done
NORUST_PATH=$(IFS=:; echo "${new_path[*]}")
norust() { env -u CARGO -u RUSTC -u RUSTUP_TOOLCHAIN -u CARGO_HOME -u RUSTUP_HOME PATH="$NORUST_PATH" "$@"; }
no_toolchain() { ! norust bash -c 'command -v cargo || command -v rustc || command -v rustup'; }
check "no cargo, rustc or rustup on the install PATH" no_toolchain

coproc TS { exec "$testserver" --port 0 --exit-on-eof; }
read -r line <&"${TS[0]}"
base=http://127.0.0.1:${line##*:}
echo "# testserver at $base; artifacts in $dist"

# ---------------------------------------------------------------------------------------------
echo "# C: $(basename "$(one "$dist"/libeventsource-*.tar.gz)")"
ctar=$(one "$dist"/libeventsource-"$version"-*.tar.gz)
cdir=$work/c
mkdir -p "$cdir"
timed "unpack the C tarball" norust tar -C "$cdir" -xzf "$ctar"
prefix=$(one "$cdir"/libeventsource-*)
so=$prefix/lib/libeventsource.so.$version
c_layout() {
    [ -f "$so" ] && [ "$(readlink "$prefix/lib/libeventsource.so.$major")" = "libeventsource.so.$version" ] &&
        [ "$(readlink "$prefix/lib/libeventsource.so")" = "libeventsource.so.$major" ] &&
        [ -f "$prefix/lib/libeventsource.a" ] && [ -f "$prefix/include/eventsource.h" ] &&
        [ -f "$prefix/lib/pkgconfig/eventsource.pc" ] &&
        [ -f "$prefix/lib/cmake/eventsource/eventsource-config.cmake" ] &&
        [ -f "$prefix/lib/cmake/eventsource/eventsource-config-version.cmake" ]
}
check "tarball layout: lib/libeventsource.so.$version, .so.$major and .so links, .a, header, .pc, cmake/" c_layout
soname() { readelf -d "$so" | grep -F "Library soname: [libeventsource.so.$major]"; }
check "readelf -d: SONAME libeventsource.so.$major" soname
check "libeventsource.so is stripped" stripped "$so"
a_lean() {
    local sections
    sections=$(readelf -S --wide "$prefix/lib/libeventsource.a") && ! grep -qE ' \.(debug_[a-z]+|llvmbc) ' <<<"$sections"
}
check "libeventsource.a has no debug info or LLVM bitcode" a_lean
echo "    size: libeventsource.so $(kb "$so"), libeventsource.a $(kb "$prefix/lib/libeventsource.a"), tarball $(kb "$ctar"); needs glibc ≥ $(glibc_floor "$so" | cut -d_ -f2)"

header_std() { # the header alone, in the strictest mode of each standard it supports
    printf '#include <eventsource.h>\nint main(void) { return (int)es_abi_version() - ES_ABI_VERSION; }\n' >"$work/h.c"
    cp "$work/h.c" "$work/h.cpp"
    cc -std=c99 -pedantic -Wall -Wextra -Werror -I"$prefix/include" -c "$work/h.c" -o /dev/null &&
        cc -std=gnu89 -Wall -Wextra -Werror -I"$prefix/include" -c "$work/h.c" -o /dev/null &&
        c++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$prefix/include" -c "$work/h.cpp" -o /dev/null
}
check "the header compiles as C99 -pedantic, gnu89 and C++11 -pedantic (-Werror)" header_std

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
run_hello() { [ "$(timeout 30 "$1" "$base/stream?count=5&size=8" | wc -l)" = 3 ]; }
run_tail() { [ "$(timeout 30 "$1" "$base/stream?count=4&size=8" --max-events 4 | grep -c '^message: ')" = 4 ]; }
pc_shared() {
    norust cc -std=c11 -Wall -Wextra -Werror "$root/examples/c/hello.c" -o "$work/hello-pc" \
        $(pkg-config --cflags --libs eventsource) -Wl,-rpath,"$prefix/lib" -lpthread &&
        readelf -d "$work/hello-pc" | grep -F "Shared library: [libeventsource.so.$major]"
}
pc_static() {
    norust cc -std=c11 -Wall -Wextra -Werror "$root/examples/c/tail.c" -o "$work/tail-pc-static" \
        $(pkg-config --cflags eventsource) "$prefix/lib/libeventsource.a" \
        $(pkg-config --static --libs-only-l eventsource | sed 's/-leventsource//') &&
        ! readelf -d "$work/tail-pc-static" | grep -F libeventsource
}
check "pkg-config: hello.c against the shared library (NEEDED libeventsource.so.$major)" timed "cc hello.c, pkg-config" pc_shared
check "  and it streams from the testserver" run_hello "$work/hello-pc"
check "pkg-config --static: tail.c against libeventsource.a" timed "cc tail.c, pkg-config --static" pc_static
check "  and it streams from the testserver" run_tail "$work/tail-pc-static"
cmake_build() {
    norust cmake -S "$root/packaging/cmake-test" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
        -DES_VERSION="${version%.*}" && norust cmake --build "$work/cmake"
}
check "CMake find_package(eventsource ${version%.*} CONFIG): eventsource::eventsource, ::eventsource_static" \
    timed "cmake configure + build" cmake_build
check "  hello (shared) streams from the testserver" run_hello "$work/cmake/hello"
check "  tail (static) streams from the testserver" run_tail "$work/cmake/tail_static"
cmake_wrong_version() {
    ! norust cmake -S "$root/packaging/cmake-test" -B "$work/cmake-v" -DCMAKE_PREFIX_PATH="$prefix" \
        -DES_VERSION=$((major + 1)).0
}
check "CMake refuses find_package(eventsource $((major + 1)).0)" cmake_wrong_version

if [ -n "${ES_INSTALLED_PREFIX:-}" ]; then # `make -C ffi-c install` with PREFIX=this: the same files
    installed_same() {
        diff <(cd "$prefix" && find . ! -name README.md | sort) <(cd "$ES_INSTALLED_PREFIX" && find . | sort) &&
            for f in lib/libeventsource.so.$version include/eventsource.h; do cmp "$prefix/$f" "$ES_INSTALLED_PREFIX/$f" || return 1; done &&
            grep -Fx "prefix=$ES_INSTALLED_PREFIX" "$ES_INSTALLED_PREFIX/lib/pkgconfig/eventsource.pc"
    }
    check "make install PREFIX=…: the tarball's files, and an absolute prefix in eventsource.pc" installed_same
    pc_installed() {
        PKG_CONFIG_PATH=$ES_INSTALLED_PREFIX/lib/pkgconfig norust cc -std=c11 "$root/examples/c/hello.c" -o "$work/hello-inst" \
            $(PKG_CONFIG_PATH=$ES_INSTALLED_PREFIX/lib/pkgconfig pkg-config --cflags --libs eventsource) \
            -Wl,-rpath,"$ES_INSTALLED_PREFIX/lib" -lpthread && run_hello "$work/hello-inst"
    }
    check "  hello.c built against it with pkg-config streams from the testserver" pc_installed
fi

# ---------------------------------------------------------------------------------------------
wheel=$(one "$dist"/eventsource_native-"$version"-*.whl)
echo "# Python: $(basename "$wheel")"
manylinux() {
    local show
    show=$("$tools/auditwheel" show "$wheel") && echo "$show" && grep -q '"manylinux_2_17_x86_64"' <<<"$show"
}
check "auditwheel show: manylinux_2_17 (manylinux2014) x86_64, abi3" manylinux
wheel_so() {
    rm -rf "$work/wheel" && mkdir "$work/wheel" && (cd "$work/wheel" && python3 -m zipfile -e "$wheel" .) &&
        stripped "$(one "$work"/wheel/eventsource_native/_native*.so)"
}
check "the extension in the wheel is stripped" wheel_so
echo "    size: wheel $(kb "$wheel"), extension $(kb "$(one "$work"/wheel/eventsource_native/_native*.so)")"
venv=$work/venv
check "a new venv" timed "python3 -m venv" norust python3 -m venv "$venv"
pip_install() {
    norust env PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install -q --no-index --only-binary :all: "$wheel"
}
check "pip install the wheel into it (--no-index --only-binary :all:)" timed "pip install the wheel" pip_install
py_stream() {
    local out
    out=$(cd "$work" && norust "$venv/bin/python" -c 'import eventsource_native, sys; print(eventsource_native.__file__)') &&
        [[ $out == "$venv"/* ]] &&
        [ "$(cd "$work" && norust timeout 30 "$venv/bin/python" "$root/examples/python/tail.py" "$base/stream?count=4&size=8" --max-events 4 |
            grep -c '^message: ')" = 4 ]
}
check "  tail.py streams from the testserver (the package from the venv)" py_stream

# ---------------------------------------------------------------------------------------------
main_tgz=$(one "$dist"/eventsource-native-"$version".tgz)
plat_tgz=$(one "$dist"/eventsource-native-linux-*-"$version".tgz)
echo "# Node: $(basename "$main_tgz"), $(basename "$plat_tgz")"
proj=$work/npm-proj
new_project() { mkdir -p "$1" && echo '{ "name": "proj", "version": "1.0.0", "private": true }' >"$1/package.json"; }
npm_install() {
    new_project "$proj" && (cd "$proj" && norust npm install --offline --no-audit --no-fund --foreground-scripts \
        "$plat_tgz" "$main_tgz")
}
check "npm install both tarballs into a new project (--offline)" timed "npm install the tarballs" npm_install
addon=$(ls "$proj"/node_modules/eventsource-native-linux-*/*.node 2>/dev/null || true)
prebuilt_used() {
    [ -n "$addon" ] && [ ! -e "$proj/node_modules/eventsource-native/eventsource-native.node" ] && stripped "$addon" &&
        [ "$(cd "$proj" && norust node -e "require('eventsource-native');
            console.log(Object.keys(require.cache).find((k) => k.endsWith('.node')))")" = "$(realpath "$addon")" ]
}
check "  the prebuilt, stripped addon is what loads (nothing built)" prebuilt_used
[ -n "$addon" ] && echo "    size: addon $(kb "$addon"), tarballs $(kb "$plat_tgz") + $(kb "$main_tgz"); needs glibc ≥ $(glibc_floor "$addon" | cut -d_ -f2)"
node_stream() {
    cp "$root/examples/node/tail.mjs" "$proj/" &&
        [ "$(cd "$proj" && norust timeout 30 node tail.mjs "$base/stream?count=4&size=8" --max-events 4 | grep -c '^message: ')" = 4 ] &&
        [ "$(cd "$proj" && norust timeout 30 node -e "const { EventSource } = require('eventsource-native');
            const es = new EventSource('$base/stream?count=1&size=8');
            es.onmessage = (e) => { console.log(JSON.parse(e.data).seq); es.close() }")" = 1 ]
}
check "  tail.mjs (ESM) and require() (CJS) stream from the testserver" node_stream
no_prebuilt() { # no platform package: the install script must say so, then fail for want of cargo
    local p=$work/npm-no-prebuilt
    new_project "$p" && ! (cd "$p" && norust npm install --offline --omit=optional --no-audit --no-fund \
        --foreground-scripts "$main_tgz") >"$work/np.log" 2>&1 &&
        grep -F 'no prebuilt addon for linux-' "$work/np.log" && grep -F 'cannot run cargo' "$work/np.log"
}
check "without the platform package and cargo, npm install fails saying why" timed "npm install, no prebuilt" no_prebuilt

exec {TS[1]}>&-
wait "$TS_PID" 2>/dev/null || true
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
