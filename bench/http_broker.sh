# http_broker.sh - sourced by the HTTP benchmarks: starts the Release sluiced
# on a scratch directory with the native port ephemeral and an HTTP port
# picked at random (20000-39999), sets B (the Release build), DIR, PID, PORT
# (native) and HTTP, and stops and cleans up at exit. $1: the scratch name.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="$ROOT/build/release"
DIR="$(mktemp -d "/var/tmp/sluice-$1-XXXXXX")"
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
HTTP=$((20000 + RANDOM % 20000))
"$B/broker/sluiced" --data "$DIR/data" --port 0 --port-file "$DIR/port" --http-port "$HTTP" \
    --log-level warn &
PID=$!
for _ in $(seq 100); do [ -s "$DIR/port" ] && break; sleep 0.1; done
PORT=$(cat "$DIR/port")
