#!/bin/sh
# systemd_unit.sh SLUICED UNIT - deploy/sluiced.service is a unit systemd accepts.
#
# Skipped (77) without systemd-analyze. Otherwise: `systemd-analyze verify` prints nothing
# (it exits 0 even for unknown keys and bad values, so any output fails the test), with
# ExecStart pointed at the built sluiced (verify checks the binary exists); `systemd-analyze
# security --offline` keeps the exposure at or below 2.0 (the score is printed); and the
# unit's SystemCallFilter=@system-service lets io_uring through on this systemd (the
# syscalls are in @aio), or the filter must go (see the comment in the unit).
set -eu
SLUICED="$1"
UNIT="$2"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not found (Debian package systemd): skipped"
    exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/bin/sluiced |ExecStart=$SLUICED |" "$UNIT" >"$tmp/sluiced.service"
grep -q "^ExecStart=$SLUICED " "$tmp/sluiced.service" || {
    echo "ExecStart= does not start /usr/bin/sluiced: update this test" >&2
    exit 1
}
out="$(systemd-analyze verify "$tmp/sluiced.service" 2>&1)" || {
    echo "$out" >&2
    echo "FAILED: systemd-analyze verify exited non-zero" >&2
    exit 1
}
if [ -n "$out" ]; then
    echo "$out" >&2
    echo "FAILED: systemd-analyze verify complained about $UNIT" >&2
    exit 1
fi
echo "systemd-analyze verify: no complaint"

if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    systemd-analyze security --offline=true "$tmp/sluiced.service" 2>&1 | tail -n 1
    systemd-analyze security --offline=true --threshold=20 "$tmp/sluiced.service" \
        >/dev/null 2>&1 || {
        echo "FAILED: the unit's exposure is above 2.0 (systemd-analyze security)" >&2
        exit 1
    }
fi

# The syscalls of a group, its nested groups (@system-service lists @aio, ...) expanded.
expand() {
    todo="$1"
    seen=""
    while [ -n "$todo" ]; do
        set -- $todo
        g="$1"
        shift
        todo="$*"
        case " $seen " in *" $g "*) continue ;; esac
        seen="$seen $g"
        for w in $(systemd-analyze syscall-filter "$g" 2>/dev/null | sed -n 's/^  *\([@a-z0-9_-]*\)$/\1/p'); do
            case "$w" in
            @*) todo="$todo $w" ;;
            *) echo "$w" ;;
            esac
        done
    done
}

for g in $(sed -n 's/^SystemCallFilter=\(@[a-z-]*\)$/\1/p' "$UNIT"); do
    calls="$(expand "$g")"
    for sc in io_uring_setup io_uring_enter io_uring_register; do
        if ! printf '%s\n' "$calls" | grep -qw "$sc"; then
            echo "FAILED: SystemCallFilter=$g does not allow $sc on this systemd:" \
                "sluiced could not use io_uring under it" >&2
            exit 1
        fi
    done
    echo "SystemCallFilter=$g allows io_uring_setup, io_uring_enter, io_uring_register"
done
