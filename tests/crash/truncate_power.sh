#!/bin/sh
# truncate_power.sh - crash_truncate_shard on powerfs (tests/power/powerfs.c): the
# power is cut after each kill, so only what the truncate fsynced survives.
#   truncate_power.sh CRASH_TRUNCATE_SHARD POWERFS
# Exit 77 (skipped) without FUSE (/dev/fuse, fusermount3) or when the mount fails.
set -u
BIN="$1"
POWERFS="$2"
[ -c /dev/fuse ] && command -v fusermount3 >/dev/null 2>&1 && [ -x "$POWERFS" ] || exit 77
root="$(mktemp -d "${TMPDIR:-/var/tmp}/sl-trpower-XXXXXX")" || exit 1
mnt="$root/mnt"
mkdir "$mnt"
"$POWERFS" -f -s -o auto_unmount "$mnt" &
fs=$!
cleanup() {
    fusermount3 -u -z "$mnt" 2>/dev/null
    kill "$fs" 2>/dev/null
    wait "$fs" 2>/dev/null
    rm -rf "$root"
}
trap cleanup EXIT
i=0
until mountpoint -q "$mnt"; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$fs" 2>/dev/null; then
        echo "truncate_power.sh: powerfs did not mount" >&2
        exit 77
    fi
    sleep 0.1
done
TMPDIR="$mnt" "$BIN" --power "$mnt"
