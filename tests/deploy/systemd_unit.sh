#!/bin/sh
# systemd_unit.sh SLUICED UNIT [CLI] - deploy/sluiced.service is a unit systemd accepts.
#
# Skipped (77) without systemd-analyze. Otherwise: `systemd-analyze verify` prints nothing
# (it exits 0 even for unknown keys and bad values, so any output fails the test), with
# ExecStart pointed at the built sluiced (verify checks the binary exists); `systemd-analyze
# security --offline` keeps the exposure at or below 2.0 (the score is printed); and the
# unit's SystemCallFilter=@system-service lets io_uring through on this systemd (the
# syscalls are in @aio), or the filter must go (see the comment in the unit). With strace
# and the CLI: every system call sluiced makes while it starts, serves deploy/smoke.sh's
# client half, reloads (SIGHUP) and stops (SIGTERM) is one the unit's filters allow.
set -eu
SLUICED="$1"
UNIT="$2"
CLI="${3:-}"
HERE="$(cd "$(dirname "$0")" && pwd)"
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

allowed=""
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
    allowed="$allowed $calls"
done
denied=""
for g in $(sed -n 's/^SystemCallFilter=~\(.*\)$/\1/p' "$UNIT"); do
    denied="$denied $(expand "$g")"
done

# The system calls of a real run, under strace.
if [ -z "$allowed" ] || [ -z "$CLI" ] || ! command -v strace >/dev/null 2>&1; then
    echo "no strace (or no CLI): the system calls of a real run were not checked"
    exit 0
fi
port=$((20000 + $$ % 40000))
strace -f -qq -o "$tmp/trace" "$SLUICED" --data "$tmp/data" --host 127.0.0.1 --port 0 \
    --port-file "$tmp/port" --http-port "$port" --log-level warn 2>"$tmp/log" &
tracer=$!
for _ in $(seq 1 300); do
    [ -s "$tmp/port" ] && break
    kill -0 "$tracer" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$tmp/port" ]; then
    cat "$tmp/log" >&2
    kill "$tracer" 2>/dev/null || true
    echo "sluiced did not start under strace (HTTP port $port taken?): not checked"
    exit 0
fi
broker_pid="$(pgrep -P "$tracer" | head -n 1)"
rc=0
bash "$HERE/../../deploy/smoke.sh" --broker "127.0.0.1:$(cat "$tmp/port")" \
    --http "127.0.0.1:$port" --cli "$CLI" --records 200 2>"$tmp/smoke" || rc=$?
kill -HUP "$broker_pid"
sleep 0.5
kill -TERM "$broker_pid"
wait "$tracer" || true
if [ $rc -ne 0 ]; then
    cat "$tmp/smoke" >&2
    echo "FAILED: the smoke test under strace" >&2
    exit 1
fi
used="$(sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1/p' "$tmp/trace" | sort -u)"
bad=0
for sc in $used; do
    if ! printf '%s\n' $allowed | grep -qx "$sc"; then
        echo "FAILED: sluiced calls $sc, which the unit's SystemCallFilter does not allow" >&2
        bad=1
    elif printf '%s\n' $denied | grep -qx "$sc"; then
        echo "FAILED: sluiced calls $sc, which the unit's SystemCallFilter=~ denies" >&2
        bad=1
    fi
done
[ $bad -eq 0 ] || exit 1
echo "the $(printf '%s\n' $used | wc -l) system calls of a real run (start, smoke, SIGHUP," \
    "SIGTERM) are all allowed by the unit's filters"
