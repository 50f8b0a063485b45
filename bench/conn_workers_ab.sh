#!/usr/bin/env bash
# conn_workers_ab.sh - connections on every worker (conn_workers, issue 12) side by side in
# one run, alternating rounds: 4 producer connections (one each) on 8 shards, 1 KiB records
# in batches of 100, ack written, flush interval, against a broker with 1 worker, 2 workers
# (connections on the first), and 2 workers with conn_workers = true; plaintext, and with
# TLS=1 over TLS 1.3 (the broker's certificate from tests/tls/make_certs.sh), where a
# connection's loop also does the encryption.
#
#   bench/conn_workers_ab.sh [ROUNDS] [SECONDS]     (defaults: 3 rounds of 5 s)
#
# Env: B (sluice-bench, default build/release/bench/sluice-bench), TLS=1, EXTRA (more
# sluice-bench arguments, e.g. "--mode consume --consumers 4"). Prints one line per run
# (records/s, server CPU-s per GB), then the medians per configuration and their ratio to
# 1 worker. The load generator runs on the same cores as the broker (a 2-core VM has no
# other): compare ratios from one run.
set -euo pipefail
ROUNDS=${1:-3}
SECS=${2:-5}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B=${B:-$ROOT/build/release/bench/sluice-bench}
OUT=$(mktemp /var/tmp/conn_workers_ab.XXXXXX)
CERTS=""
TLSARGS=()
if [ "${TLS:-0}" = 1 ]; then
    CERTS="$(mktemp -d /var/tmp/sluice-cwbench-XXXXXX)"
    "$ROOT/tests/tls/make_certs.sh" "$CERTS" >/dev/null
    TLSARGS=(--tls-ca "$CERTS/ca.pem" --broker-arg --tls=true
             --broker-arg "--tls-cert-file=$CERTS/srv.pem"
             --broker-arg "--tls-key-file=$CERTS/srv.key")
fi
trap 'rm -rf "$OUT" ${CERTS:+"$CERTS"}' EXIT
# shellcheck disable=SC2086
LOAD=(--mode produce --producers 4 --shards 8 --record-bytes 1024 --batch 100 --ack written
      --warmup 1 --duration "$SECS" ${EXTRA:-})
run() { # LABEL BROKER-ARGS...
    local label=$1
    shift
    local json
    json=$("$B" "${LOAD[@]}" "${TLSARGS[@]}" "$@" --json)
    local rps cpu
    rps=$(sed -n 's/.*"records_per_s": \([0-9.]*\).*/\1/p' <<<"$json")
    cpu=$(sed -n 's/.*"server_cpu_s_per_gb": \([0-9.]*\).*/\1/p' <<<"$json")
    printf '%-14s %12s records/s  %6s CPU-s/GB\n' "$label" "$rps" "$cpu" | tee -a "$OUT"
}
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r"
    run w1 --broker-arg --workers=1
    run w2 --broker-arg --workers=2
    run w2-conn --broker-arg --workers=2 --broker-arg --conn-workers=true
done
echo "medians (records/s, ratio to w1):"
med() { grep "^$1 " "$OUT" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(med w1)
for l in w1 w2 w2-conn; do
    m=$(med "$l")
    awk -v l="$l" -v m="$m" -v b="$base" 'BEGIN {printf "  %-8s %12.0f  %.2f\n", l, m, m / b}'
done
