#!/bin/sh
# repl_ab.sh - durable produce on a single broker vs a stream of replication factor 3 on three
# brokers (#14 targets), side by side in one run on this machine, alternating which goes first
# by round: the batched throughput (1 KiB records, batches of 1000, 4 shards) and the ack
# latency at a fixed rate (1 KiB records, 1 shard, batches of 1 at RATE records/s), both
# --ack durable with flush = always. A replicated append is acknowledged once
# min_insync_replicas (2) brokers hold it on disk. And a queue group's drain (a backlog of
# 20,000 records of 100 bytes received and acked by 4 consumers): on the cluster every
# receive's delivery counts and every ack are control batches replicated in the group's
# shard (docs/REPLICATION.md "Queue groups").
#
#   bench/repl_ab.sh [ROUNDS] [RATE]     (default 3 rounds, 2000 records/s)
#
# Needs java and /usr/share/java/zookeeper.jar (Debian zookeeper). Env: BUILD (default
# build/release), DIR (scratch parent, default /var/tmp), PARTS (default "tput lat queue":
# which measurements run). The brokers' logs are kept in
# $DIR/repl_ab/*.log.
set -eu
ROUNDS=${1:-3}
RATE=${2:-2000}
PARTS=${PARTS:-tput lat queue}
BUILD=${BUILD:-build/release}
DIR=${DIR:-/var/tmp}
W=$DIR/repl_ab
SLUICED=$BUILD/broker/sluiced
CLI=$BUILD/client/sluice
B=$BUILD/bench/sluice-bench
ZKPORT=${ZKPORT:-22191}
BASE=${BASE:-7610}

rm -rf "$W"
mkdir -p "$W/zk"
# The disk's own limit, for the throughput figures: a 512 MiB sequential write + fdatasync.
DISK_MBS=$(dd if=/dev/zero of="$W/ddprobe" bs=1M count=512 conv=fdatasync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) v = $i; u = $NF }
         END { if (u ~ /^GB/) v *= 1000; print v + 0 }')
rm -f "$W/ddprobe"
# And one fdatasync's p99 (4 KiB appends, each synced), for the ack latency's target.
FSYNC_P99_US=$(python3 - "$W/fsprobe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
ts = []
for _ in range(500):
    t = time.perf_counter()
    os.write(fd, b"x" * 4096)
    os.fdatasync(fd)
    ts.append(time.perf_counter() - t)
os.unlink(sys.argv[1])
ts.sort()
print(int(ts[int(len(ts) * 0.99)] * 1e6))
PY
)
OUT=$W/runs
: >"$OUT"
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT INT TERM

printf 'tickTime=500\ndataDir=%s/zk\nclientPort=%s\nadmin.enableServer=false\n' "$W" "$ZKPORT" \
    >"$W/zk/zoo.cfg"
java -Xmx128m -cp "$W/zk:/usr/share/java/zookeeper.jar" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$W/zk/zoo.cfg" >"$W/zk.log" 2>&1 &
PIDS="$PIDS $!"
sleep 2

for n in 1 2 3; do
    "$SLUICED" --data "$W/b$n" --port $((BASE + n)) --http-port $((BASE + 100 + n)) \
        --cluster "zk://127.0.0.1:$ZKPORT/repl_ab" --node-id "$n" \
        --cluster-session-timeout-ms 4000 ${BROKER_ARGS:-} >"$W/b$n.log" 2>&1 &
    PIDS="$PIDS $!"
done
"$SLUICED" --data "$W/single" --port $((BASE + 9)) --http-port $((BASE + 109)) ${BROKER_ARGS:-} \
    >"$W/single.log" 2>&1 &
PIDS="$PIDS $!"
CLUSTER=127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))
SINGLE=127.0.0.1:$((BASE + 9))
sleep 3
for s in t l; do
    shards=4
    [ $s = l ] && shards=1
    "$CLI" --broker "$CLUSTER" stream create "r$s" --shards $shards --replication-factor 3
    "$CLI" --broker "$SINGLE" stream create "s$s" --shards $shards
done
sleep 1

run() { # label broker stream args...
    label=$1 broker=$2 stream=$3
    shift 3
    case " $PARTS " in *" ${label#*/} "*) ;; *) return 0 ;; esac
    sync
    if ! j=$(timeout 120 "$B" --broker "$broker" --stream "$stream" --ack durable --json "$@" \
        2>>"$W/bench.log" | tail -1) || [ -z "$j" ]; then
        echo "$label FAILED (see $W/bench.log)"
        return 0
    fi
    echo "$label $j" >>"$OUT"
    echo "$label $j" | python3 -c '
import json, sys
label, j = sys.stdin.read().split(" ", 1)
d = json.loads(j)
z = lambda v: v if v is not None else 0  # (a queue drain has no produce acks)
print("%-14s %9.0f rec/s  p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us  failed %d" % (label,
      d["records_per_s"], z(d["ack_p50_us"]), z(d["ack_p99_us"]), z(d["ack_p999_us"]),
      d["failed_records"]))'
}

TPUT="--mode produce --record-bytes 1024 --batch 1000 --duration 5"
LAT="--mode produce --record-bytes 1024 --batch 1 --rate $RATE --duration 5"
QUEUE="--mode queue --backlog 20000 --record-bytes 100 --consumers 4"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    echo "round $i"
    # a fresh stream per round for the queue's backlog
    "$CLI" --broker "$CLUSTER" stream create "rq$i" --shards 4 --replication-factor 3 >/dev/null
    "$CLI" --broker "$SINGLE" stream create "sq$i" --shards 4 >/dev/null
    sleep 1
    if [ $((i % 2)) = 1 ]; then
        run single/tput "$SINGLE" st $TPUT
        run rf3/tput "$CLUSTER" rt $TPUT
        run single/lat "$SINGLE" sl $LAT
        run rf3/lat "$CLUSTER" rl $LAT
        run single/queue "$SINGLE" sq$i $QUEUE
        run rf3/queue "$CLUSTER" rq$i $QUEUE
    else
        run rf3/tput "$CLUSTER" rt $TPUT
        run single/tput "$SINGLE" st $TPUT
        run rf3/lat "$CLUSTER" rl $LAT
        run single/lat "$SINGLE" sl $LAT
        run rf3/queue "$CLUSTER" rq$i $QUEUE
        run single/queue "$SINGLE" sq$i $QUEUE
    fi
    i=$((i + 1))
done

echo "medians over $ROUNDS rounds:"
python3 - "$OUT" "$DISK_MBS" "$FSYNC_P99_US" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, j = line.split(" ", 1)
    runs.setdefault(label, []).append(json.loads(j))
def med(label, f):
    return statistics.median((f(d) or 0) for d in runs[label]) if label in runs else 0
for kind in ("tput", "lat", "queue"):
    for who in ("single", "rf3"):
        l = who + "/" + kind
        if l not in runs:
            continue
        print("%-12s %9.0f rec/s  p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us" % (l,
              med(l, lambda d: d["records_per_s"]),
              med(l, lambda d: d["ack_p50_us"]), med(l, lambda d: d["ack_p99_us"]),
              med(l, lambda d: d["ack_p999_us"])))
s, r = med("single/tput", lambda d: d["records_per_s"]), med("rf3/tput", lambda d: d["records_per_s"])
if s:
    print("rf3 / single durable records/s: %.2f" % (r / s))
s, r = med("single/queue", lambda d: d["records_per_s"]), med("rf3/queue", lambda d: d["records_per_s"])
if s:
    print("rf3 / single queue drain records/s: %.2f" % (r / s))
# Every broker of the cluster writes every record (replication factor 3, one disk here): the
# disk takes three copies of what producers send, a single broker's one.
disk = float(sys.argv[2])
for who, copies in (("single", 1), ("rf3", 3)):
    r = med(who + "/tput", lambda d: d["records_per_s"])
    if r and disk > 0:
        mbs = r * 1024 * copies / 1e6
        print("%s/tput log writes (%d cop%s): %.0f MB/s = %.2f of the disk's sequential "
              "write + fdatasync (dd: %.0f MB/s)" % (who, copies, "y" if copies == 1 else "ies",
                                                      mbs, mbs / disk, disk))
# #14's latency target: rf3 p99 <= single p99 + one follower round trip + one fdatasync (the
# round trip on loopback is tens of microseconds: left out).
fs = float(sys.argv[3])
s, r = med("single/lat", lambda d: d["ack_p99_us"]), med("rf3/lat", lambda d: d["ack_p99_us"])
if s and r:
    print("rf3 p99 ack %.0f us vs single p99 %.0f + fdatasync p99 %.0f = %.0f us: %.2f of it"
          % (r, s, fs, s + fs, r / (s + fs)))
PY
