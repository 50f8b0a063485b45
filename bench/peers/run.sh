#!/usr/bin/env bash
# bench/peers/run.sh - Sluice next to Redis Streams, RabbitMQ and NATS JetStream on this
# machine, same workloads, same CPU budget, two durability tiers. See bench/peers/README.md.
#
#   bench/peers/run.sh [--sluice-bench PATH] [--out DIR] [--duration S] [--warmup S]
#                      [--systems sluice,redis,rabbitmq,nats] [--no-install]
#                      [--multicore-runs N] [--warm-mb N]
#
# Installs what it needs with apt/npm (idempotent), builds the C drivers into DIR/build,
# measures the machine's ceilings and each driver's ceiling, then every cell; the server is
# pinned to core 0 and the load generator to core 1. Prints markdown tables and keeps every
# raw JSON line in DIR/results.jsonl. Each server is started here on 127.0.0.1, a free port
# and a config in a temporary directory, and stopped at the end (also on error or ^C).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SLUICE_BENCH="$ROOT/build/release/bench/sluice-bench"
OUT="/var/tmp/sluice-peers-$(date -u +%Y%m%d-%H%M%S)"
DUR=3
WARM=0.5
SYSTEMS="sluice,redis,rabbitmq,nats"
INSTALL=1
BACKLOG=100000   # records stored before the consume and queue cells
TAIL_RATE=1000   # records/s produced in the tail cells
QUEUE_BATCH=100  # receive batch / prefetch in the queue cells
MC_RUNS=3        # runs per worker count in the multi-core comparison (0: skip it)
WARM_MB=4096     # pages touched and freed before each system's tier (0: skip; see warm_pages)
WARM_DIR=/dev/shm
SERVER_CPU=0
CLIENT_CPU=1

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --sluice-bench) SLUICE_BENCH=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --warmup) WARM=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --multicore-runs) MC_RUNS=$2; shift 2 ;;
    --warm-mb) WARM_MB=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
done
case "$SLUICE_BENCH" in /*) ;; *) SLUICE_BENCH="$ROOT/$SLUICE_BENCH" ;; esac

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
T_START=$(date +%s)
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: >"$RES"
LOG="$OUT/run.log"
: >"$LOG"
TMP=$(mktemp -d /var/tmp/sluice-peers-tmp.XXXXXX)
BUILD="$OUT/build"
mkdir -p "$BUILD"

say() { printf '[%4ds] %s\n' $(($(date +%s) - T_START)) "$*" | tee -a "$LOG" >&2; }
want() { case ",$SYSTEMS," in *",$1,"*) return 0 ;; esac; return 1; }
# (servers are started as `taskset -c $SERVER_CPU cmd &` directly, so that $! is the server)
cli() { taskset -c "$CLIENT_CPU" "$@"; }
note() { # system tier text
    printf '{"system":"%s","tier":"%s","note":"%s"}\n' "$1" "$2" "$3" >>"$RES"
}
free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # port seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- cleanup: only what this script started ----
PIDS=()
EPMD_BEFORE="" # epmd pids running before RabbitMQ started (not ours)
EPMD_OURS=0
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.25
        done
        kill -9 "$p" 2>/dev/null
    done
    PIDS=()
    if [ $EPMD_OURS = 1 ]; then # the epmd daemon RabbitMQ's start spawned, by pid
        for p in $(pgrep -x epmd); do
            case " $EPMD_BEFORE " in *" $p "*) ;; *) kill "$p" 2>/dev/null ;; esac
        done
        EPMD_OURS=0
    fi
}
trap 'cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# ---- 1. packages ----
install_deps() {
    local need=()
    command -v redis-server >/dev/null || need+=(redis-server)
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
    command -v nats-server >/dev/null || need+=(nats-server)
    [ -e /usr/include/hiredis/hiredis.h ] || need+=(libhiredis-dev)
    [ -e /usr/include/amqp.h ] || need+=(librabbitmq-dev)
    command -v fio >/dev/null || need+=(fio)
    command -v cc >/dev/null || need+=(build-essential)
    command -v node >/dev/null || need+=(nodejs npm)
    if [ ${#need[@]} -gt 0 ]; then
        say "apt-get install ${need[*]}"
        # Keep the packages' daemons from starting (no init system here, or a real one).
        local made_policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            made_policy=1
        fi
        apt-get update -qq >>"$LOG" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >>"$LOG" 2>&1 ||
            { echo "run.sh: apt-get install failed (see $LOG)" >&2; exit 1; }
        [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    fi
    # Distro services, if a package did start them: stop and disable (ours use other ports).
    # Only when one runs: even a `stop` of RabbitMQ's init script spawns an epmd.
    local s u
    for s in redis-server:redis rabbitmq-server:rabbitmq nats-server:nats; do
        u=${s#*:}
        s=${s%%:*}
        if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
            systemctl is-enabled --quiet "$s" 2>/dev/null && systemctl disable --now "$s" >/dev/null 2>&1
        elif [ -x "/etc/init.d/$s" ] && pgrep -u "$u" >/dev/null 2>&1; then
            say "stopping the distro's $s"
            "/etc/init.d/$s" stop >/dev/null 2>&1
            update-rc.d "$s" disable >/dev/null 2>&1
        fi
    done
    if [ ! -d "$HERE/node_modules/nats" ]; then
        say "npm install (bench/peers/node_modules)"
        (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >>"$LOG" 2>&1) ||
            { echo "run.sh: npm install failed (see $LOG)" >&2; exit 1; }
    fi
}
[ $INSTALL = 1 ] && install_deps

# ---- 2. drivers ----
say "building drivers into $BUILD"
cc -O2 -Wall -o "$BUILD/redis_drv" "$HERE/redis_drv.c" -lhiredis -lpthread || exit 1
cc -O2 -Wall -o "$BUILD/amqp_drv" "$HERE/amqp_drv.c" -lrabbitmq -lpthread || exit 1
cc -O2 -Wall -o "$BUILD/nats_drv" "$HERE/nats_drv.c" || exit 1
cc -O2 -Wall -o "$BUILD/amqp_fake" "$HERE/amqp_fake.c" || exit 1
cc -O2 -Wall -o "$BUILD/loopback" "$HERE/loopback.c" -lpthread || exit 1

# run_cell SYSTEM TIER COMMAND... : runs a driver on the client core, keeps its JSON line
run_cell() {
    local sys=$1 tier=$2
    shift 2
    local line
    line=$(cli timeout 60 "$@" 2>>"$LOG" | grep '^{' | tail -1)
    if [ -z "$line" ]; then
        say "  FAILED: $sys $tier: $*"
        note "$sys" "$tier" "a cell failed: see run.log"
        return 1
    fi
    # the drivers print system "?" unless told; stamp system and tier here
    line=$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d["system"]=sys.argv[2]; d["tier"]=sys.argv[3]; print(json.dumps(d))' "$line" "$sys" "$tier")
    echo "$line" >>"$RES"
    say "  $line"
}

# ---- 3. machine ceilings ----
DATA_FS="$TMP/fio"
mkdir -p "$DATA_FS"
fio_json() { # name args...
    local name=$1
    shift
    cli fio --name="$name" --directory="$DATA_FS" --output-format=json "$@" 2>>"$LOG"
    rm -f "$DATA_FS"/*
}
ceil_line() { # workload record_bytes mb_per_s p50 p99 [ops_per_s]
    printf '{"system":"machine","tier":"ceiling","workload":"%s","record_bytes":%s,"batch":null,"records_per_s":%s,"mb_per_s":%s,"p50_us":%s,"p99_us":%s}\n' \
        "$1" "$2" "${6:-null}" "$3" "$4" "$5" | tee -a "$RES" >>"$LOG"
}
say "machine ceilings (fio on $(df --output=source,fstype "$TMP" | tail -1 | tr -s ' '), loopback TCP)"
if command -v fio >/dev/null; then
    j=$(fio_json seq --rw=write --bs=1M --size=1G --ioengine=libaio --iodepth=8 --direct=1 --runtime=3 --time_based)
    ceil_line seq_write_direct_1MiB 1048576 \
        "$(echo "$j" | "$PY" -c 'import json,sys; w=json.load(sys.stdin)["jobs"][0]["write"]; print("%.1f" % (w["bw_bytes"]/1e6))')" null null
    j=$(fio_json fsync4k --rw=write --bs=4k --size=256M --ioengine=sync --fdatasync=1 --runtime=3 --time_based)
    echo "$j" | "$PY" -c '
import json,sys
j=json.load(sys.stdin)["jobs"][0]; p=j["sync"]["lat_ns"]["percentile"]; w=j["write"]
print("%.1f %.1f %.1f %.1f" % (w["bw_bytes"]/1e6, p["50.000000"]/1e3, p["99.000000"]/1e3, w["iops"]))' >"$TMP/f"
    read -r mb p50 p99 iops <"$TMP/f"
    ceil_line fdatasync_4KiB_append 4096 "$mb" "$p50" "$p99" "$iops"
    j=$(fio_json gc256k --rw=write --bs=256k --size=1G --ioengine=sync --fdatasync=1 --runtime=3 --time_based)
    echo "$j" | "$PY" -c '
import json,sys
j=json.load(sys.stdin)["jobs"][0]; p=j["sync"]["lat_ns"]["percentile"]; w=j["write"]
print("%.1f %.1f %.1f %.1f" % (w["bw_bytes"]/1e6, p["50.000000"]/1e3, p["99.000000"]/1e3, w["iops"]))' >"$TMP/f"
    read -r mb p50 p99 iops <"$TMP/f"
    ceil_line group_commit_256KiB_fdatasync 262144 "$mb" "$p50" "$p99" "$iops"
else
    note machine ceiling "fio not installed: disk ceilings skipped"
fi
# loopback: receiver on the server core, sender on the client core, 1 MiB writes
lp=$(free_port)
taskset -c "$SERVER_CPU" "$BUILD/loopback" --serve "$lp" >"$TMP/lb" 2>>"$LOG" &
lbpid=$!
wait_port "$lp" 5
cli "$BUILD/loopback" --send "$lp" --seconds 3 >>"$LOG" 2>&1
wait "$lbpid"
ceil_line loopback_tcp_1MiB_writes 1048576 "$(cat "$TMP/lb")" null null
cat "$RES" | grep machine | sed 's/^/  /' >&2

# ---- 4. the systems ----
# Cells of one tier: produce 1 KiB x 1/100/1000, produce 100 B x 1000, consume a backlog,
# tail at TAIL_RATE (end-to-end latency), queue receive+ack (where the tier has a queue).
# TAIL_CMD (an array), when set, is the driver of the tail cell.
# On a VM whose host backs guest memory lazily, the first write into a never-used page
# costs ~10x a reused one (a 2 GB dd to a new file: ~490 MB/s cold, 6.5 GB/s right
# after the pages were freed). Every broker here writes through the page cache, so
# before each system's tier WARM_MB of pages are touched and freed (tmpfs, no disk I/O)
# and whoever runs next reuses them: the same starting state for everyone.
warm_pages() {
    [ "$WARM_MB" -gt 0 ] || return 0
    local d=$WARM_DIR
    [ -d "$d" ] && [ -w "$d" ] || d=$TMP
    local f="$d/sluice-peers-warm.$$"
    dd if=/dev/zero of="$f" bs=1M count="$WARM_MB" status=none 2>>"$LOG" || true
    rm -f "$f"
}
peer_cells() { # system tier queue(0|1) driver-command...
    local sys=$1 tier=$2 q=$3
    shift 3
    warm_pages
    local b t=("$@")
    [ -n "${TAIL_CMD+x}" ] && t=("${TAIL_CMD[@]}")
    for b in 1 100 1000; do
        run_cell "$sys" "$tier" "$@" --mode produce --record-bytes 1024 --batch $b --warmup "$WARM" --duration "$DUR"
    done
    run_cell "$sys" "$tier" "$@" --mode produce --record-bytes 100 --batch 1000 --warmup "$WARM" --duration "$DUR"
    run_cell "$sys" "$tier" "$@" --mode consume --record-bytes 1024 --batch 1000 --backlog $BACKLOG --duration "$DUR"
    run_cell "$sys" "$tier" "${t[@]}" --mode tail --record-bytes 1024 --batch 1 --rate $TAIL_RATE --warmup "$WARM" --duration "$DUR"
    [ "$q" = 1 ] &&
        run_cell "$sys" "$tier" "$@" --mode queue --record-bytes 1024 --batch $QUEUE_BATCH --backlog $BACKLOG --duration "$DUR"
}
calib_cells() { # system driver-command...
    local sys=$1
    shift
    local b
    for b in 1 100 1000; do
        run_cell "$sys" calib "$@" --mode calib --record-bytes 1024 --batch $b --warmup 0.3 --duration 2
    done
    run_cell "$sys" calib "$@" --mode calib --record-bytes 100 --batch 1000 --warmup 0.3 --duration 2
}

# -- Sluice (sluice-bench starts and pins its own broker) --
sluice_cell() { # tier mode bytes batch extra...
    local tier=$1 mode=$2 bytes=$3 batch=$4
    shift 4
    local ack flush line
    if [ "$tier" = fsync ]; then ack=durable flush=always; else ack=written flush=interval; fi
    line=$(timeout 120 "$SLUICE_BENCH" --mode "$mode" --record-bytes "$bytes" --batch "$batch" \
        --shards 1 --producers 1 --consumers 1 --ack $ack --flush $flush --dir "$TMP" \
        --warmup "$WARM" --duration "$DUR" --cpu-server $SERVER_CPU --cpu-client $CLIENT_CPU \
        --json "$@" 2>>"$LOG" | grep '^{' | tail -1)
    if [ -z "$line" ]; then
        say "  FAILED: sluice $tier $mode $bytes x $batch"
        note Sluice "$tier" "a cell failed: see run.log"
        return 1
    fi
    echo "$line" >>"$OUT/sluice-raw.jsonl"
    # adapter: sluice-bench's object -> the common line (ack latency for produce and queue,
    # end-to-end for tail, none for consume). Tail: from the produce call (e2e_from_call), as
    # the peers' drivers stamp a record when they send it; sluice-bench's own e2e counts from
    # the record's scheduled time (its sleep's lag too), kept in sluice-raw.jsonl.
    line=$("$PY" - "$line" "$tier" "$mode" "$bytes" "$batch" <<'EOF'
import json, sys
d = json.loads(sys.argv[1]); tier, mode = sys.argv[2], sys.argv[3]
lat = {"produce": "ack", "queue": "ack", "tail": "e2e"}.get(mode)
if mode == "tail" and d.get("e2e_from_call_p50_us") is not None:
    lat = "e2e_from_call"
print(json.dumps({"system": "Sluice", "tier": tier, "workload": mode,
    "record_bytes": int(sys.argv[4]), "batch": int(sys.argv[5]),
    "records_per_s": d.get("records_per_s"), "mb_per_s": d.get("mb_per_s"),
    "p50_us": d.get(lat + "_p50_us") if lat else None,
    "p99_us": d.get(lat + "_p99_us") if lat else None}))
EOF
)
    echo "$line" >>"$RES"
    say "  $line"
}
if want sluice; then
    if [ ! -x "$SLUICE_BENCH" ]; then
        say "sluice-bench not built ($SLUICE_BENCH)"
        note Sluice all "sluice-bench not built"
    else
        for tier in fsync write; do
            warm_pages
            say "Sluice, tier $tier"
            # --inflight N: one batch of N records in flight, as the peers' N per round trip
            for b in 1 100 1000; do sluice_cell $tier produce 1024 $b --inflight $b; done
            sluice_cell $tier produce 100 1000 --inflight 1000
            # backlog drains are measured from their start, as the peers' are (no warm-up,
            # which would eat the backlog); flags after the cell's override the defaults
            sluice_cell $tier consume 1024 1000 --backlog $BACKLOG --warmup 0
            sluice_cell $tier tail 1024 1 --rate $TAIL_RATE
            sluice_cell $tier queue 1024 $QUEUE_BATCH --backlog $BACKLOG --queue-max $QUEUE_BATCH --warmup 0
        done
    fi
fi

# -- Sluice on both cores: 1 worker vs 2 (issue #5's multi-core figure) --
# Not pinned (the broker and the load generator share both cores, as a user's would);
# 4 shards, 2 producers, produce 1 KiB x 1,000; the two worker counts alternate, RUNS
# times each, and the median is reported.
MC="$OUT/multicore.jsonl"
: >"$MC"
if want sluice && [ -x "$SLUICE_BENCH" ] && [ "$MC_RUNS" -gt 0 ]; then
    for tier in write fsync; do
        if [ "$tier" = fsync ]; then ack=durable flush=always; else ack=written flush=interval; fi
        warm_pages
        say "Sluice multi-core, tier $tier: workers 1 vs 2, $MC_RUNS runs each"
        for r in $(seq 1 "$MC_RUNS"); do
            for w in 1 2; do
                line=$(timeout 120 "$SLUICE_BENCH" --mode produce --record-bytes 1024 --batch 1000 \
                    --shards 4 --producers 2 --inflight 8000 --ack $ack --flush $flush --dir "$TMP" \
                    --warmup "$WARM" --duration "$DUR" --broker-arg --workers=$w --json 2>>"$LOG" |
                    grep '^{' | tail -1)
                [ -n "$line" ] && printf '{"tier":"%s","workers":%d,"run":%s}\n' "$tier" "$w" "$line" >>"$MC"
            done
        done
    done
fi

# -- Redis 7.0: one server, AOF on; appendfsync always (fsync tier), then everysec (write) --
if want redis; then
    port=$(free_port)
    d="$TMP/redis"
    mkdir -p "$d"
    cat >"$d/redis.conf" <<EOF
bind 127.0.0.1
port $port
dir $d
daemonize no
save ""
appendonly yes
appendfsync always
auto-aof-rewrite-percentage 0
protected-mode no
EOF
    say "Redis $(redis-server --version | awk '{print $3}') on port $port"
    taskset -c "$SERVER_CPU" redis-server "$d/redis.conf" >"$d/log" 2>&1 &
    PIDS+=($!)
    if wait_port "$port" 10; then
        R=("$BUILD/redis_drv" --port "$port")
        calib_cells Redis "${R[@]}"
        say "Redis, tier fsync (appendfsync always)"
        peer_cells Redis fsync 1 "${R[@]}"
        redis-cli -p "$port" config set appendfsync everysec >>"$LOG"
        say "Redis, tier write (appendfsync everysec)"
        peer_cells Redis write 1 "${R[@]}"
    else
        note Redis all "redis-server did not start: see $d/log"
    fi
    cleanup
fi

# -- RabbitMQ 3.10: quorum queue (fsync tier), stream queue (write tier), AMQP 0.9.1 --
if want rabbitmq; then
    port=$(free_port)
    d="$TMP/rabbitmq"
    mkdir -p "$d"
    cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$port
loopback_users = none
EOF
    echo '[].' >"$d/enabled_plugins"
    : >"$d/rabbitmq-env.conf"
    # the driver's ceiling: amqp_drv against a trivial AMQP server (amqp_fake.c)
    fport=$(free_port)
    taskset -c "$SERVER_CPU" "$BUILD/amqp_fake" "$fport" 2>>"$LOG" &
    PIDS+=($!)
    if wait_port "$fport" 5; then
        say "RabbitMQ driver against amqp_fake (trivial AMQP server) on port $fport"
        calib_cells RabbitMQ "$BUILD/amqp_drv" --port "$fport"
    fi
    cleanup
    EPMD_BEFORE=" $(pgrep -x epmd | tr '\n' ' ')"
    EPMD_OURS=1
    say "RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null) on port $port"
    (
        export HOME="$d" RABBITMQ_NODENAME="sluicebench$$@localhost" RABBITMQ_MNESIA_BASE="$d/mnesia" \
            RABBITMQ_LOG_BASE="$d/log" RABBITMQ_CONFIG_FILE="$d/rabbitmq" \
            RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
            RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" RABBITMQ_PID_FILE="$d/pid" \
            RABBITMQ_DIST_PORT="$(free_port)"
        exec taskset -c "$SERVER_CPU" /usr/lib/rabbitmq/bin/rabbitmq-server
    ) >"$d/out.log" 2>&1 &
    PIDS+=($!)
    if wait_port "$port" 60; then
        A=("$BUILD/amqp_drv" --port "$port")
        # confirmed publishes the broker drops (unroutable): driver + RabbitMQ's front end
        calib_cells RabbitMQ-unroutable "${A[@]}"
        say "RabbitMQ, tier fsync (quorum queue, publisher confirms)"
        peer_cells RabbitMQ fsync 1 "${A[@]}" --queue-type quorum
        say "RabbitMQ, tier write (stream queue over AMQP, publisher confirms)"
        peer_cells RabbitMQ write 0 "${A[@]}" --queue-type stream
        note RabbitMQ write "queue: a stream queue has no per-message ack removal (quorum queue is the fsync tier)"
    else
        note RabbitMQ all "rabbitmq-server did not start: see $d/out.log"
    fi
    cleanup
fi

# -- NATS 2.9 JetStream: file storage, default sync (write tier only) --
if want nats; then
    note NATS fsync "n/a: JetStream 2.9 has no setting that fsyncs before the ack"
    port=$(free_port)
    d="$TMP/nats"
    mkdir -p "$d"
    cat >"$d/nats.conf" <<EOF
host: 127.0.0.1
port: $port
jetstream {
  store_dir: "$d/js"
}
EOF
    say "NATS $(nats-server --version | awk '{print $2}') on port $port"
    taskset -c "$SERVER_CPU" nats-server -c "$d/nats.conf" >"$d/log" 2>&1 &
    PIDS+=($!)
    if wait_port "$port" 10; then
        NC=("$BUILD/nats_drv" --port "$port")              # C, NATS text protocol
        TAIL_CMD=(node "$HERE/nats_drv.js" --port "$port")  # Node, npm nats: tail only
        calib_cells NATS "${NC[@]}"
        say "NATS, tier write (JetStream file storage, defaults)"
        peer_cells NATS write 1 "${NC[@]}"
        unset TAIL_CMD
    else
        note NATS all "nats-server did not start: see $d/log"
    fi
    cleanup
fi

# ---- 5. tables ----
"$PY" "$HERE/render.py" "$RES" | tee "$OUT/tables.md"
[ -s "$MC" ] && "$PY" "$HERE/render_multicore.py" "$MC" | tee -a "$OUT/tables.md"
say "done in $(($(date +%s) - T_START)) s; raw lines: $RES, tables: $OUT/tables.md, log: $LOG"
