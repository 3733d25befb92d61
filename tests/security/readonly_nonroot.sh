#!/usr/bin/env bash
# mxpolicyd as it runs in production (issue 7 "Security"; helm/mxpolicy):
# as an unprivileged user (65534, no capabilities) on a read-only root
# filesystem where only $TMPDIR (a tmpfs) is writable — with TLS on, whose
# private certificate copies are the only files it writes. Checks: it starts,
# answers Resolve over TLS for a world domain, reloads on SIGHUP, writes
# its TLS copies into $TMPDIR, and exits 0 on SIGTERM.
#
# Needs root for unshare/mount/setpriv (CI is root); exit 77 (skipped)
# otherwise. Runs against the CTest world fixture (MXPOLICY_WORLD_DIR).
#
# usage: readonly_nonroot.sh   (env: MXPOLICYD, MXPOLICY_CLI, MXPOLICY_WORLD_DIR)
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "SKIPPED: needs root (unshare --mount, mount, setpriv)"
    exit 77
fi
: "${MXPOLICYD:?}" "${MXPOLICY_CLI:?}" "${MXPOLICY_WORLD_DIR:?}"
# shellcheck disable=SC1091
source "$MXPOLICY_WORLD_DIR/world.env"

fail() { echo "FAIL: $*" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir "$work/tmp"

# A throw-away server certificate for 127.0.0.1, readable by the service user.
cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/$1.key" -out "$work/$1.crt" -days 1 -subj "/CN=$1" \
        -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
    chmod 644 "$work/$1.key"
}
cert first
cert second
cp "$work/first.crt" "$work/server.crt"
cp "$work/first.key" "$work/server.key"
cat "$work/first.crt" "$work/second.crt" > "$work/both-cas.pem"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# In a private mount namespace: every filesystem read-only, a tmpfs on
# $work/tmp (owned by the service user) as the only writable place; then
# drop to user 65534 with no capabilities. The probe proves the root is
# really read-only before the service starts.
unshare --mount --propagation private bash -c '
    set -e
    # Every filesystem read-only, as with readOnlyRootFilesystem (the
    # kernel'"'"'s /proc, /sys and /dev stay as they are).
    findmnt -rn -o TARGET | while read -r m; do
        case $m in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
        mount -o remount,bind,ro "$m" 2>/dev/null || true
    done
    mount -t tmpfs -o size=8m,mode=0700,uid=65534,gid=65534 tmpfs "$1/tmp"
    if touch /mxpolicy-ro-probe 2>/dev/null; then
        rm -f /mxpolicy-ro-probe; echo "root filesystem still writable" >&2; exit 3
    fi
    tmp="$1/tmp"
    shift
    exec setpriv --reuid=65534 --regid=65534 --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        env TMPDIR="$tmp" "$@"
' ns "$work" "$MXPOLICYD" --listen="127.0.0.1:$port" --metrics-listen=127.0.0.1:0 \
    --unbound-config="$UNBOUND_CONF" --trust-anchor-file="$TRUST_ANCHOR" \
    --sts-ca-file="$CA_FILE" --sts-https-port="$HTTPS_PORT" \
    --tls-cert="$work/server.crt" --tls-key="$work/server.key" \
    --tls-check-interval=1h 2> "$work/stderr" &
pid=$!  # unshare, bash, setpriv and env exec: this is mxpolicyd

resolve() {
    "$MXPOLICY_CLI" resolve --json --deadline=10s --server="127.0.0.1:$port" \
        --tls-ca="$1" dane.test
}
answer=
for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; fail "mxpolicyd exited at start"; }
    if answer=$(resolve "$work/first.crt" 2>/dev/null); then break; fi
    sleep 0.1
done
[[ $answer == *'"DECISION_DANE_REQUIRED"'* ]] ||
    { cat "$work/stderr" >&2; fail "no DANE_REQUIRED answer over TLS: $answer"; }
echo "ok: Resolve over TLS as uid 65534 on a read-only root"

# The process really is unprivileged, and its TLS copies are in its $TMPDIR
# (seen through its own mount namespace).
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[[ $uid == 65534 ]] || fail "mxpolicyd runs as uid $uid, want 65534"
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
[[ $caps == 0000000000000000 ]] || fail "mxpolicyd has capabilities $caps"
[[ -n $(find "/proc/$pid/root$work/tmp" -type f 2>/dev/null) ]] ||
    fail "no TLS copies in the service's \$TMPDIR"
echo "ok: uid 65534, no capabilities, TLS copies in \$TMPDIR only"

# SIGHUP with a new certificate: the reload writes its copies into $TMPDIR
# (the only place it can) and new connections see the new certificate.
cp "$work/second.crt" "$work/server.crt"
cp "$work/second.key" "$work/server.key"
kill -HUP "$pid"
reloaded=
for _ in $(seq 50); do
    if resolve "$work/second.crt" >/dev/null 2>&1; then reloaded=1; break; fi
    sleep 0.1
done
[[ -n $reloaded ]] || { cat "$work/stderr" >&2; fail "SIGHUP reload not served"; }
grep -q "tls_reloaded trigger=sighup" "$work/stderr" || fail "no reload line in the log"
echo "ok: SIGHUP reload on a read-only root"

kill -TERM "$pid"
wait "$pid" || fail "mxpolicyd exited $? on SIGTERM"
pid=
if grep -Ei "read-only|permission denied|EROFS" "$work/stderr"; then
    fail "mxpolicyd hit a read-only or permission error"
fi
echo "ok: clean exit"
