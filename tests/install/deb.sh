#!/bin/sh
# deb.sh [--if-possible] RELEASE_BUILD_DIR - the Debian package, installed for real.
#
# Builds the package (cpack -G DEB in the Release build), installs it with apt-get, and
# checks what a Debian administrator gets: the system user and group `sluice`,
# /var/lib/sluice owned by it with mode 0750, /etc/sluice/sluice.ini as a conffile, the
# unit naming /usr/bin/sluiced and that file, libsluice.so.0 in the linker cache,
# `sluiced --version`. Then it runs the installed sluiced as user sluice with the packaged
# configuration (on a free port) and produces and consumes records with the installed
# `sluice` CLI; then `apt-get remove` (the conffile stays) and `apt-get purge` (it goes).
# It leaves the machine as it found it: a user or data directory that existed before is
# kept, ones made by the package are deleted at the end.
#
# It changes the system, so it needs root and apt. `make test` runs it with --if-possible:
# then, without root or apt-get, or with a sluice package already installed, it says why
# and exits 0. Exit 0 pass (or skipped), 1 fail.
set -eu

if_possible=0
if [ "${1:-}" = --if-possible ]; then
    if_possible=1
    shift
fi
build=$(cd "$1" && pwd)

skip() {
    echo "deb.sh: skipped: $*" >&2
    [ $if_possible = 1 ] && exit 0
    exit 77
}
fail() {
    echo "deb.sh: FAIL: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || skip "not root (the test installs a package)"
command -v apt-get >/dev/null 2>&1 || skip "no apt-get"
command -v dpkg >/dev/null 2>&1 || skip "no dpkg"
command -v cpack >/dev/null 2>&1 || skip "no cpack"
if dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q 'install ok installed'; then
    skip "a sluice package is installed already; not touching it"
fi

user_existed=0
getent passwd sluice >/dev/null && user_existed=1
dir_existed=0
[ -e /var/lib/sluice ] && dir_existed=1
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-deb-XXXXXX")
chmod 0755 "$work"
broker_pid=""
installed=0
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -y -qq -o DPkg::Lock::Timeout=120"

cleanup() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [ $installed = 1 ]; then
        $APT purge sluice >/dev/null 2>&1 || true
    fi
    if [ $dir_existed = 0 ]; then
        rm -rf /var/lib/sluice
    fi
    if [ $user_existed = 0 ] && getent passwd sluice >/dev/null; then
        userdel sluice 2>/dev/null || true
        if getent group sluice >/dev/null; then
            groupdel sluice 2>/dev/null || true
        fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "deb.sh: building the package" >&2
(cd "$build" && cpack -G DEB >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log" >&2; fail "cpack"; }
# shellcheck disable=SC2012 # the newest; CPack's names have no odd characters
deb=$(ls -t "$build"/sluice_*.deb | head -1)
version=$(dpkg-deb -f "$deb" Version)
dpkg-deb -f "$deb" Depends | grep -q 'libzstd1' ||
    fail "Depends lacks libzstd1: $(dpkg-deb -f "$deb" Depends)"

echo "deb.sh: apt-get install $deb" >&2
installed=1
$APT install "$deb" >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get install"; }

# ---- what the package set up ------------------------------------------------------------
getent passwd sluice >/dev/null || fail "no user sluice"
getent group sluice >/dev/null || fail "no group sluice"
[ "$(id -gn sluice)" = sluice ] || fail "user sluice's group is $(id -gn sluice)"
[ "$(getent passwd sluice | cut -d: -f7)" != /bin/bash ] || fail "user sluice has a login shell"
if [ $dir_existed = 0 ]; then
    got=$(stat -c '%U:%G %a' /var/lib/sluice)
    [ "$got" = "sluice:sluice 750" ] || fail "/var/lib/sluice is $got, not sluice:sluice 750"
fi
dpkg-query -W -f='${Conffiles}\n' sluice | grep -q '^ /etc/sluice/sluice.ini ' ||
    fail "/etc/sluice/sluice.ini is not a conffile"
grep -q '^data = /var/lib/sluice' /etc/sluice/sluice.ini ||
    fail "sluice.ini's data is not /var/lib/sluice"
grep -q '^ExecStart=/usr/bin/sluiced --config /etc/sluice/sluice.ini$' \
    /usr/lib/systemd/system/sluiced.service || fail "the unit's ExecStart"
grep -q '^User=sluice$' /usr/lib/systemd/system/sluiced.service || fail "the unit's User"
[ "$(/usr/bin/sluiced --version)" = "sluiced $version" ] ||
    fail "sluiced --version says '$(/usr/bin/sluiced --version)', the package $version"
ldconfig -p | grep -q 'libsluice.so.0 ' || fail "libsluice.so.0 is not in the linker cache"
pkg-config --modversion sluice >/dev/null || fail "pkg-config does not find sluice.pc"

# ---- the packaged configuration, run as user sluice -------------------------------------
chown sluice:sluice "$work"
setpriv --reuid=sluice --regid=sluice --init-groups \
    /usr/bin/sluiced --config /etc/sluice/sluice.ini --port 0 --port-file "$work/port" \
    --http-port 0 >"$work/sluiced.log" 2>&1 &
broker_pid=$!
i=0
while [ ! -s "$work/port" ]; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$broker_pid" 2>/dev/null; then
        cat "$work/sluiced.log" >&2
        fail "the packaged sluiced did not start as user sluice"
    fi
    sleep 0.05
done
SLUICE_BROKER="127.0.0.1:$(cat "$work/port")"
export SLUICE_BROKER
stream="deb-test-$$"
cli() { /usr/bin/sluice "$@" 2>>"$work/cli.log" || { cat "$work/cli.log" >&2; return 1; }; }
cli stream create "$stream" --shards 2 >/dev/null || fail "sluice stream create"
printf 'one\ntwo\nthree\n' | cli produce "$stream" --key k || fail "sluice produce"
got=$(cli consume "$stream" --from oldest --count 3 | tr '\n' ' ')
[ "$got" = "one two three " ] || fail "consumed '$got', produced 'one two three'"
[ -d "/var/lib/sluice/streams/$stream" ] || fail "the stream is not under /var/lib/sluice"
[ "$(stat -c %U "/var/lib/sluice/streams/$stream")" = sluice ] || fail "stream files not sluice's"
cli stream delete "$stream" >/dev/null || fail "sluice stream delete"
kill "$broker_pid"
wait "$broker_pid" || fail "sluiced did not exit 0 on SIGTERM"
broker_pid=""

# ---- remove, then purge -----------------------------------------------------------------
$APT remove sluice >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get remove"; }
[ ! -e /usr/bin/sluiced ] || fail "/usr/bin/sluiced is still there after remove"
[ -e /etc/sluice/sluice.ini ] || fail "remove deleted the conffile (only purge should)"
$APT purge sluice >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get purge"; }
installed=0
[ ! -e /etc/sluice/sluice.ini ] || fail "/etc/sluice/sluice.ini is still there after purge"
ldconfig -p | grep -q 'libsluice.so.0 ' && fail "libsluice.so.0 still in the linker cache"
echo "deb.sh: ok ($(basename "$deb"): installed, ran as user sluice, removed, purged)"
