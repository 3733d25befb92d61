#!/usr/bin/env bash
# make demo: start the hermetic test world and an mxpolicyd pointed at it,
# print `mxpolicy resolve` for every world domain, then stop everything.
set -euo pipefail
BUILD_DIR=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/$BUILD_DIR
RUN=$(mktemp -d /tmp/mxpolicy-demo.XXXXXX)
daemon_pid=

cleanup() {
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  bash "$ROOT/tests/world/world.sh" stop "$RUN/world" >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT

bash "$ROOT/tests/world/world.sh" start "$RUN/world" >/dev/null
# shellcheck disable=SC1091
. "$RUN/world/world.env"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/server/src/app/mxpolicyd" --listen="127.0.0.1:$PORT" \
  --unbound-config="$UNBOUND_CONF" --trust-anchor-file="$TRUST_ANCHOR" \
  --sts-ca-file="$CA_FILE" --sts-https-port="$HTTPS_PORT" 2>"$RUN/mxpolicyd.log" &
daemon_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done

echo "mxpolicyd on 127.0.0.1:$PORT against the test world (DNS :$DNS_PORT, HTTPS :$HTTPS_PORT)"
echo
while read -r domain; do
  [ -z "$domain" ] && continue
  echo "\$ mxpolicy resolve $domain"
  "$BIN/client/mxpolicy" resolve --server="127.0.0.1:$PORT" "$domain" || true
  echo
done < "$ROOT/tests/world/domains.txt"
