#!/usr/bin/env bash
# posttls_finger_dane.sh -- conformance: mxpolicy's per-host DANE verdicts
# (SPEC G) against Postfix's own DANE implementation, `posttls-finger -l dane`.
#
#   posttls_finger_dane.sh BUILD_DIR
#
# Binaries: BUILD_DIR/server/src/app/mxpolicyd and BUILD_DIR/client/mxpolicy
# (override with MXPOLICYD=... / MXPOLICY_CLI=...).
#
# posttls-finger needs a validating resolver on port 53 and SMTP servers on
# port 25 for the MX hosts (all 127.0.0.1 / ::1 in the test world), so
# everything runs inside a private network + mount + PID namespace
# (`unshare`): the test world (tests/world/world.sh), a validating `unbound`
# on 127.0.0.1:53 (stub zone test. -> knotd, the world's trust anchor), a
# bind-mounted resolv.conf ("nameserver 127.0.0.1"; the host's file is never
# written), a small STARTTLS server on port 25 (smtp_tls_server.py: the
# certificate is chosen by SNI), and mxpolicyd. Then, for every MX host of the
# DANE-relevant world domains:
#     mxpolicy resolve --json DOMAIN            -> tlsRequirement/tlsaState
#     posttls-finger -v -c -l dane '[HOST]'     -> Verified/Untrusted/TLSA error
# plus one `posttls-finger -l dane DOMAIN` per domain (Postfix's own MX walk).
# posttls_finger_compare.py holds the expected correspondence and prints one
# line per (domain, host): "OK domain host mxpolicy=... posttls-finger=..." or
# "MISMATCH ...".
#
# Exit: 0 all agree (>= 10 hosts compared), 1 mismatch or error,
#       77 skipped (not root, or no network namespace possible).
# Needs: postfix (posttls-finger), unbound, iproute2, util-linux (unshare),
#        python3, plus the world's tools (knot, knot-dnsutils, ldnsutils,
#        nginx-light, openssl).
#
# PTF_KEEP_RUN=1 keeps the run directory (all logs) and prints its path;
# PTF_VERBOSE=1 prints posttls-finger's evidence lines for every run (always
# printed under a MISMATCH);
# PTF_NO_IPV6=1 disables IPv6 inside the namespace (as in some CI containers).
#
# shellcheck disable=SC2317  # trap handlers and wait_for callbacks run indirectly
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF
readonly HERE=${SELF%/*}
ROOT=$(cd "$HERE/../.." && pwd)
readonly ROOT
readonly WORLD_SH=$ROOT/tests/world/world.sh
export PATH=$PATH:/usr/sbin:/sbin   # posttls-finger, unbound, knotd, ip
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
PYTHON=/usr/bin/python3            # pyenv shims cost ~300 ms per call
[[ -x $PYTHON ]] || PYTHON=python3

# The DANE-relevant domains of the world (tests/world/world.sh). Left out:
#   tlsa-empty.test    posttls-finger 3.7 panics on a TLSA RR with empty data
#                      ("panic: mymalloc: requested length 0"); nothing to compare
#   mx-dot-mixed.test  Postfix treats "MX 0 ." among other MX as null MX;
#                      mxpolicy ignores the "." (SPEC J4, a project decision)
#   mx-ipliteral.test  the MX target is 192.0.2.1, not a loopback address
#   mx-100.test        100 hosts (time); lame.test (a 5 s DNS timeout)
# HOST_DOMAINS must come back with MX hosts (compared per host and by Postfix's
# MX walk); NOHOST_DOMAINS have none (MX lookup bogus, null MX, NXDOMAIN) and
# are compared by the walk only.
readonly HOST_DOMAINS=(
    dane.test two-mx.test three-mx.test cname-secure.test cname-insecure.test
    unusable.test dane-ta.test implicit.test tlsa-bogus.test ipv6only.test
    nodane.test insecure.test secmx-insecure-host.test
    tlsa-huge.test cname-loop.test
)
readonly NOHOST_DOMAINS=(
    bogus-sig.test bogus-ds.test bogus-expired.test nullmx.test nxdomain.test
)
readonly DOMAINS=("${HOST_DOMAINS[@]}" "${NOHOST_DOMAINS[@]}")
readonly MIN_HOSTS=10

log() { echo "posttls_finger_dane: $*" >&2; }
die() { echo "posttls_finger_dane: ERROR: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }

###############################################################################
# outer: checks, temp dir, the namespace
###############################################################################
outer() {
    [[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
    local build
    build=$(cd "$1" && pwd) || die "no build dir $1"
    export MXPOLICYD=${MXPOLICYD:-$build/server/src/app/mxpolicyd}
    export MXPOLICY_CLI=${MXPOLICY_CLI:-$build/client/mxpolicy}

    local t why="posttls-finger conformance needs root for a private network namespace"
    [[ $EUID -eq 0 ]] || skip "$why"
    for t in unshare ip mount; do
        command -v "$t" >/dev/null || skip "$why"
    done
    unshare --net --mount --pid --fork true 2>/dev/null || skip "$why"

    # Missing tools are a failed test, not a skip: CI installs them
    # (scripts/install-deps.sh), and a skip would hide a missing install step.
    for t in posttls-finger unbound kdig knotd nginx ldns-signzone openssl; do
        command -v "$t" >/dev/null \
            || die "$t not found (install postfix unbound iproute2 and the world's packages)"
    done
    [[ -x $MXPOLICYD ]] || die "mxpolicyd not found: $MXPOLICYD (build first)"
    [[ -x $MXPOLICY_CLI ]] || die "mxpolicy not found: $MXPOLICY_CLI (build first)"

    RUN=$(mktemp -d "${TMPDIR:-/tmp}/mxpolicy-ptf.XXXXXX")
    chmod 755 "$RUN"            # nginx workers (nobody) read the world below it
    UPID=
    trap outer_cleanup EXIT
    trap 'outer_signal TERM' TERM
    trap 'outer_signal INT' INT

    # --kill-child: if unshare dies (e.g. SIGKILL on a CTest timeout), the
    # inner shell (PID 1 of the namespace) gets SIGKILL and the kernel then
    # kills every process in the namespace.
    unshare --net --mount --pid --mount-proc --fork --kill-child \
        -- /bin/bash "$SELF" --inner "$RUN" &
    UPID=$!
    local rc=0
    wait "$UPID" || rc=$?
    UPID=
    exit "$rc"
}

# The inner shell runs its own cleanup on TERM; unshare blocks TERM/INT while
# it waits, so the signal goes straight to its child.
outer_signal() {
    local child children=()
    if [[ -n $UPID ]]; then
        read -r -a children < "/proc/$UPID/task/$UPID/children" 2>/dev/null || true
        for child in "${children[@]}"; do
            kill -TERM "$child" 2>/dev/null || true
        done
        wait "$UPID" 2>/dev/null || true
        UPID=
    fi
    if [[ $1 == TERM ]]; then exit 143; else exit 130; fi
}

outer_cleanup() {
    [[ -n ${RUN:-} ]] || return 0
    if [[ ${PTF_KEEP_RUN:-0} == 1 ]]; then
        log "run directory kept: $RUN"
    else
        rm -rf -- "$RUN"
    fi
}

###############################################################################
# inner: runs as PID 1 of the new namespaces
###############################################################################
PIDS=()          # "name:pid" of the daemons started here (not the world)

inner_cleanup() {
    local rc=$? entry pid i
    trap - EXIT INT TERM
    # reverse start order; TERM, then KILL after 5 s
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        entry=${PIDS[i]}; pid=${entry#*:}
        kill -TERM "$pid" 2>/dev/null || continue
    done
    for entry in "${PIDS[@]}"; do
        pid=${entry#*:}
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ ! -d $RUN/world ]] || bash "$WORLD_SH" stop "$RUN/world" >/dev/null 2>&1 || true
    exit "$rc"
}

# wait_for SECONDS CMD...: poll CMD every 0.05 s
wait_for() {
    local tries=$(( $1 * 20 )); shift
    while ((tries-- > 0)); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

# alive PID NAME LOG: true while PID runs; dies (showing LOG) once it exited
alive() {
    kill -0 "$1" 2>/dev/null && return 0
    cat "$3" >&2 2>/dev/null || true
    die "$2 exited during start-up"
}

start_unbound() {
    # Config: validating resolver on 127.0.0.1:53 for posttls-finger (glibc
    # stub resolver); test. is stubbed to the world's knotd.
    cat > "$RUN/unbound.conf" <<EOF
server:
    interface: 127.0.0.1
    port: 53
    chroot: ""
    username: ""
    directory: "$RUN"
    pidfile: "$RUN/unbound.pid"
    use-syslog: no
    logfile: "$RUN/unbound.log"
    verbosity: 1
    val-log-level: 2
    do-daemonize: no
    num-threads: 1
    do-not-query-localhost: no
    local-zone: "test." nodefault
    trust-anchor-file: "$TRUST_ANCHOR"
remote-control:
    control-enable: no
stub-zone:
    name: "test."
    stub-addr: 127.0.0.1@$DNS_PORT
EOF
    unbound -d -c "$RUN/unbound.conf" >> "$RUN/unbound.log" 2>&1 &
    PIDS+=("unbound:$!")
    local pid=$!
    # Ready = a validated (AD) answer for test. SOA over TCP on port 53.
    ub_ready() {
        alive "$pid" unbound "$RUN/unbound.log"
        kdig @127.0.0.1 -p 53 +tcp +dnssec +timeout=1 +retry=0 SOA test. 2>/dev/null \
            | grep -q '^;; Flags:.* ad[ ;]'
    }
    wait_for 10 ub_ready || { cat "$RUN/unbound.log" >&2; die "unbound did not validate test."; }
}

start_smtp() {
    local c=$WORLD_DIR/certs v6=()
    # mx.dane-ta.test: the CA-issued cert with the CA in the chain (TLSA 2 1 1
    # names the CA's SPKI); everything else: mx1.dane.test's cert (TLSA 3 1 1).
    cat "$c/mx.dane-ta.test.pem" "$CA_FILE" > "$RUN/mx.dane-ta.test.chain.pem"
    ((HAVE_V6)) && v6=(--ipv6)
    : > "$RUN/smtp.log"
    "$PYTHON" "$HERE/smtp_tls_server.py" --port 25 "${v6[@]}" --log "$RUN/smtp.log" \
        --default "$c/mx1.dane.test.pem:$c/mx1.dane.test.key" \
        --cert "mx.dane-ta.test=$RUN/mx.dane-ta.test.chain.pem:$c/mx.dane-ta.test.key" \
        > "$RUN/smtp.out" 2>&1 &
    PIDS+=("smtp:$!")
    local pid=$!
    smtp_ready() { alive "$pid" "SMTP server" "$RUN/smtp.out" && grep -q '^ready' "$RUN/smtp.out"; }
    wait_for 10 smtp_ready || { cat "$RUN/smtp.out" >&2; die "SMTP server did not start"; }
}

start_mxpolicyd() {
    local port
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$MXPOLICYD" --unbound-config="$UNBOUND_CONF" --trust-anchor-file="$TRUST_ANCHOR" \
        --listen="127.0.0.1:$port" --shutdown-grace=1s > "$RUN/mxpolicyd.log" 2>&1 &
    PIDS+=("mxpolicyd:$!")
    local pid=$!
    SERVER=127.0.0.1:$port
    d_ready() {
        alive "$pid" mxpolicyd "$RUN/mxpolicyd.log" && "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null
    }
    wait_for 10 d_ready || { cat "$RUN/mxpolicyd.log" >&2; die "mxpolicyd did not start"; }
}

write_postfix_config() {
    mkdir -p "$RUN/postfix"
    local protocols=ipv4
    ((HAVE_V6)) && protocols=all
    cat > "$RUN/postfix/main.cf" <<EOF
# posttls-finger only; no Postfix daemon runs.
compatibility_level = 3.6
myhostname = client.conformance.test
inet_protocols = $protocols
smtp_dns_support_level = dnssec
dnssec_probe = ns:test
smtp_tls_security_level = dane
EOF
}

# finger KIND DOMAIN HOST TARGET LOG: one posttls-finger run, and the SNI the
# SMTP server saw during it; appends a manifest line.
finger() {
    local kind=$1 domain=$2 host=$3 target=$4 out=$5 before after sni='?' line
    before=$(wc -l < "$RUN/smtp.log")
    MAIL_CONFIG=$RUN/postfix timeout 30 env -u SSL_CERT_FILE -u SSL_CERT_DIR \
        posttls-finger -v -c -l dane -t 5 -T 5 "$target" > "$out" 2>&1 || true
    if grep -q 'TLS connection established to' "$out"; then
        # the server logs right after its handshake; allow it a moment
        # shellcheck disable=SC2016  # expanded by eval, in this scope
        wait_for 2 eval '(( $(wc -l < "$RUN/smtp.log") > before ))' || true
    fi
    after=$(wc -l < "$RUN/smtp.log")
    if ((after > before)); then
        while read -r line; do
            [[ $line =~ \ sni=([^ ]+)\ tls= ]] && sni=${BASH_REMATCH[1]}
        done < <(tail -n +"$((before + 1))" "$RUN/smtp.log")
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$domain" "$host" "$out" "$sni" >> "$RUN/manifest.tsv"
}

inner() {
    RUN=$2
    trap inner_cleanup EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    local t0=$SECONDS

    ip link set lo up
    if [[ ${PTF_NO_IPV6:-0} == 1 ]]; then   # exercise the no-IPv6 (CI container) path
        sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1
    fi
    HAVE_V6=0
    "$PYTHON" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null \
        && HAVE_V6=1

    mkdir "$RUN/world"
    bash "$WORLD_SH" start "$RUN/world" > "$RUN/world.out" 2>&1 \
        || { cat "$RUN/world.out" >&2; die "world did not start"; }
    # shellcheck disable=SC1091
    . "$RUN/world/world.env"

    # Only this mount namespace sees the replacement; the host's file is untouched.
    printf 'nameserver 127.0.0.1\noptions trust-ad\n' > "$RUN/resolv.conf"
    [[ -e /etc/resolv.conf ]] || die "/etc/resolv.conf missing: nothing to bind-mount over"
    mount --bind "$RUN/resolv.conf" /etc/resolv.conf

    start_unbound
    start_smtp
    start_mxpolicyd
    write_postfix_config

    "$MXPOLICY_CLI" resolve --json --server="$SERVER" --deadline=20s "${DOMAINS[@]}" \
        > "$RUN/mxpolicy.jsonl" 2> "$RUN/mxpolicy.err" \
        || { cat "$RUN/mxpolicy.err" >&2; die "mxpolicy resolve failed"; }

    mkdir "$RUN/pf"
    : > "$RUN/manifest.tsv"
    local domain host i=0
    while IFS=$'\t' read -r domain host; do
        finger host "$domain" "$host" "[$host]" "$RUN/pf/$((i++))-$host.log"
    done < <("$PYTHON" "$HERE/posttls_finger_compare.py" plan "$RUN/mxpolicy.jsonl")
    for domain in "${DOMAINS[@]}"; do
        finger walk "$domain" - "$domain" "$RUN/pf/$((i++))-walk-$domain.log"
    done

    local flags=() rc=0
    ((HAVE_V6)) || flags+=(--no-ipv6)
    [[ ${PTF_VERBOSE:-0} != 1 ]] || flags+=(--verbose)
    # MISMATCH lines come with posttls-finger's evidence lines; PTF_KEEP_RUN=1
    # keeps every log.
    "$PYTHON" "$HERE/posttls_finger_compare.py" compare "$RUN/mxpolicy.jsonl" \
        "$RUN/manifest.tsv" --min-hosts "$MIN_HOSTS" "${flags[@]}" \
        --need-hosts "${HOST_DOMAINS[@]}" || rc=$?
    log "done in $((SECONDS - t0)) s (IPv6 in namespace: $HAVE_V6)"
    exit "$rc"
}

if [[ ${1:-} == --inner ]]; then
    inner "$@"
else
    outer "$@"
fi
