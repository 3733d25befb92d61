#!/usr/bin/env bash
# socketmap_bench.sh -- make bench: Postfix's view of a TLS policy service.
# mxpolicy-postfix (the socketmap adapter in front of mxpolicyd) against
# Debian's postfix-mta-sts-resolver 1.1.2 (`mta-sts-daemon`), both asked over
# Postfix's socketmap protocol by tests/bench/socketmap_load (closed loop, as
# Postfix's smtp processes ask: one request per connection at a time).
#
#   socketmap_bench.sh BUILD_DIR
#
# Binaries: BUILD_DIR/tests/socketmap_load, BUILD_DIR/client/mxpolicy-postfix,
# BUILD_DIR/server/src/app/mxpolicyd (and BUILD_DIR/client/mxpolicy, which
# netns_lib.sh checks for); override with SOCKETMAP_LOAD=..., MXPOLICY_POSTFIX=...,
# MXPOLICYD=..., MXPOLICY_CLI=....
#
# mta-sts-daemon resolves through /etc/resolv.conf and fetches policies from
# port 443 with Python's default CA store, so everything runs in a private
# network + mount + PID namespace (tests/conformance/netns_lib.sh, as the
# mta-sts-query conformance test does): the world with nginx on
# 127.0.0.1:443, a validating unbound on 127.0.0.1:53, resolv.conf and
# /etc/ssl/certs bind-mounted (the world's CA only). Nothing leaves the
# namespace's loopback; the host's files are never written.
#
# Servers: mta-sts-daemon with its internal cache and its default zone
# (the configuration of Debian's example mta-sts-daemon.yml.internal), and
# mxpolicy-postfix --postfix-version=3.7 asking mxpolicyd (pointed at the
# world) over gRPC. Domains: sts-crlf.test (an enforce MTA-STS policy;
# expected reply "OK secure match=...") and nodane.test (no MTA-STS, no
# DANE: "NOTFOUND ", what most real destinations look like). Each server's
# caches are warmed and its reply checked before it is measured (correctness
# before speed). Then, per domain, 1, 4, 16 and 64 connections for 3 s
# (after 0.5 s warm-up) against each server alternately; the order flips
# every row.
#
# Targets (at 16 connections):
#   sts-crlf.test  ours >= 5x the reference's requests/s, ours p99 <= 1/3 of
#                  the reference's p99
#   nodane.test    ours >= 10x the reference's requests/s (each request makes
#                  the reference ask DNS for _mta-sts.<domain>: it caches no
#                  negative answer)
#
# Exit: 0 every reply correct and every target met; 1 a target missed, a
#       wrong reply, an error, or mxpolicy-postfix not built (the reference
#       side is still measured and printed); 77 skipped (not root, or no
#       network namespace possible).
# SOCKETMAP_BENCH_KEEP_RUN=1 keeps the run directory (all logs).
#
# shellcheck disable=SC2317  # functions called from inner_main / traps
set -euo pipefail

NS_NAME=socketmap_bench
NS_WHY="the socketmap benchmark needs root for a private network namespace (mta-sts-daemon fetches from port 443)"
NS_TOOLS=(mta-sts-daemon)
NS_KEEP_RUN=${SOCKETMAP_BENCH_KEEP_RUN:-0}
NS_NO_IPV6=0

# Binaries under BUILD_DIR, resolved before netns_lib.sh starts the
# namespace (the inner shell inherits the environment).
if [[ ${1:-} != --inner && $# -eq 1 ]]; then
    build_dir=$(cd "$1" 2>/dev/null && pwd) || build_dir=$1
    export SOCKETMAP_LOAD=${SOCKETMAP_LOAD:-$build_dir/tests/socketmap_load}
    export MXPOLICY_POSTFIX=${MXPOLICY_POSTFIX:-$build_dir/client/mxpolicy-postfix}
fi
# shellcheck source=../conformance/netns_lib.sh source-path=SCRIPTDIR
. "$(dirname "$(readlink -f "$0")")/../conformance/netns_lib.sh"

readonly CONNECTIONS=(1 4 16 64)
readonly SECONDS_PER_SAMPLE=3
readonly WARMUP=0.5
# domain | what every reply must be (a bash pattern) | shown as
readonly DOMAINS=(
"sts-crlf.test|OK secure match=*|\"OK secure match=...\""
"nodane.test|NOTFOUND |\"NOTFOUND \""
)

free_port() {
    "$PYTHON" -S -I -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_reference: mta-sts-daemon on REF_PORT. Its configuration is Debian's
# example for the internal cache (cache_size 10000, default zone: timeout
# 4 s, no strict testing) except for the port and a 1 s shutdown timeout
# (20 s would only delay the clean-up).
start_reference() {
    REF_PORT=$(free_port)
    cat > "$RUN/mta-sts-daemon.yml" <<EOF
host: 127.0.0.1
port: $REF_PORT
reuse_port: true
shutdown_timeout: 1
cache:
  type: internal
  options:
    cache_size: 10000
default_zone:
  strict_testing: false
  timeout: 4
EOF
    env -u https_proxy -u HTTPS_PROXY -u http_proxy -u HTTP_PROXY \
        -u all_proxy -u ALL_PROXY \
        SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt SSL_CERT_DIR=/etc/ssl/certs \
        mta-sts-daemon -c "$RUN/mta-sts-daemon.yml" -l "$RUN/mta-sts-daemon.log" \
        >> "$RUN/mta-sts-daemon.out" 2>&1 &
    local pid=$!
    PIDS+=("mta-sts-daemon:$pid")
    ref_ready() { alive "$pid" mta-sts-daemon "$RUN/mta-sts-daemon.out" && port_open "$REF_PORT"; }
    wait_for 10 ref_ready || die "mta-sts-daemon did not start (see $RUN/mta-sts-daemon.log)"
    # It runs on uvloop when python3-uvloop is installed (the package
    # recommends it; scripts/install-deps.sh installs without recommends),
    # which changes its speed: say which one was measured.
    # (its log is written by a thread: give the line a moment)
    wait_for 2 grep -q 'Server started' "$RUN/mta-sts-daemon.log" || true
    REF_LOOP="asyncio event loop"
    ! grep -q 'uvloop enabled' "$RUN/mta-sts-daemon.log" || REF_LOOP=uvloop
}

# start_ours: mxpolicyd pointed at the world, mxpolicy-postfix on OURS_PORT
# asking it
start_ours() {
    start_mxpolicyd --sts-ca-file="$CA_FILE" --sts-https-port="$HTTPS_PORT"
    OURS_PORT=$(free_port)
    "$MXPOLICY_POSTFIX" --listen="127.0.0.1:$OURS_PORT" --server="$SERVER" \
        --postfix-version=3.7 >> "$RUN/mxpolicy-postfix.log" 2>&1 &
    local pid=$!
    PIDS+=("mxpolicy-postfix:$pid")
    ours_ready() { alive "$pid" mxpolicy-postfix "$RUN/mxpolicy-postfix.log" && port_open "$OURS_PORT"; }
    wait_for 10 ours_ready || die "mxpolicy-postfix did not start"
}

# load OUT PORT CONNECTIONS SECONDS WARMUP DOMAIN: one socketmap_load run
# (in the background: a TERM trap runs during `wait`, not during a
# foreground command); its line in OUT, its errors in OUT.err
load() {
    "$SOCKETMAP_LOAD" --target="127.0.0.1:$2" --connections="$3" --seconds="$4" \
        --warmup="$5" --request="postfix $6" > "$1" 2> "$1.err" &
    wait $!
}

# field FILE NAME: NAME=value from a socketmap_load line
field() { sed -n "s/^socketmap: .* $2=\([^ ]*\).*/\1/p" "$1"; }
first_reply() { sed -n 's/^socketmap: .* first_reply="\(.*\)"$/\1/p' "$1"; }

# correct FILE DOMAIN_ENTRY: the run's first reply matches the expected
# pattern and every reply of its sample has the expected first word
correct() {
    local pattern=${2#*|}; pattern=${pattern%%|*}
    local word=${pattern%% *} first
    first=$(first_reply "$1")
    # shellcheck disable=SC2053  # a pattern on purpose
    [[ $first == $pattern ]] && [[ $(field "$1" replies) =~ ^$word:[0-9]+$ ]]
}

FAILURES=()
declare -A RPS P99

# warm SIDE PORT DOMAIN_ENTRY: requests on one connection until a sample
# holds only expected replies (a cold lookup may take seconds: the
# reference's fetch time limit is 4 s), at most 8 tries; prints the reply
warm() {
    local side=$1 port=$2 entry=$3 domain=${3%%|*} out=$RUN/warm-$1-${3%%|*} try
    for ((try = 1; try <= 8; try++)); do
        if load "$out" "$port" 1 1 0 "$domain" && correct "$out" "$entry"; then
            printf '  %-4s %-14s first reply: "%s"\n' "$side" "$domain" "$(first_reply "$out")"
            return 0
        fi
    done
    local shown=${entry##*|}
    printf '  %-4s %-14s WRONG: first reply "%s", replies %s (expected %s)\n' "$side" \
        "$domain" "$(first_reply "$out")" "$(field "$out" replies)" "$shown"
    cat "$out.err" >&2 2>/dev/null || true
    FAILURES+=("$side: wrong reply for $domain")
    return 1
}

# measure SIDE PORT DOMAIN_ENTRY CONNECTIONS: one sample into RPS/P99
measure() {
    local side=$1 port=$2 entry=$3 domain=${3%%|*} c=$4
    local out=$RUN/load-$side-$domain-$c rc=0
    load "$out" "$port" "$c" "$SECONDS_PER_SAMPLE" "$WARMUP" "$domain" || rc=$?
    printf '  %-4s %s\n' "$side" "$(cat "$out" 2>/dev/null)"
    if ((rc != 0)); then
        cat "$out.err" >&2 2>/dev/null || true
        FAILURES+=("$side: load run for $domain at $c connections failed")
        return 0
    fi
    if ! correct "$out" "$entry"; then
        FAILURES+=("$side: wrong replies for $domain at $c connections")
    fi
    RPS[$side/$domain/$c]=$(field "$out" rps)
    P99[$side/$domain/$c]=$(field "$out" p99_ms)
}

# ratio A B: A / B with 2 decimals, "-" when either is missing
ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# target DOMAIN RPS_FACTOR [P99_DIVISOR]: DOMAIN's targets at 16
# connections (ours >= RPS_FACTOR x the reference's requests/s; ours p99 <=
# the reference's p99 / P99_DIVISOR), judged on the measured numbers (not
# the rounded ratios); prints one line, remembers a miss
target() {
    local domain=$1 factor=$2 divisor=${3:-} verdict
    local o=${RPS[ours/$domain/16]:-} r=${RPS[ref/$domain/16]:-}
    local op=${P99[ours/$domain/16]:-} rp=${P99[ref/$domain/16]:-}
    local want="rps ratio >= $factor${divisor:+, p99 ratio <= 1/$divisor}"
    if [[ -z $o || -z $r || -z $op || -z $rp ]]; then
        verdict="NOT MEASURED"
    elif awk -v o="$o" -v r="$r" -v op="$op" -v rp="$rp" -v f="$factor" -v d="$divisor" \
        'BEGIN { exit !(o >= f * r && (d == "" || op * d <= rp)) }'; then
        verdict=met
    else
        verdict=MISSED
    fi
    printf '  %-14s rps ratio %s, p99 ratio %s (target: %s): %s\n' "$domain" \
        "$(ratio "$o" "$r")" "$(ratio "$op" "$rp")" "$want" "$verdict"
    [[ $verdict == met ]] || FAILURES+=("target $domain: $want ($verdict)")
}

inner_main() {
    local t0=$EPOCHREALTIME have_ours=1 entry domain c row=0
    [[ -x $SOCKETMAP_LOAD ]] \
        || die "socketmap_load not found: $SOCKETMAP_LOAD (cmake --build BUILD_DIR --target socketmap_load)"
    if [[ ! -x $MXPOLICY_POSTFIX ]]; then
        have_ours=0
        echo "mxpolicy-postfix not built; measuring mta-sts-daemon only"
    fi
    export WORLD_HTTPS_PORT=443
    start_world
    [[ $HTTPS_PORT == 443 ]] || die "world HTTPS port is $HTTPS_PORT, not 443"
    trust_test_ca
    start_unbound
    start_reference
    ((have_ours == 0)) || start_ours
    local sides=(ref)
    ((have_ours == 0)) || sides+=(ours)
    local -A port=([ref]=$REF_PORT [ours]=${OURS_PORT:-})

    echo "socketmap benchmark: mta-sts-daemon (ref, 127.0.0.1:$REF_PORT, $REF_LOOP)${OURS_PORT:+ vs mxpolicy-postfix (ours, 127.0.0.1:$OURS_PORT)};" \
        "closed loop, ${SECONDS_PER_SAMPLE} s samples after ${WARMUP} s warm-up"
    for entry in "${DOMAINS[@]}"; do
        domain=${entry%%|*}
        # warmed right before the domain's rows: mta-sts-daemon trusts a
        # cached policy for 60 s (cache_grace), then asks DNS again
        echo "$domain: warming the caches, checking the replies"
        local side
        for side in "${sides[@]}"; do
            warm "$side" "${port[$side]}" "$entry" || true
        done
        for c in "${CONNECTIONS[@]}"; do
            echo "$domain, $c connections:"
            local order=("${sides[@]}")
            if ((row % 2 == 1 && have_ours)); then order=(ours ref); fi
            for side in "${order[@]}"; do
                measure "$side" "${port[$side]}" "$entry" "$c"
            done
            row=$((row + 1))
        done
    done

    echo
    printf '%-14s %5s | %9s %10s | %9s %10s | %9s %9s\n' domain conns \
        "ref rps" "ref p99 ms" "ours rps" "ours p99 ms" "rps ratio" "p99 ratio"
    for entry in "${DOMAINS[@]}"; do
        domain=${entry%%|*}
        for c in "${CONNECTIONS[@]}"; do
            local k=$domain/$c
            printf '%-14s %5s | %9s %10s | %9s %10s | %9s %9s\n' "$domain" "$c" \
                "${RPS[ref/$k]:--}" "${P99[ref/$k]:--}" \
                "${RPS[ours/$k]:--}" "${P99[ours/$k]:--}" \
                "$(ratio "${RPS[ours/$k]:-}" "${RPS[ref/$k]:-}")" \
                "$(ratio "${P99[ours/$k]:-}" "${P99[ref/$k]:-}")"
        done
    done
    echo "(rps: replies per second; ratios: ours / ref)"
    echo
    echo "targets at 16 connections:"
    target sts-crlf.test 5 3
    target nodane.test 10
    ((have_ours)) || FAILURES+=("mxpolicy-postfix not built: $MXPOLICY_POSTFIX")

    log "done in $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )) ms" \
        "(world start ${WORLD_START_MS} ms)"
    if ((${#FAILURES[@]})); then
        printf 'socketmap: FAILED: %s\n' "${FAILURES[@]}"
        exit 1
    fi
    echo "socketmap: all replies correct, all targets met"
}

ns_main "$@"
