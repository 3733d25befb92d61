#!/usr/bin/env bash
# make bench: benchmarks that report ratios against a baseline measured in the
# same run (never absolute times). Loopback only; everything stops by itself.
#   1. Cold-resolve parallelism: a 50 ms delay in front of the world's DNS;
#      cold Resolve latency of a 3-MX DANE domain / delay (target < 5).
#   2. Stampede: 1 000 concurrent Resolve calls for one cold domain behind a
#      20 ms relay; MX queries and policy fetches counted at the world
#      (relay log, nginx access log) (target: MX 1, fetches <= 1).
#   3. Hot path: Resolve with every domain cached vs a canned baseline method
#      on the same server: throughput ratio (target >= 0.9) and p99 at
#      10 000 calls/s open loop (target <= 1 ms).
#   4. Shards: hit-path throughput with --cache-shards=1 / the default.
#   5. Memory: RSS per cached decision at 10^6 entries (target <= 1 KiB);
#      RSS flat over 10^5 domains with a 10^4-entry budget.
#   6. Socketmap (root: a private network namespace with its own world):
#      mxpolicy-postfix vs Debian's mta-sts-daemon over Postfix's socketmap
#      protocol, closed loop at 1/4/16/64 connections (targets at 16: an
#      MTA-STS domain >= 5x the throughput and <= 1/3 the p99; a domain
#      without MTA-STS >= 10x the throughput).
# Every benchmark runs even when an earlier one misses its target; the exit
# status is non-zero if any did (a benchmark that cannot run here, exit 77,
# is reported as skipped). Each command is printed before it runs.
set -euo pipefail
BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/$BUILD_DIR/tests"
RUN=$(mktemp -d /tmp/mxpolicy-bench.XXXXXX)
relay_pids=()
cleanup() {
  local p
  for p in ${relay_pids[@]+"${relay_pids[@]}"}; do
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  bash "$ROOT/tests/world/world.sh" stop "$RUN/world" >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -S -I -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_relay NAME DELAY_MS [--log FILE]: a delaying relay in front of knot;
# writes RUN/NAME-unbound.conf, an unbound config that goes through it.
start_relay() {
  local name=$1 delay=$2 port
  shift 2
  port=$(free_port)
  /usr/bin/python3 -I "$ROOT/tests/bench/dns_delay_relay.py" --listen "$port" \
    --upstream "$DNS_PORT" --delay-ms "$delay" --lifetime 600 "$@" > "$RUN/$name.out" &
  relay_pids+=($!)
  for _ in $(seq 100); do grep -q ready "$RUN/$name.out" 2>/dev/null && break; sleep 0.05; done
  sed "s/@$DNS_PORT/@$port/" "$UNBOUND_CONF" > "$RUN/$name-unbound.conf"
}

failed=()
skipped=()
# bench TITLE CMD...: prints the title and the command, runs it, remembers a
# failure (a missed target or an error) or a skip (exit 77: e.g. not root)
# without stopping the others.
bench() {
  local title=$1 rc=0
  shift
  echo
  echo "== $title =="
  echo "+ ${*#"$ROOT/"}"
  "$@" || rc=$?
  if ((rc == 77)); then
    skipped+=("$title")
  elif ((rc != 0)); then
    failed+=("$title")
  fi
}

MAKEFLAGS='' cmake --build "$ROOT/$BUILD_DIR" --target cold_resolve_bench \
  stampede_bench hot_path_bench memory_bench socketmap_load socketmap_null_server \
  -- --no-print-directory >/dev/null
bash "$ROOT/tests/world/world.sh" start "$RUN/world" >/dev/null
# shellcheck disable=SC1091
. "$RUN/world/world.env"
export MXPOLICY_WORLD_DIR="$RUN/world"
start_relay cold 50
start_relay stampede 20 --log "$RUN/stampede-queries.log"

bench "cold-resolve parallelism (issue 3)" \
  "$BIN/cold_resolve_bench" --unbound-config="$RUN/cold-unbound.conf" \
  --delay-ms=50 --rounds=5
bench "stampede: 1000 concurrent cold Resolve calls, 20 ms DNS delay" \
  "$BIN/stampede_bench" --unbound-config="$RUN/stampede-unbound.conf" \
  --relay-log="$RUN/stampede-queries.log" --domain=sts-blank.test --calls=1000
bench "hot path: Resolve (cached) vs canned baseline on the same server" \
  "$BIN/hot_path_bench" --mode=hot --pairs=6 --seconds=3 --channels=4 \
  --concurrency=64 --rate=10000
bench "shards: hit path with --cache-shards=1 vs the default" \
  "$BIN/hot_path_bench" --mode=shards --pairs=6 --seconds=3 --channels=4 \
  --concurrency=64
bench "memory: RSS per cached decision; RSS under a bounded budget" \
  "$BIN/memory_bench" --entries=1000000 --budget=10000 --requests=200000 \
  --template-domain=dane.test
bench "socketmap: mxpolicy-postfix vs mta-sts-daemon (Postfix's lookups)" \
  bash "$ROOT/tests/bench/socketmap_bench.sh" "$ROOT/$BUILD_DIR"

echo
if ((${#skipped[@]})); then
  printf 'skipped: %s\n' "${skipped[@]}"
fi
if ((${#failed[@]})); then
  printf 'missed target or failed: %s\n' "${failed[@]}"
  exit 1
fi
echo "all benchmarks met their targets"
