#!/bin/sh
# prezero_ab.sh - the zeroed run-ahead (segment_prezero_bytes) before and after, side by side
# in one run, alternating (issue 12): durable-ack latency at 20,000 records/s on 1 and 4
# shards, batched throughput (1 KiB records, batches of 1000) durable and written, and in
# each round the raw pwrite + fdatasync latency of the same filesystem: one thread appending
# 4 KiB (the issue's reference), and 4 threads (one file each) appending 5 KiB to a growing
# file or overwriting a file zeroed beforehand (what 4 shards do, without and with it).
#
#   bench/prezero_ab.sh [ROUNDS] [AFTER]     (defaults: 3 rounds, AFTER = 4MiB)
#
# Env: B (sluice-bench, default build/release/bench/sluice-bench), DIR (scratch parent,
# default /var/tmp). Prints one line per run, then the medians per configuration.
set -eu
ROUNDS=${1:-3}
AFTER=${2:-4MiB}
B=${B:-build/release/bench/sluice-bench}
DIR=${DIR:-/var/tmp}
OUT=$(mktemp "$DIR/prezero_ab.XXXXXX")
RAW=$(mktemp "$DIR/prezero_raw.XXXXXX")
trap 'rm -f "$OUT" "$RAW"' EXIT

cat >"$RAW" <<'PY'
# argv: dir mode threads bytes. Each thread: its own file, pwrite + fdatasync for 3 s (at most
# 64 MiB); mode grow appends to a new file, zero overwrites a file zeroed (and synced) first.
import os, sys, time, threading
d, mode, nthr, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lat, lock = [], threading.Lock()
def worker(i):
    path = "%s/prezero_raw.%d.%d" % (d, os.getpid(), i)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if mode == "zero":
            z = bytes(1 << 20)
            for k in range(64):
                os.pwrite(fd, z, k << 20)
            os.fdatasync(fd)
        buf, off, mine = b"x" * size, 0, []
        end = time.monotonic() + 3
        while time.monotonic() < end and off + size <= 64 << 20:
            t = time.perf_counter_ns()
            os.pwrite(fd, buf, off)
            os.fdatasync(fd)
            mine.append(time.perf_counter_ns() - t)
            off += size
    finally:
        os.close(fd)
        os.unlink(path)
    with lock:
        lat.extend(mine)
th = [threading.Thread(target=worker, args=(i,)) for i in range(nthr)]
[t.start() for t in th]
[t.join() for t in th]
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] / 1000
print("%s%dx%d p50_us=%.0f p99_us=%.0f p999_us=%.0f" % (mode, nthr, size, q(0.5), q(0.99), q(0.999)))
PY

run() { # label, sluice-bench args...
    label=$1
    shift
    sync # start each run with no dirty pages of the one before
    j=$("$B" "$@" --dir "$DIR" --json 2>/dev/null | tail -1)
    echo "$label $j" >>"$OUT"
    echo "$label $j" | python3 -c '
import json, sys
label, j = sys.stdin.read().split(" ", 1)
r = json.loads(j)
print("%-22s %9.0f rec/s  p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us" % (label, r["records_per_s"],
      r["ack_p50_us"], r["ack_p99_us"], r["ack_p999_us"]))'
}

for i in $(seq "$ROUNDS"); do
    for spec in "grow 1 4096" "grow 4 5120" "zero 4 5120"; do
        # shellcheck disable=SC2086
        r=$(python3 "$RAW" "$DIR" $spec)
        echo "round $i: raw $r"
        echo "raw $r" >>"$OUT"
    done
    # Which goes first alternates by round; latency runs come before the throughput runs,
    # whose gigabytes of dirty pages would otherwise be written back under the next run.
    order="0 $AFTER"
    [ $((i % 2)) -eq 0 ] && order="$AFTER 0"
    for pz in $order; do
        a="--broker-arg --segment-prezero-bytes=$pz"
        # shellcheck disable=SC2086
        run "pz=$pz/lat1" --mode produce --rate 20000 --ack durable --flush always --shards 1 $a
        # shellcheck disable=SC2086
        run "pz=$pz/lat4" --mode produce --rate 20000 --ack durable --flush always --shards 4 $a
    done
    for pz in $order; do
        a="--broker-arg --segment-prezero-bytes=$pz"
        # shellcheck disable=SC2086
        run "pz=$pz/tput-durable" --mode produce --record-bytes 1024 --batch 1000 --ack durable \
            --flush always $a
        # shellcheck disable=SC2086
        run "pz=$pz/tput-written" --mode produce --record-bytes 1024 --batch 1000 --ack written $a
    done
done

echo "medians over $ROUNDS rounds:"
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows, raw = {}, []
for line in open(sys.argv[1]):
    label, rest = line.rstrip("\n").split(" ", 1)
    if label == "raw":
        name, kvs = rest.split(" ", 1)
        raw.append((name, dict(kv.split("=") for kv in kvs.split())))
        continue
    rows.setdefault(label, []).append(json.loads(rest))
for label, rs in rows.items():
    m = lambda k: st.median(r[k] for r in rs)
    print("%-22s %9.0f rec/s  p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us  (p99 of runs: %s)" % (
        label, m("records_per_s"), m("ack_p50_us"), m("ack_p99_us"), m("ack_p999_us"),
        " ".join("%.0f" % r["ack_p99_us"] for r in rs)))
for name in dict.fromkeys(n for n, _ in raw):
    rs = [r for n, r in raw if n == name]
    m = lambda k: st.median(float(r[k]) for r in rs)
    print("raw %-13s pwrite+fdatasync: p50 %5.0f us  p99 %6.0f us  p99.9 %6.0f us  (p99 of runs: %s)" % (
        name, m("p50_us"), m("p99_us"), m("p999_us"), " ".join(r["p99_us"] for r in rs)))
PY
