#!/usr/bin/env bash
# http_vs_native.sh - the Kinesis API over HTTP/1.1 and h2c next to the
# native protocol, in one run on one broker (a benchmark, not a test).
# Produce: 1 KiB records, 500 per request (PutRecords) / per batch (native),
# 4 shards, one connection, DEPTH requests in flight, ack durable
# (PutRecords answers once its records are durable, as the native ACK_DURABLE).
# Read: the backlog drained from TRIM_HORIZON (GetRecords, Limit 10000) next
# to the native consumer.
# Queues: SendMessageBatch (10 x 1 KiB) next to native produce in batches of 10, and
# ReceiveMessage(10) + DeleteMessageBatch next to the native receive + ack (10 at a time).
# Usage: bench/http_vs_native.sh [SECONDS] [DEPTH]   (defaults 5, 4)
set -euo pipefail
SECS=${1:-5}
DEPTH=${2:-4}
# shellcheck source=bench/http_broker.sh
. "$(dirname "$0")/http_broker.sh" httpbench
HB=("$B/bench/http_bench" --port "$HTTP" --records 500 --record-bytes 1024 --shards 4
    --depth "$DEPTH" --duration "$SECS")
echo "== produce 1 KiB x 500, 4 shards, 1 connection, $DEPTH in flight, durable"
"$B/bench/sluice-bench" --broker "127.0.0.1:$PORT" --server-pid "$PID" --mode produce \
    --record-bytes 1024 --batch 500 --shards 4 --ack durable --duration "$SECS" --json |
    sed 's/^/native  /'
"${HB[@]}" --stream h1 | sed 's/^/http1.1 /'
"${HB[@]}" --stream h2 --h2 | sed 's/^/h2c     /'
echo "== read the backlog from the oldest"
"$B/bench/sluice-bench" --broker "127.0.0.1:$PORT" --server-pid "$PID" --mode consume \
    --record-bytes 1024 --shards 4 --backlog 400000 --json | sed 's/^/native  /'
"${HB[@]}" --stream h1 --mode get | sed 's/^/http1.1 /'
echo "== queues: send 1 KiB messages in tens; receive 10 + delete/ack them until empty"
"$B/bench/sluice-bench" --broker "127.0.0.1:$PORT" --server-pid "$PID" --mode produce \
    --record-bytes 1024 --batch 10 --shards 2 --ack durable --duration "$SECS" --json |
    sed 's/^/native  /'
"${HB[@]}" --stream sqsq --mode sqs-send | sed 's/^/sqs     /'
"$B/bench/sluice-bench" --broker "127.0.0.1:$PORT" --server-pid "$PID" --mode queue \
    --record-bytes 1024 --shards 2 --queue-max 10 --backlog 200000 --json | sed 's/^/native  /'
"${HB[@]}" --stream sqsq --mode sqs-drain | sed 's/^/sqs     /'
