#!/usr/bin/env bash
# bench/peers/tail.sh - the tail cell of run.sh alone, Sluice and Redis Streams side by side
# and alternating, several rounds: 1 KiB records produced one at a time at --rate while one
# consumer tails, end-to-end latency from the moment the record is handed to the client
# library (Redis: the XADD call; Sluice: sluice_produce) to the consumer having it.
#
#   bench/peers/tail.sh [--rounds N] [--duration S] [--rate R] [--tier write|fsync]
#                       [--sluice-bench PATH]... [--out DIR]
#
# Redis 7.0 (AOF everysec, or always in the fsync tier) and every sluice-bench's broker run on
# core 0, the load generators on core 1, one at a time. --sluice-bench may be given several
# times (e.g. an older build's sluiced beside a copy of this sluice-bench: before/after); the
# default is build/release/bench/sluice-bench. Needs redis-server and libhiredis-dev
# (bench/peers/run.sh installs them). Prints one line per run and a table of medians;
# raw JSON lines go to DIR/results.jsonl.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=5
DUR=3
WARM=0.5
RATE=1000
TIER=write
OUT="/var/tmp/sluice-tail-$(date -u +%Y%m%d-%H%M%S)"
BENCHES=()

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --tier) TIER=$2; shift 2 ;;
    --sluice-bench) BENCHES+=("$2"); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "tail.sh: unknown option $1" >&2; usage ;;
    esac
done
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=("$ROOT/build/release/bench/sluice-bench")
case "$TIER" in write) FSYNC=everysec ACK=written FLUSH=interval ;; fsync) FSYNC=always ACK=durable FLUSH=always ;;
*) echo "tail.sh: --tier write or fsync" >&2; exit 2 ;; esac
command -v redis-server >/dev/null && [ -e /usr/include/hiredis/hiredis.h ] ||
    { echo "tail.sh: needs redis-server and libhiredis-dev (bench/peers/run.sh installs them)" >&2; exit 1; }
PY=python3
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: >"$RES"
TMP=$(mktemp -d /var/tmp/sluice-tail-tmp.XXXXXX)
RPID=""
cleanup() {
    if [ -n "$RPID" ]; then
        kill "$RPID" 2>/dev/null
        wait "$RPID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -Wall -o "$OUT/redis_drv" "$HERE/redis_drv.c" -lhiredis -lpthread || exit 1
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/redis"
printf 'bind 127.0.0.1\nport %s\ndir %s\ndaemonize no\nsave ""\nappendonly yes\nappendfsync %s\nauto-aof-rewrite-percentage 0\nprotected-mode no\n' \
    "$port" "$TMP/redis" "$FSYNC" >"$TMP/redis/redis.conf"
taskset -c 0 redis-server "$TMP/redis/redis.conf" >"$TMP/redis/log" 2>&1 &
RPID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

emit() { # system p50_us p99_us [extra json]
    printf '{"system":"%s","tier":"%s","p50_us":%s,"p99_us":%s%s}\n' "$1" "$TIER" "$2" "$3" "${4:-}" |
        tee -a "$RES"
}
for r in $(seq 1 "$ROUNDS"); do
    line=$(taskset -c 1 timeout 60 "$OUT/redis_drv" --port "$port" --mode tail --record-bytes 1024 \
        --batch 1 --rate "$RATE" --warmup "$WARM" --duration "$DUR" 2>>"$OUT/log" | grep '^{' | tail -1)
    [ -n "$line" ] && emit Redis \
        "$(echo "$line" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["p50_us"])')" \
        "$(echo "$line" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["p99_us"])')" \
        ",\"round\":$r"
    for i in "${!BENCHES[@]}"; do
        line=$(timeout 120 "${BENCHES[$i]}" --mode tail --record-bytes 1024 --batch 1 --rate "$RATE" \
            --shards 1 --producers 1 --consumers 1 --ack $ACK --flush $FLUSH --dir "$TMP" \
            --warmup "$WARM" --duration "$DUR" --cpu-server 0 --cpu-client 1 --json 2>>"$OUT/log" |
            grep '^{' | tail -1)
        [ -n "$line" ] || { echo "tail.sh: ${BENCHES[$i]} failed (see $OUT/log)" >&2; continue; }
        echo "$line" >>"$OUT/sluice-raw.jsonl"
        # from the produce call, as the Redis driver's (from XADD); the schedule's lag apart
        echo "$line" | "$PY" -c '
import json, sys
d = json.load(sys.stdin); i, r, tier = sys.argv[1], sys.argv[2], sys.argv[3]
p50 = d.get("e2e_from_call_p50_us") or d.get("e2e_p50_us")
p99 = d.get("e2e_from_call_p99_us") or d.get("e2e_p99_us")
print(json.dumps({"system": "Sluice#" + i, "tier": tier, "p50_us": p50, "p99_us": p99,
                  "round": int(r), "e2e_from_schedule_p50_us": d.get("e2e_p50_us"),
                  "breakdown": d.get("breakdown")}))' "$i" "$r" "$TIER" | tee -a "$RES" | cut -c1-160
    done
done
echo
echo "tail at $RATE records/s, 1 KiB, tier $TIER, $ROUNDS rounds; median of the runs' p50 and p99 (us):"
"$PY" - "$RES" "${BENCHES[@]}" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for d in rows:
    by.setdefault(d["system"], []).append(d)
redis = statistics.median(d["p50_us"] for d in by.get("Redis", [])) if "Redis" in by else None
print("| system | p50 | p99 | p50 / Redis |")
print("|---|---:|---:|---:|")
for name in sorted(by, key=lambda s: (s != "Redis", s)):
    ds = by[name]
    p50 = statistics.median(d["p50_us"] for d in ds)
    p99 = statistics.median(d["p99_us"] for d in ds)
    label = name if not name.startswith("Sluice#") else "Sluice (" + sys.argv[2 + int(name[7:])] + ")"
    ratio = "%.2f" % (p50 / redis) if redis else "-"
    print("| %s | %.1f | %.1f | %s |" % (label, p50, p99, ratio))
EOF
