#!/bin/sh
# install_tree.sh BUILD_DIR SANITIZE(ON|OFF) - the installed tree as a user of it sees it.
#
# `cmake --install BUILD_DIR --prefix TMP`, then, in a directory outside the source tree:
#   - every file the install promises is there (programs, libraries, header, sluice.pc,
#     man pages, unit, configuration), the unit points at this prefix;
#   - libsluice.so has SONAME libsluice.so.<major> and exports exactly the functions
#     sluice.h declares (an internal sl_* or a protobuf-c sluice__v1__* one fails, listed);
#   - the installed sluice.h compiles alone (C11 -Wall -Wextra -Werror -pedantic, and as
#     C++ when g++ is there);
#   - tests/install/hello.c, built with `pkg-config --cflags --libs sluice` only, against
#     libsluice.so (run with LD_LIBRARY_PATH) and against libsluice.a (`pkg-config
#     --static`; the program must not need libsluice.so), creates a stream, produces and
#     consumes a record on the installed sluiced, started here on a free port.
# With SANITIZE=ON the installed libraries carry ASan+UBSan, so the program is built with
# the same flags. Exit 0 pass, 1 fail (the reason on stderr), 77 skip (no pkg-config/cc).
# shellcheck disable=SC2046 # pkg-config's output is meant to be split into words
set -eu

build=$(cd "$1" && pwd)
sanitize=${2:-OFF}
src=$(cd "$(dirname "$0")/../.." && pwd)

fail() {
    echo "install_tree: FAIL: $*" >&2
    exit 1
}
for tool in pkg-config cc nm readelf; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install_tree: no $tool, skipped" >&2; exit 77; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-install-XXXXXX")
broker_pid=""
cleanup() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install"; }

# ---- the files --------------------------------------------------------------------------
pc=$(find "$prefix" -name sluice.pc)
[ -n "$pc" ] || fail "no sluice.pc installed"
PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir sluice)
for f in bin/sluiced bin/sluice bin/sluice-bench include/sluice.h share/man/man8/sluiced.8 \
    share/man/man1/sluice.1 lib/systemd/system/sluiced.service lib/sysusers.d/sluice.conf \
    etc/sluice/sluice.ini; do
    [ -e "$prefix/$f" ] || fail "$f not installed"
done
for f in libsluice.a libsluice.so; do
    [ -e "$libdir/$f" ] || fail "$libdir/$f not installed"
done
grep -q "^ExecStart=$prefix/bin/sluiced --config $prefix/etc/sluice/sluice.ini\$" \
    "$prefix/lib/systemd/system/sluiced.service" || fail "the unit's ExecStart is not this prefix's"
"$prefix/bin/sluiced" --version | grep -q '^sluiced [0-9]' || fail "sluiced --version"
"$prefix/bin/sluiced" --help | grep -q -- '--config FILE' || fail "sluiced --help"
"$prefix/bin/sluice" --help 2>&1 | grep -q 'usage: sluice' || fail "sluice --help"

# ---- the shared library's ABI -----------------------------------------------------------
so="$libdir/libsluice.so"
major=$(pkg-config --modversion sluice | cut -d. -f1)
readelf -d "$so" | grep -q "(SONAME).*\[libsluice.so.$major\]" ||
    fail "SONAME of libsluice.so is not libsluice.so.$major: $(readelf -d "$so" | grep SONAME)"
nm -D --defined-only "$so" | awk '{print $NF}' | sed 's/@.*//' |
    sort -u >"$work/exported"
grep -v '^sluice_[a-z]' "$work/exported" >"$work/offenders" || true
if [ -s "$work/offenders" ]; then
    fail "libsluice.so exports $(wc -l <"$work/offenders") symbols not named sluice_*:
$(head -50 "$work/offenders")"
fi
# The functions the installed header declares (gcc -aux-info lists every prototype seen).
cd "$work"
printf '#include <sluice.h>\n' >decl.c
cc $(pkg-config --cflags sluice) -aux-info aux.txt -c decl.c -o decl.o
grep '/sluice.h:' aux.txt | sed -n 's/.*[ *]\(sluice_[a-z0-9_]*\) (.*/\1/p' | sort -u >declared
[ -s declared ] || fail "no function declared in the installed sluice.h?"
if ! diff -u declared exported >abi.diff; then
    fail "libsluice.so's exports differ from sluice.h's functions
(- declared only, + exported only):
$(cat abi.diff)"
fi

# ---- the header alone -------------------------------------------------------------------
printf '#include <sluice.h>\nint main(void) { return SLUICE_OK; }\n' >alone.c
cc -std=c11 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags sluice) -c alone.c \
    -o alone.o || fail "sluice.h does not compile alone as C11"
if command -v g++ >/dev/null 2>&1; then
    g++ -std=c++11 -Wall -Wextra -Werror -pedantic -x c++ $(pkg-config --cflags sluice) \
        -c alone.c -o alone_cxx.o || fail "sluice.h does not compile as C++"
fi

# ---- a program, built with pkg-config only ----------------------------------------------
san=""
[ "$sanitize" = ON ] && san="-fsanitize=address,undefined -fno-omit-frame-pointer"
cp "$src/tests/install/hello.c" "$work/hello.c"
# shellcheck disable=SC2086 # $san: zero or more flags
cc -std=c11 -Wall -Wextra -Werror $san -o hello_shared hello.c \
    $(pkg-config --cflags --libs sluice) || fail "build against libsluice.so"
readelf -d hello_shared | grep -q 'NEEDED.*libsluice.so' ||
    fail "hello_shared does not use libsluice.so"
# Static: the same flags with --static, libsluice taken from its archive.
# shellcheck disable=SC2086 # $san: zero or more flags
cc -std=c11 -Wall -Wextra -Werror $san -o hello_static hello.c \
    $(pkg-config --cflags sluice) \
    $(pkg-config --static --libs sluice | sed 's/-lsluice\b/-l:libsluice.a/') ||
    fail "build against libsluice.a with pkg-config --static"
if readelf -d hello_static | grep -q 'NEEDED.*libsluice'; then
    fail "hello_static needs libsluice.so"
fi

# The installed broker on a free port.
"$prefix/bin/sluiced" --data "$work/data" --port 0 --port-file "$work/port" --http-port 0 \
    --log-level warn >"$work/sluiced.log" 2>&1 &
broker_pid=$!
i=0
while [ ! -s "$work/port" ]; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$broker_pid" 2>/dev/null; then
        cat "$work/sluiced.log" >&2
        # A kernel without io_uring (or a seccomp profile blocking it) cannot run sluiced.
        if grep -q 'io_uring' "$work/sluiced.log"; then
            echo "install_tree: no io_uring, skipped" >&2
            exit 77
        fi
        fail "the installed sluiced did not start"
    fi
    sleep 0.05
done
addr="127.0.0.1:$(cat "$work/port")"

LD_LIBRARY_PATH="$libdir" ./hello_shared "$addr" shared || fail "hello_shared against $addr"
./hello_static "$addr" static || fail "hello_static against $addr"

kill "$broker_pid"
wait "$broker_pid" || fail "sluiced did not exit 0 on SIGTERM"
broker_pid=""
echo "install_tree: ok ($(wc -l <"$work/exported") exported sluice_* functions, shared and static)"
