#!/bin/bash
# smoke.sh - a smoke test of a Sluice broker with the `sluice` CLI and plain HTTP.
#
#   deploy/smoke.sh --build DIR [--records N]
#       starts DIR/broker/sluiced on free ports (127.0.0.1) with a temporary data
#       directory, runs the client half below against it, then stops it with SIGTERM
#       and checks that it exits 0 having logged "stopped cleanly".
#   deploy/smoke.sh --broker HOST:PORT --http HOST:PORT [--cli PATH] [--records N]
#       the client half only, against a running broker (the compose smoke service):
#       waits for /readyz = 200, creates a stream with a unique name, produces N records,
#       consumes them back from the oldest and compares them line by line, checks that
#       /healthz and /metrics answer (and /metrics counts the stream).
#   deploy/smoke.sh --readyz HOST:PORT
#       one GET /readyz: exit 0 on 200, else 1 (the container's HEALTHCHECK).
#
# HTTP goes through bash's /dev/tcp, so a slim image needs neither curl nor wget. Exit 0
# when every check passed, 1 on the first failure (named on stderr), 2 on bad usage.
set -euo pipefail

RECORDS=1000
BUILD=""
SLUICED=""
CLI="${SLUICE_CLI:-}"
BROKER=""
HTTP=""
READY_WAIT_S=60
TMP=""
BROKER_PID=""

usage() {
    sed -n '2,18s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
fail() {
    echo "smoke: FAILED: $*" >&2
    if [ -n "$TMP" ] && [ -f "$TMP/broker.log" ]; then
        echo "smoke: the broker's log (last 30 lines):" >&2
        tail -n 30 "$TMP/broker.log" >&2
    fi
    exit 1
}
say() { echo "smoke: $*" >&2; }

# http_get HOST:PORT PATH: the status code on the first line of stdout, then the body.
# HTTP/1.1 with Connection: close; at most 10 s.
http_get() {
    local host="${1%:*}" port="${1##*:}"
    timeout 10 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$0" >&3
        cat <&3' "$host" "$port" "$2" 2>/dev/null |
        awk 'NR == 1 { print $2; next } body { print; next } /^\r?$/ { body = 1 }'
}

# wait_ready HOST:PORT: until /readyz answers 200 (READY_WAIT_S).
wait_ready() {
    local deadline=$((SECONDS + READY_WAIT_S)) status
    while :; do
        status="$(http_get "$1" /readyz | head -n 1 || true)"
        [ "$status" = 200 ] && return 0
        [ $SECONDS -ge $deadline ] && fail "/readyz on $1 did not answer 200 within ${READY_WAIT_S}s" \
            "(last: ${status:-no answer})"
        if [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
            fail "the broker exited while starting"
        fi
        sleep 0.2
    done
}

cleanup() {
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    [ -n "$TMP" ] && rm -rf "$TMP"
    return 0
}

# A port nothing answers on now, from 20000-59999 (sluiced's http_port cannot be 0 = ephemeral:
# 0 turns the listener off).
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        if ! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

# Starts sluiced: the native port ephemeral (port file), the HTTP port a free one, retried
# when another process took it meanwhile. Sets BROKER and HTTP.
start_broker() {
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/sluice-smoke-XXXXXX")"
    trap cleanup EXIT
    local try http_port
    for try in 1 2 3 4 5; do
        http_port="$(free_port)"
        rm -f "$TMP/port"
        # The caller's SLUICE_* settings (a developer's shell) must not change the broker.
        env -u SLUICE_CONFIG -u SLUICE_DATA -u SLUICE_PORT -u SLUICE_HTTP_PORT -u SLUICE_HOST \
            -u SLUICE_LOG_FORMAT -u NOTIFY_SOCKET "$SLUICED" --data "$TMP/data" \
            --host 127.0.0.1 --port 0 --port-file "$TMP/port" --http-port "$http_port" \
            --log-level info 2>"$TMP/broker.log" &
        BROKER_PID=$!
        local deadline=$((SECONDS + READY_WAIT_S))
        while ! grep -q "listening on 127.0.0.1:$http_port (http)" "$TMP/broker.log"; do
            if ! kill -0 "$BROKER_PID" 2>/dev/null; then
                wait "$BROKER_PID" || true
                BROKER_PID=""
                break
            fi
            [ $SECONDS -ge $deadline ] && fail "sluiced did not listen within ${READY_WAIT_S}s"
            sleep 0.05
        done
        [ -n "$BROKER_PID" ] && break
        grep -q "cannot listen" "$TMP/broker.log" || fail "sluiced exited at start"
        say "port $http_port was taken: again (try $try)"
    done
    [ -n "$BROKER_PID" ] || fail "no free port for the HTTP listener after 5 tries"
    BROKER="127.0.0.1:$(cat "$TMP/port")"
    HTTP="127.0.0.1:$http_port"
    say "started sluiced (pid $BROKER_PID): native $BROKER, http $HTTP, data $TMP/data"
}

stop_broker() {
    kill -TERM "$BROKER_PID"
    local rc=0
    wait "$BROKER_PID" || rc=$?
    BROKER_PID=""
    [ $rc -eq 0 ] || fail "sluiced exited with status $rc after SIGTERM"
    grep -q "stopped cleanly" "$TMP/broker.log" || fail "sluiced did not log \"stopped cleanly\""
    say "sluiced stopped cleanly on SIGTERM (exit 0)"
}

client_half() {
    local stream="smoke-$(date +%s)-$$-$RANDOM"
    wait_ready "$HTTP"
    say "/readyz: 200"
    local health
    health="$(http_get "$HTTP" /healthz | head -n 1)"
    [ "$health" = 200 ] || fail "/healthz answered ${health:-nothing}"

    "$CLI" --broker "$BROKER" stream create "$stream" --shards 2 >/dev/null ||
        fail "sluice stream create $stream"
    local want got
    want="$(mktemp)"
    got="$(mktemp)"
    # shellcheck disable=SC2064
    trap "rm -f '$want' '$got'; cleanup" EXIT
    # Each record unique and with a character JSON or a shell would trip on.
    for i in $(seq 1 "$RECORDS"); do
        printf 'record %d of %s: "quoted" & tab\there\n' "$i" "$stream"
    done >"$want"
    "$CLI" --broker "$BROKER" produce "$stream" <"$want" 2>/dev/null ||
        fail "sluice produce $stream"
    say "produced $RECORDS records to $stream"
    "$CLI" --broker "$BROKER" consume "$stream" --from oldest --count "$RECORDS" >"$got" ||
        fail "sluice consume $stream"
    local n
    n="$(wc -l <"$got")"
    [ "$n" -eq "$RECORDS" ] || fail "consumed $n records, produced $RECORDS"
    # Two shards: order holds per shard, not across them; compare as sorted sets.
    if ! cmp -s <(sort "$want") <(sort "$got"); then
        diff <(sort "$want") <(sort "$got") | head -n 10 >&2
        fail "the consumed records differ from the produced ones"
    fi
    say "consumed the $RECORDS records back, identical"

    local metrics
    metrics="$(http_get "$HTTP" /metrics)"
    [ "$(printf '%s\n' "$metrics" | head -n 1)" = 200 ] || fail "/metrics did not answer 200"
    # A here-string, not a pipe: grep -q exits at the first match, and under
    # pipefail the printf that then writes into a closed pipe fails the check.
    grep -Eq '^sluice_streams [1-9]' <<<"$metrics" ||
        fail "/metrics does not count the stream (sluice_streams)"
    say "/metrics: 200, sluice_streams counts the stream"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --sluiced) SLUICED="$2"; shift 2 ;;
    --cli) CLI="$2"; shift 2 ;;
    --broker) BROKER="$2"; shift 2 ;;
    --http) HTTP="$2"; shift 2 ;;
    --records) RECORDS="$2"; shift 2 ;;
    --readyz)
        [ "$(http_get "$2" /readyz | head -n 1)" = 200 ]
        exit $?
        ;;
    -h | --help) usage ;;
    *) echo "smoke: unknown argument $1" >&2; usage ;;
    esac
done

if [ -n "$BUILD" ]; then
    SLUICED="${SLUICED:-$BUILD/broker/sluiced}"
    CLI="${CLI:-$BUILD/client/sluice}"
fi
CLI="${CLI:-sluice}"
command -v "$CLI" >/dev/null 2>&1 || fail "no sluice CLI at $CLI (--cli PATH)"
if [ -n "$SLUICED" ]; then
    [ -z "$BROKER" ] || usage
    [ -x "$SLUICED" ] || fail "no sluiced at $SLUICED"
    start_broker
    client_half
    stop_broker
elif [ -n "$BROKER" ] && [ -n "$HTTP" ]; then
    client_half
else
    usage
fi
say "passed"
