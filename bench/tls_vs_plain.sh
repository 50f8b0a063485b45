#!/usr/bin/env bash
# tls_vs_plain.sh - the native protocol over TLS next to plaintext, in one run
# (a benchmark, not a test). Each line is sluice-bench with its own broker
# (Release build), the same load, plaintext then TLS 1.3 (the broker's
# certificate from tests/tls/make_certs.sh, EC P-256, AES-256-GCM).
# Loads: produce 1 KiB records in batches of 1000 over 4 shards, ack written
# and durable; produce 100 B records one per batch (small messages: the
# per-record cost of a TLS record); consume a 1 KiB backlog.
# Usage: bench/tls_vs_plain.sh [SECONDS]   (default 5)
set -euo pipefail
SECS=${1:-5}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="$ROOT/build/release"
CERTS="$(mktemp -d /var/tmp/sluice-tlsbench-XXXXXX)"
trap 'rm -rf "$CERTS"' EXIT
"$ROOT/tests/tls/make_certs.sh" "$CERTS"
TLS=(--tls-ca "$CERTS/ca.pem" --broker-arg --tls=true
     --broker-arg "--tls-cert-file=$CERTS/srv.pem" --broker-arg "--tls-key-file=$CERTS/srv.key")
run() { # LABEL ARGS...
    local label=$1
    shift
    "$B/bench/sluice-bench" "$@" --json | sed "s/^/$label plain /"
    "$B/bench/sluice-bench" "$@" "${TLS[@]}" --json | sed "s/^/$label tls   /"
}
run "produce-1k-written" --mode produce --record-bytes 1024 --batch 1000 --shards 4 \
    --ack written --duration "$SECS"
run "produce-1k-durable" --mode produce --record-bytes 1024 --batch 1000 --shards 4 \
    --ack durable --duration "$SECS"
run "produce-100b-single" --mode produce --record-bytes 100 --batch 1 --shards 4 \
    --ack written --duration "$SECS"
run "consume-1k" --mode consume --record-bytes 1024 --shards 4
