#!/usr/bin/env bash
# metrics_scrape.sh - what a /metrics scrape costs with many shards, and
# what it does to the native protocol's latency meanwhile (a benchmark, not
# a test). Starts the Release sluiced on a scratch directory, creates
# STREAMS streams of SHARDS shards, writes a record to every shard, gives
# one consumer group a checkpoint on every stream (so lag needs time
# lookups), then:
#   1. times SCRAPES scrapes (curl: total time, bytes);
#   2. runs sluice-bench (tail latency at a fixed rate) twice, without and
#      with a scrape every second, and prints both p50/p99.
# Usage: bench/metrics_scrape.sh [STREAMS] [SHARDS] [SCRAPES]
# Defaults: 6 x 1000 shards (each open shard holds 3 descriptors; this
# machine's hard limit of 20,000 stops at ~6,600 shards until issue #11
# bounds descriptors).
set -euo pipefail
STREAMS=${1:-6}
SHARDS=${2:-1000}
SCRAPES=${3:-20}
# shellcheck source=bench/http_broker.sh
. "$(dirname "$0")/http_broker.sh" scrape
C=("$B/client/sluice" --broker "127.0.0.1:$PORT")
t0=$(date +%s.%N)
for s in $(seq 1 "$STREAMS"); do
    "${C[@]}" stream create "s$s" --shards "$SHARDS" >/dev/null
    # one record per shard: keys k0..k(4*SHARDS) cover every shard with high probability
    seq 0 $((4 * SHARDS)) | awk '{print "{\"k\":\"k" $1 "\"}"}' |
        "${C[@]}" produce "s$s" --key-field k 2>/dev/null
    "${C[@]}" consume "s$s" --from oldest --group g --count 1 >/dev/null
done
t1=$(date +%s.%N)
echo "setup: $STREAMS streams x $SHARDS shards in $(echo "$t1 - $t0" | bc) s"
times=()
for _ in $(seq "$SCRAPES"); do
    out=$(curl -s -o /dev/null -w '%{time_total} %{size_download}' "http://127.0.0.1:$HTTP/metrics")
    times+=("${out% *}")
    size=${out#* }
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
p50=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
max=$(echo "$sorted" | tail -1)
echo "scrape: $((STREAMS * SHARDS)) shards, $size bytes, p50 ${p50} s, max ${max} s over $SCRAPES"
BENCH="$B/bench/sluice-bench"
if [ -x "$BENCH" ]; then
    run() { "$BENCH" --broker "127.0.0.1:$PORT" --mode tail --shards 1 \
        --rate 2000 --duration 10 --warmup 1 2>/dev/null | grep -Ei "p50|p99" | head -4; }
    echo "tail latency, no scrapes:"; run
    ( for _ in $(seq 12); do curl -s -o /dev/null "http://127.0.0.1:$HTTP/metrics"; sleep 1; done ) &
    SCRAPER=$!
    echo "tail latency, a scrape every second:"; run
    wait "$SCRAPER"
fi
