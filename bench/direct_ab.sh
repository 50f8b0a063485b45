#!/bin/sh
# direct_ab.sh - io_mode buffered vs direct, side by side in one run, alternating which goes
# first by round (issue 12): 1 KiB records, --ack durable --flush always - the latency at
# 20,000 records/s on 1 and 4 shards, and the batched throughput (batches of 1000, 4 shards)
# - and in each round the raw pwrite + fdatasync latency of the same filesystem: 4 KiB
# appended to a growing file (the issue's reference), 4 KiB overwriting a file zeroed
# beforehand, buffered and with O_DIRECT (what io_mode = direct writes into the zeroed
# run-ahead).
#
#   bench/direct_ab.sh [ROUNDS]     (default 3)
#
# Env: B (sluice-bench, default build/release/bench/sluice-bench), DIR (scratch parent,
# default /var/tmp). Prints one line per run, then the medians per configuration; the
# brokers' and the generator's messages go to $DIR/direct_ab.log (kept; a run that fails
# or hangs - 120 s - is reported and left out of the medians).
set -eu
ROUNDS=${1:-3}
B=${B:-build/release/bench/sluice-bench}
DIR=${DIR:-/var/tmp}
OUT=$(mktemp "$DIR/direct_ab.XXXXXX")
RAW=$(mktemp "$DIR/direct_raw.XXXXXX")
trap 'rm -f "$OUT" "$RAW"' EXIT

cat >"$RAW" <<'PY'
# argv: dir mode. One thread, one file, pwrite + fdatasync of 4 KiB for 3 s (at most 64 MiB):
# grow appends to a new file; zero and dzero overwrite a file zeroed (and synced) first,
# dzero through O_DIRECT from an aligned (mmap) buffer.
import mmap, os, sys, time
d, mode = sys.argv[1], sys.argv[2]
size = 4096
path = "%s/direct_raw.%d" % (d, os.getpid())
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
lat = []
try:
    if mode != "grow":
        z = bytes(1 << 20)
        for k in range(64):
            os.pwrite(fd, z, k << 20)
        os.fdatasync(fd)
    wfd = fd
    buf = mmap.mmap(-1, size)
    buf.write(b"x" * size)
    if mode == "dzero":
        wfd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    off = 0
    end = time.monotonic() + 3
    while time.monotonic() < end and off + size <= 64 << 20:
        t = time.perf_counter_ns()
        os.pwrite(wfd, buf, off)
        os.fdatasync(fd)
        lat.append(time.perf_counter_ns() - t)
        off += size
    if wfd != fd:
        os.close(wfd)
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] / 1000
print("%s p50_us=%.0f p99_us=%.0f p999_us=%.0f" % (mode, q(0.5), q(0.99), q(0.999)))
PY

run() { # label, sluice-bench args...
    label=$1
    shift
    sync # start each run with no dirty pages of the one before
    echo "== $label $*" >>"$DIR/direct_ab.log"
    if ! j=$(timeout 120 "$B" "$@" --dir "$DIR" --json 2>>"$DIR/direct_ab.log" | tail -1) ||
        [ -z "$j" ]; then
        echo "$label FAILED (see $DIR/direct_ab.log)"
        return 0
    fi
    echo "$label $j" >>"$OUT"
    echo "$label $j" | python3 -c '
import json, sys
label, j = sys.stdin.read().split(" ", 1)
r = json.loads(j)
print("%-22s %9.0f rec/s %7.1f MB/s  p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us  cpu %5.2f s/GB" % (
      label, r["records_per_s"], r["mb_per_s"], r["ack_p50_us"], r["ack_p99_us"], r["ack_p999_us"],
      r["server_cpu_s_per_gb"] or 0))'
}

for i in $(seq "$ROUNDS"); do
    for spec in grow zero dzero; do
        r=$(python3 "$RAW" "$DIR" $spec)
        echo "round $i: raw $r"
        echo "raw $r" >>"$OUT"
    done
    order="buffered direct"
    [ $((i % 2)) -eq 0 ] && order="direct buffered"
    for m in $order; do
        a="--broker-arg --io-mode=$m"
        # shellcheck disable=SC2086
        run "$m/lat1" --mode produce --record-bytes 1024 --rate 20000 --ack durable \
            --flush always --shards 1 $a
        # shellcheck disable=SC2086
        run "$m/lat4" --mode produce --record-bytes 1024 --rate 20000 --ack durable \
            --flush always --shards 4 $a
        # shellcheck disable=SC2086
        run "$m/tput" --mode produce --record-bytes 1024 --batch 1000 --shards 4 \
            --ack durable --flush always $a
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
for label in sorted(rows, key=lambda l: (l.split("/")[1], l)):
    rs = rows[label]
    m = lambda k: st.median(r[k] for r in rs)
    print("%-16s %9.0f rec/s %7.1f MB/s  p50 %6.0f us  p99 %7.0f us  p99.9 %7.0f us  cpu %5.2f s/GB  (p99 of runs: %s)" % (
        label, m("records_per_s"), m("mb_per_s"), m("ack_p50_us"), m("ack_p99_us"), m("ack_p999_us"),
        st.median((r["server_cpu_s_per_gb"] or 0) for r in rs),
        " ".join("%.0f" % r["ack_p99_us"] for r in rs)))
for name in dict.fromkeys(n for n, _ in raw):
    rs = [r for n, r in raw if n == name]
    m = lambda k: st.median(float(r[k]) for r in rs)
    print("raw 4 KiB %-6s pwrite+fdatasync: p50 %5.0f us  p99 %6.0f us  p99.9 %6.0f us  (p99 of runs: %s)" % (
        name, m("p50_us"), m("p99_us"), m("p999_us"), " ".join(r["p99_us"] for r in rs)))
PY
