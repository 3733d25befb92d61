# netns_lib.sh -- shared parts of the conformance tests that run a reference
# implementation against the test world inside a private network + mount +
# PID namespace (reference tools want a resolver on port 53, SMTP on 25 or
# HTTPS on 443, all on 127.0.0.1, and the host's files must stay untouched).
# Sourced by posttls_finger_dane.sh and mta_sts_resolver.sh; not executable.
#
# The sourcing script sets
#   NS_NAME       log prefix and temp-dir name, e.g. posttls_finger_dane
#   NS_WHY        the SKIPPED reason when no namespace is possible
#   NS_TOOLS      array: commands that must exist (missing = failed test)
#   NS_KEEP_RUN   1: keep the run directory (all logs) and print its path
#   NS_NO_IPV6    1: disable IPv6 inside the namespace (as in some CI
#                 containers)
# defines
#   inner_main    runs as PID 1 of the namespace with RUN, HAVE_V6 set and
#                 loopback up; its exit status is the test's
# and ends with
#   ns_main "$@"
#
# Helpers for inner_main: start_world (the world, world.env loaded, resolv.conf
# -> 127.0.0.1), trust_test_ca (the world's CA as the system store),
# start_unbound (validating resolver on 127.0.0.1:53),
# start_mxpolicyd [FLAG...] (sets SERVER), wait_for, alive, and PIDS ("name:pid"
# of daemons started here: inner_cleanup stops them, then the world).
#
# Exit: 77 (after "SKIPPED: ...") when not root or unshare is not possible.
#
# shellcheck shell=bash
# shellcheck disable=SC2317  # trap handlers and wait_for callbacks run indirectly
# shellcheck disable=SC2034  # SERVER, HAVE_V6, WORLD_START_MS: for the caller

SELF=$(readlink -f "$0")
readonly SELF
readonly HERE=${SELF%/*}
ROOT=$(cd "$HERE/../.." && pwd)
readonly ROOT
readonly WORLD_SH=$ROOT/tests/world/world.sh
export PATH=$PATH:/usr/sbin:/sbin   # unbound, knotd, ip, posttls-finger
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
PYTHON=/usr/bin/python3            # pyenv shims cost ~300 ms per call
[[ -x $PYTHON ]] || PYTHON=python3

log() { echo "$NS_NAME: $*" >&2; }
die() { echo "$NS_NAME: ERROR: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }

###############################################################################
# outer: checks, temp dir, the namespace
###############################################################################
ns_outer() {
    [[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
    local build
    build=$(cd "$1" && pwd) || die "no build dir $1"
    export MXPOLICYD=${MXPOLICYD:-$build/server/src/app/mxpolicyd}
    export MXPOLICY_CLI=${MXPOLICY_CLI:-$build/client/mxpolicy}

    local t
    [[ $EUID -eq 0 ]] || skip "$NS_WHY"
    for t in unshare ip mount; do
        command -v "$t" >/dev/null || skip "$NS_WHY"
    done
    unshare --net --mount --pid --fork true 2>/dev/null || skip "$NS_WHY"

    # Missing tools are a failed test, not a skip: CI installs them
    # (scripts/install-deps.sh), and a skip would hide a missing install step.
    for t in "${NS_TOOLS[@]}" unbound kdig knotd nginx ldns-signzone openssl; do
        command -v "$t" >/dev/null \
            || die "$t not found (see scripts/install-deps.sh)"
    done
    [[ -x $MXPOLICYD ]] || die "mxpolicyd not found: $MXPOLICYD (build first)"
    [[ -x $MXPOLICY_CLI ]] || die "mxpolicy not found: $MXPOLICY_CLI (build first)"

    RUN=$(mktemp -d "${TMPDIR:-/tmp}/mxpolicy-$NS_NAME.XXXXXX")
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
        # (loop: a wait can return early when another signal comes in)
        while kill -0 "$UPID" 2>/dev/null; do
            wait "$UPID" 2>/dev/null || true
        done
        UPID=
    fi
    if [[ $1 == TERM ]]; then exit 143; else exit 130; fi
}

outer_cleanup() {
    [[ -n ${RUN:-} ]] || return 0
    if [[ ${NS_KEEP_RUN:-0} == 1 ]]; then
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

# forget_pid PID: PID was stopped by the caller; inner_cleanup skips it
forget_pid() {
    local i
    for i in "${!PIDS[@]}"; do
        [[ ${PIDS[i]#*:} != "$1" ]] || unset 'PIDS[i]'
    done
    PIDS=(${PIDS[@]+"${PIDS[@]}"})
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

# start_world: the test world in RUN/world (world.sh honours WORLD_DNS_PORT /
# WORLD_HTTPS_PORT from the environment), its world.env loaded, and
# /etc/resolv.conf -> 127.0.0.1 (a bind mount: only this mount namespace sees
# it, the host's file is untouched).
start_world() {
    mkdir "$RUN/world"
    local t0=$EPOCHREALTIME
    bash "$WORLD_SH" start "$RUN/world" > "$RUN/world.out" 2>&1 \
        || { cat "$RUN/world.out" >&2; die "world did not start"; }
    WORLD_START_MS=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
    # shellcheck disable=SC1091
    . "$RUN/world/world.env"

    printf 'nameserver 127.0.0.1\noptions trust-ad\n' > "$RUN/resolv.conf"
    [[ -e /etc/resolv.conf ]] || die "/etc/resolv.conf missing: nothing to bind-mount over"
    mount --bind "$RUN/resolv.conf" /etc/resolv.conf
}

# trust_test_ca: a directory holding only the world's CA as
# ca-certificates.crt, bind-mounted over /etc/ssl/certs (this mount namespace
# only): OpenSSL's default CA file and directory, for reference tools that
# read the system store (postfix-mta-sts-resolver)
trust_test_ca() {
    [[ -d /etc/ssl/certs ]] || die "/etc/ssl/certs missing: nothing to bind-mount over"
    mkdir "$RUN/certs"
    cp "$CA_FILE" "$RUN/certs/ca-certificates.crt"
    mount --bind "$RUN/certs" /etc/ssl/certs
}

start_unbound() {
    # Config: validating resolver on 127.0.0.1:53 for the reference tools
    # (glibc stub resolver, c-ares); test. is stubbed to the world's knotd.
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

# start_mxpolicyd [FLAG...]: mxpolicyd on a free port, pointed at the world
# (--unbound-config, --trust-anchor-file) plus FLAGs; SERVER=127.0.0.1:PORT,
# MXPOLICYD_PID. Its log is RUN/mxpolicyd.log (appended).
start_mxpolicyd() {
    local port
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$MXPOLICYD" --unbound-config="$UNBOUND_CONF" --trust-anchor-file="$TRUST_ANCHOR" \
        --listen="127.0.0.1:$port" --shutdown-grace=1s "$@" >> "$RUN/mxpolicyd.log" 2>&1 &
    MXPOLICYD_PID=$!
    PIDS+=("mxpolicyd:$MXPOLICYD_PID")
    local pid=$MXPOLICYD_PID
    SERVER=127.0.0.1:$port
    d_ready() {
        alive "$pid" mxpolicyd "$RUN/mxpolicyd.log" && "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null
    }
    wait_for 10 d_ready || { cat "$RUN/mxpolicyd.log" >&2; die "mxpolicyd did not start"; }
}

# stop_mxpolicyd: TERM the mxpolicyd started last and wait for it
stop_mxpolicyd() {
    kill -TERM "$MXPOLICYD_PID" 2>/dev/null || true
    wait "$MXPOLICYD_PID" 2>/dev/null || true
    forget_pid "$MXPOLICYD_PID"
}

ns_inner() {
    RUN=$2
    trap inner_cleanup EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT

    ip link set lo up
    if [[ ${NS_NO_IPV6:-0} == 1 ]]; then   # exercise the no-IPv6 (CI container) path
        sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1
    fi
    HAVE_V6=0
    "$PYTHON" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null \
        && HAVE_V6=1
    inner_main
}

ns_main() {
    if [[ ${1:-} == --inner ]]; then
        ns_inner "$@"
    else
        ns_outer "$@"
    fi
}
