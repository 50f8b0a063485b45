#!/bin/sh
# prezero_ab.sh - the zeroed run-ahead (segment_prezero_bytes) before and after, side by side
# in one run, alternating (issue 12): durable-ack latency at 20,000 records/s on 1 and 4
# shards, batched throughput (1 KiB records, batches of 1000) durable and written, and the
# raw 4 KiB append + fdatasync latency of the same filesystem in each round.
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
trap 'rm -f "$OUT"' EXIT

raw() { # p50/p99/p99.9 of a 4 KiB append + fdatasync on a new file, 2000 samples
    python3 - "$DIR" <<'EOF'
import os, sys, time, tempfile
fd, path = tempfile.mkstemp(dir=sys.argv[1])
buf = b"x" * 4096
lat = []
try:
    for i in range(2000):
        t = time.perf_counter_ns()
        os.pwrite(fd, buf, i * 4096)
        os.fdatasync(fd)
        lat.append(time.perf_counter_ns() - t)
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] / 1000
print("raw p50_us=%.0f p99_us=%.0f p999_us=%.0f" % (q(0.5), q(0.99), q(0.999)))
EOF
}

run() { # label, sluice-bench args...
    label=$1
    shift
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
    r=$(raw)
    echo "round $i: $r"
    echo "raw $r" >>"$OUT"
    for pz in 0 "$AFTER"; do
        a="--broker-arg --segment-prezero-bytes=$pz"
        # shellcheck disable=SC2086
        run "pz=$pz/lat1" --mode produce --rate 20000 --ack durable --flush always --shards 1 $a
        # shellcheck disable=SC2086
        run "pz=$pz/lat4" --mode produce --rate 20000 --ack durable --flush always --shards 4 $a
        # shellcheck disable=SC2086
        run "pz=$pz/tput-durable" --mode produce --record-bytes 1024 --batch 1000 --ack durable \
            --flush always $a
        # shellcheck disable=SC2086
        run "pz=$pz/tput-written" --mode produce --record-bytes 1024 --batch 1000 --ack written $a
    done
done

echo "medians over $ROUNDS rounds:"
python3 - "$OUT" <<'EOF'
import json, sys, statistics as st
rows, raw = {}, []
for line in open(sys.argv[1]):
    label, rest = line.rstrip("\n").split(" ", 1)
    if label == "raw":
        raw.append(dict(kv.split("=") for kv in rest.split()))
        continue
    rows.setdefault(label, []).append(json.loads(rest))
for label, rs in rows.items():
    m = lambda k: st.median(r[k] for r in rs)
    print("%-22s %9.0f rec/s  p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us  (p99 of runs: %s)" % (
        label, m("records_per_s"), m("ack_p50_us"), m("ack_p99_us"), m("ack_p999_us"),
        " ".join("%.0f" % r["ack_p99_us"] for r in rs)))
if raw:
    m = lambda k: st.median(float(r[k]) for r in raw)
    print("raw 4 KiB append + fdatasync: p50 %.0f us  p99 %.0f us  p99.9 %.0f us" % (
        m("p50_us"), m("p99_us"), m("p999_us")))
EOF
