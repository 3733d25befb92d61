#!/usr/bin/env bash
# make bench: benchmarks that report ratios against a baseline measured in the
# same run (never absolute times). Loopback only; everything stops by itself.
#   1. Cold-resolve parallelism: a 50 ms delay in front of the world's DNS;
#      cold Resolve latency of a 3-MX DANE domain / delay (target < 5).
set -euo pipefail
BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$(mktemp -d /tmp/mxpolicy-bench.XXXXXX)
relay_pid=
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
  bash "$ROOT/tests/world/world.sh" stop "$RUN/world" >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT

MAKEFLAGS= cmake --build "$ROOT/$BUILD_DIR" --target cold_resolve_bench -- --no-print-directory >/dev/null
bash "$ROOT/tests/world/world.sh" start "$RUN/world" >/dev/null
# shellcheck disable=SC1091
. "$RUN/world/world.env"
DELAY_MS=50
RELAY_PORT=$(/usr/bin/python3 -S -I -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -I "$ROOT/tests/bench/dns_delay_relay.py" --listen "$RELAY_PORT" \
  --upstream "$DNS_PORT" --delay-ms "$DELAY_MS" --lifetime 300 > "$RUN/relay.out" &
relay_pid=$!
for _ in $(seq 100); do grep -q ready "$RUN/relay.out" 2>/dev/null && break; sleep 0.05; done
sed "s/@$DNS_PORT/@$RELAY_PORT/" "$UNBOUND_CONF" > "$RUN/delayed-unbound.conf"

echo "== cold-resolve parallelism (issue 3) =="
"$ROOT/$BUILD_DIR/tests/cold_resolve_bench" --unbound-config="$RUN/delayed-unbound.conf" \
  --delay-ms="$DELAY_MS" --rounds=5
