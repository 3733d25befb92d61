#!/usr/bin/env bash
# socketmap_bench.sh -- make bench: Postfix's view of a TLS policy service.
# mxpolicy-postfix (the socketmap adapter in front of mxpolicyd) against
# Debian's postfix-mta-sts-resolver 1.1.2 (`mta-sts-daemon`), both asked over
# Postfix's socketmap protocol by tests/bench/socketmap_load (closed loop, as
# Postfix's smtp processes ask: one request per connection at a time).
#
#   socketmap_bench.sh BUILD_DIR
#
# Binaries: BUILD_DIR/tests/socketmap_load, BUILD_DIR/tests/socketmap_null_server,
# BUILD_DIR/client/mxpolicy-postfix,
# BUILD_DIR/server/src/app/mxpolicyd (and BUILD_DIR/client/mxpolicy, which
# netns_lib.sh checks for); override with SOCKETMAP_LOAD=...,
# SOCKETMAP_NULL_SERVER=..., MXPOLICY_POSTFIX=...,
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
# world) over gRPC; each twice, on loopback TCP (Postfix's
# socketmap:inet:127.0.0.1:PORT:NAME, the transport the targets were set
# for) and on a Unix socket (socketmap:unix:PATH:NAME, which both serve).
# The ceiling: tests/bench/socketmap_null_server, which answers NOTFOUND
# without looking at the key, on both transports: the rate of a server that
# does no work, i.e. what the kernel and the load generator allow on this
# machine (a sample of a real server can exceed it only by the machine's
# drift). Domains: sts-crlf.test (an enforce MTA-STS policy;
# expected reply "OK secure match=...") and nodane.test (no MTA-STS, no
# DANE: "NOTFOUND ", what most real destinations look like). Each server's
# caches are warmed and its reply checked before it is measured (correctness
# before speed). Then, per domain, 1, 4, 16 and 64 connections for 3 s
# (after 0.5 s warm-up) against each server alternately; the order flips
# every row. At 16 connections (the targets' row) each side is sampled
# three times, alternately, and its medians count. The ceiling is sampled
# after each 16-connection row and at the end; its best sample counts.
#
# Targets (at 16 connections, on each transport):
#   sts-crlf.test  ours >= 5x the reference's requests/s, ours p99 <= 1/3 of
#                  the reference's p99
#   nodane.test    ours >= 10x the reference's requests/s (each request makes
#                  the reference ask DNS for _mta-sts.<domain>: it caches no
#                  negative answer)
# A throughput target above the ceiling (factor x the reference's rate >
# the null server's best rate) is marked so: a server doing no work at all
# would miss it too.
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
    export SOCKETMAP_NULL_SERVER=${SOCKETMAP_NULL_SERVER:-$build_dir/tests/socketmap_null_server}
    export MXPOLICY_POSTFIX=${MXPOLICY_POSTFIX:-$build_dir/client/mxpolicy-postfix}
fi
# shellcheck source=../conformance/netns_lib.sh source-path=SCRIPTDIR
. "$(dirname "$(readlink -f "$0")")/../conformance/netns_lib.sh"

readonly TRANSPORTS=(tcp unix)
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

# endpoint SIDE TRANSPORT: a new place for SIDE (ref, ours, ceil) to
# listen, as a socketmap_load --target (127.0.0.1:PORT or unix:PATH), in
# ENDPOINT
endpoint() {
    if [[ $2 == tcp ]]; then ENDPOINT=127.0.0.1:$(free_port)
    else ENDPOINT=unix:$RUN/$1.sock; fi
}

# listening ENDPOINT: something accepts connections there
listening() {
    if [[ $1 == unix:* ]]; then [[ -S ${1#unix:} ]]; else port_open "${1##*:}"; fi
}

declare -A TARGET  # SIDE/TRANSPORT -> endpoint

# start_reference TRANSPORT: mta-sts-daemon on TARGET[ref/TRANSPORT]. Its
# configuration is Debian's example for the internal cache (cache_size
# 10000, default zone: timeout 4 s, no strict testing) except for the
# listener and a 1 s shutdown timeout (20 s would only delay the clean-up).
start_reference() {
    local transport=$1 listener
    endpoint ref "$transport"
    TARGET[ref/$transport]=$ENDPOINT
    if [[ $ENDPOINT == unix:* ]]; then
        listener="path: ${ENDPOINT#unix:}"
    else
        listener=$(printf 'host: 127.0.0.1\nport: %s' "${ENDPOINT##*:}")
    fi
    local conf=$RUN/mta-sts-daemon-$transport.yml log=$RUN/mta-sts-daemon-$transport.log
    cat > "$conf" <<EOF
$listener
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
        mta-sts-daemon -c "$conf" -l "$log" >> "$RUN/mta-sts-daemon-$transport.out" 2>&1 &
    local pid=$!
    PIDS+=("mta-sts-daemon:$pid")
    ref_ready() {
        alive "$pid" mta-sts-daemon "$RUN/mta-sts-daemon-$transport.out" &&
            listening "$ENDPOINT"
    }
    wait_for 10 ref_ready || die "mta-sts-daemon did not start (see $log)"
    # It runs on uvloop when python3-uvloop is installed (the package
    # recommends it; scripts/install-deps.sh installs without recommends),
    # which changes its speed: say which one was measured.
    # (its log is written by a thread: give the line a moment)
    wait_for 2 grep -q 'Server started' "$log" || true
    REF_LOOP="asyncio event loop"
    ! grep -q 'uvloop enabled' "$log" || REF_LOOP=uvloop
}

# start_ours: mxpolicyd pointed at the world, and on each transport an
# mxpolicy-postfix asking it (TARGET[ours/TRANSPORT])
start_ours() {
    start_mxpolicyd --sts-ca-file="$CA_FILE" --sts-https-port="$HTTPS_PORT"
    local transport pid
    for transport in "${TRANSPORTS[@]}"; do
        endpoint ours "$transport"
        TARGET[ours/$transport]=$ENDPOINT
        "$MXPOLICY_POSTFIX" --listen="$ENDPOINT" --server="$SERVER" \
            --postfix-version=3.7 >> "$RUN/mxpolicy-postfix-$transport.log" 2>&1 &
        pid=$!
        PIDS+=("mxpolicy-postfix:$pid")
        ours_ready() {
            alive "$pid" mxpolicy-postfix "$RUN/mxpolicy-postfix-$transport.log" &&
                listening "$ENDPOINT"
        }
        wait_for 10 ours_ready || die "mxpolicy-postfix did not start"
    done
}

# start_ceiling: socketmap_null_server on each transport (TARGET[ceil/...])
start_ceiling() {
    local transport pid
    for transport in "${TRANSPORTS[@]}"; do
        endpoint ceil "$transport"
        TARGET[ceil/$transport]=$ENDPOINT
        "$SOCKETMAP_NULL_SERVER" --listen="$ENDPOINT" \
            >> "$RUN/null-server-$transport.log" 2>&1 &
        pid=$!
        PIDS+=("socketmap_null_server:$pid")
        ceil_ready() {
            alive "$pid" socketmap_null_server "$RUN/null-server-$transport.log" &&
                listening "$ENDPOINT"
        }
        wait_for 10 ceil_ready || die "socketmap_null_server did not start"
    done
}

# load OUT TARGET CONNECTIONS SECONDS WARMUP DOMAIN: one socketmap_load run
# (in the background: a TERM trap runs during `wait`, not during a
# foreground command); its line in OUT, its errors in OUT.err
load() {
    "$SOCKETMAP_LOAD" --target="$2" --connections="$3" --seconds="$4" \
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
declare -A RPS P99  # SIDE/TRANSPORT/DOMAIN/CONNECTIONS -> figure

# warm SIDE TRANSPORT DOMAIN_ENTRY: requests on one connection until a
# sample holds only expected replies (a cold lookup may take seconds: the
# reference's fetch time limit is 4 s), at most 8 tries; prints the reply
warm() {
    local side=$1 transport=$2 entry=$3 domain=${3%%|*} try
    local out=$RUN/warm-$1-$2-$domain
    for ((try = 1; try <= 8; try++)); do
        if load "$out" "${TARGET[$side/$transport]}" 1 1 0 "$domain" &&
            correct "$out" "$entry"; then
            printf '  %-4s %-4s %-14s first reply: "%s"\n' "$side" "$transport" "$domain" \
                "$(first_reply "$out")"
            return 0
        fi
    done
    local shown=${entry##*|}
    printf '  %-4s %-4s %-14s WRONG: first reply "%s", replies %s (expected %s)\n' "$side" \
        "$transport" "$domain" "$(first_reply "$out")" "$(field "$out" replies)" "$shown"
    cat "$out.err" >&2 2>/dev/null || true
    FAILURES+=("$side ($transport): wrong reply for $domain")
    return 1
}

# measure SIDE TRANSPORT DOMAIN_ENTRY CONNECTIONS [TAG]: one sample into
# RPS/P99 under SIDE/TRANSPORT/DOMAIN/CONNECTIONS[TAG] (TAG: "-N" for one
# of several samples of the same cell)
measure() {
    local side=$1 transport=$2 entry=$3 domain=${3%%|*} c=$4
    local out=$RUN/load-$side-$transport-$domain-$c${5:-} rc=0
    load "$out" "${TARGET[$side/$transport]}" "$c" "$SECONDS_PER_SAMPLE" "$WARMUP" \
        "$domain" || rc=$?
    printf '  %-4s %s\n' "$side" "$(cat "$out" 2>/dev/null)"
    if ((rc != 0)); then
        cat "$out.err" >&2 2>/dev/null || true
        FAILURES+=("$side ($transport): load run for $domain at $c connections failed")
        return 0
    fi
    if ! correct "$out" "$entry"; then
        FAILURES+=("$side ($transport): wrong replies for $domain at $c connections")
    fi
    RPS[$side/$transport/$domain/$c${5:-}]=$(field "$out" rps)
    P99[$side/$transport/$domain/$c${5:-}]=$(field "$out" p99_ms)
}

# ceiling_sample TRANSPORT NAME: one more sample of the null server at 16
# connections; the ceiling is the best sample (they are spread over the
# run: this machine's speed drifts by tens of per cent)
ceiling_sample() {
    local transport=$1 k=ceil/$1/nodane.test/16
    measure ceil "$transport" "${DOMAINS[1]}" 16 "-$2"
    local sample=${RPS[$k-$2]:-}
    # (a sample with a wrong reply, already counted as a failure, never
    # becomes the ceiling)
    if [[ -n $sample ]] &&
        correct "$RUN/load-ceil-$transport-nodane.test-16-$2" "${DOMAINS[1]}" &&
        awk -v a="$sample" -v b="${RPS[$k]:-0}" 'BEGIN { exit !(a > b) }'; then
        RPS[$k]=$sample P99[$k]=${P99[$k-$2]}
    fi
}

# median_of SIDE TRANSPORT DOMAIN C TAG...: RPS/P99 of SIDE/TRANSPORT/DOMAIN/C
# become the medians of the samples stored under .../C-TAG (each figure
# on its own)
median_of() {
    local k=$1/$2/$3/$4 tag
    local -a rps=() p99=()
    shift 4
    for tag in "$@"; do
        [[ -z ${RPS[$k-$tag]:-} ]] || rps+=("${RPS[$k-$tag]}")
        [[ -z ${P99[$k-$tag]:-} ]] || p99+=("${P99[$k-$tag]}")
    done
    ((${#rps[@]})) || return 0
    RPS[$k]=$(printf '%s\n' "${rps[@]}" | sort -g | sed -n "$(((${#rps[@]} + 1) / 2))p")
    P99[$k]=$(printf '%s\n' "${p99[@]}" | sort -g | sed -n "$(((${#p99[@]} + 1) / 2))p")
}

# ratio A B: A / B with 2 decimals, "-" when either is missing
ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# target TRANSPORT DOMAIN RPS_FACTOR [P99_DIVISOR]: DOMAIN's targets at 16
# connections on TRANSPORT (ours >= RPS_FACTOR x the reference's
# requests/s; ours p99 <= the reference's p99 / P99_DIVISOR), judged on the
# measured numbers (not the rounded ratios); prints one line, remembers a
# miss, and says when the wanted rate is above the ceiling
target() {
    local transport=$1 domain=$2 factor=$3 divisor=${4:-} verdict
    local k=$transport/$domain/16
    local o=${RPS[ours/$k]:-} r=${RPS[ref/$k]:-}
    local op=${P99[ours/$k]:-} rp=${P99[ref/$k]:-}
    local ceil=${RPS[ceil/$transport/nodane.test/16]:-}
    local want="rps ratio >= $factor${divisor:+, p99 ratio <= 1/$divisor}"
    if [[ -z $o || -z $r || -z $op || -z $rp ]]; then
        verdict="NOT MEASURED"
    elif awk -v o="$o" -v r="$r" -v op="$op" -v rp="$rp" -v f="$factor" -v d="$divisor" \
        'BEGIN { exit !(o >= f * r && (d == "" || op * d <= rp)) }'; then
        verdict=met
    else
        verdict=MISSED
        # the throughput part missed, and even the null server is slower
        if [[ -n $ceil ]] && awk -v o="$o" -v r="$r" -v f="$factor" -v c="$ceil" \
            'BEGIN { exit !(o < f * r && f * r > c) }'; then
            verdict+=" (${factor}x ref = $(awk -v r="$r" -v f="$factor" 'BEGIN { printf "%.0f", f * r }') rps is above the ceiling: the null server's best was $ceil)"
        fi
    fi
    printf '  %-4s %-14s rps ratio %s, p99 ratio %s (target: %s): %s\n' "$transport" \
        "$domain" "$(ratio "$o" "$r")" "$(ratio "$op" "$rp")" "$want" "$verdict"
    [[ $verdict == met ]] || FAILURES+=("target $transport $domain: $want ($verdict)")
}

inner_main() {
    local t0=$EPOCHREALTIME have_ours=1 entry domain c row=0 transport side
    [[ -x $SOCKETMAP_LOAD ]] \
        || die "socketmap_load not found: $SOCKETMAP_LOAD (cmake --build BUILD_DIR --target socketmap_load)"
    [[ -x $SOCKETMAP_NULL_SERVER ]] \
        || die "socketmap_null_server not found: $SOCKETMAP_NULL_SERVER (cmake --build BUILD_DIR --target socketmap_null_server)"
    if [[ ! -x $MXPOLICY_POSTFIX ]]; then
        have_ours=0
        echo "mxpolicy-postfix not built; measuring mta-sts-daemon only"
    fi
    export WORLD_HTTPS_PORT=443
    start_world
    [[ $HTTPS_PORT == 443 ]] || die "world HTTPS port is $HTTPS_PORT, not 443"
    trust_test_ca
    start_unbound
    for transport in "${TRANSPORTS[@]}"; do start_reference "$transport"; done
    ((have_ours == 0)) || start_ours
    start_ceiling
    local sides=(ref)
    ((have_ours == 0)) || sides+=(ours)

    local versus=""
    ((have_ours == 0)) || versus=" vs mxpolicy-postfix (ours)"
    echo "socketmap benchmark: mta-sts-daemon (ref, $REF_LOOP)$versus on ${TRANSPORTS[*]};" \
        "closed loop, ${SECONDS_PER_SAMPLE} s samples after ${WARMUP} s warm-up"
    for transport in "${TRANSPORTS[@]}"; do
        for entry in "${DOMAINS[@]}"; do
            domain=${entry%%|*}
            # warmed right before the domain's rows: mta-sts-daemon trusts a
            # cached policy for 60 s (cache_grace), then asks DNS again
            echo "$transport, $domain: warming the caches, checking the replies"
            for side in "${sides[@]}"; do
                warm "$side" "$transport" "$entry" || true
            done
            for c in "${CONNECTIONS[@]}"; do
                echo "$transport, $domain, $c connections:"
                local order=("${sides[@]}") round
                if ((row % 2 == 1 && have_ours)); then order=(ours ref); fi
                if ((c != 16)); then
                    for side in "${order[@]}"; do
                        measure "$side" "$transport" "$entry" "$c"
                    done
                else
                    # the targets' row: three rounds, each side's median
                    for round in 1 2 3; do
                        for side in "${order[@]}"; do
                            measure "$side" "$transport" "$entry" "$c" "-$round"
                        done
                        order=("${order[@]:1}" "${order[0]}")
                    done
                    for side in "${sides[@]}"; do
                        median_of "$side" "$transport" "$domain" "$c" 1 2 3
                    done
                    ceiling_sample "$transport" "$domain"
                fi
                row=$((row + 1))
            done
        done
    done
    echo "ceiling: socketmap_null_server (answers NOTFOUND without a lookup), 16 connections:"
    for transport in "${TRANSPORTS[@]}"; do ceiling_sample "$transport" last; done

    echo
    printf '%-4s %-14s %5s | %9s %10s | %9s %10s | %9s %9s\n' via domain conns \
        "ref rps" "ref p99 ms" "ours rps" "ours p99 ms" "rps ratio" "p99 ratio"
    for transport in "${TRANSPORTS[@]}"; do
        for entry in "${DOMAINS[@]}"; do
            domain=${entry%%|*}
            for c in "${CONNECTIONS[@]}"; do
                local k=$transport/$domain/$c
                printf '%-4s %-14s %5s | %9s %10s | %9s %10s | %9s %9s\n' "$transport" \
                    "$domain" "$c" "${RPS[ref/$k]:--}" "${P99[ref/$k]:--}" \
                    "${RPS[ours/$k]:--}" "${P99[ours/$k]:--}" \
                    "$(ratio "${RPS[ours/$k]:-}" "${RPS[ref/$k]:-}")" \
                    "$(ratio "${P99[ours/$k]:-}" "${P99[ref/$k]:-}")"
            done
        done
    done
    echo "(rps: replies per second; ratios: ours / ref; at 16 connections: medians of 3)"
    echo
    echo "ceiling at 16 connections, best of 3 samples (ours as a share of it):"
    for transport in "${TRANSPORTS[@]}"; do
        local k=$transport/nodane.test/16
        printf '  %-4s %9s rps, p99 %s ms; ours: sts-crlf.test %s, nodane.test %s\n' \
            "$transport" "${RPS[ceil/$k]:--}" "${P99[ceil/$k]:--}" \
            "$(ratio "${RPS[ours/$transport/sts-crlf.test/16]:-}" "${RPS[ceil/$k]:-}")" \
            "$(ratio "${RPS[ours/$k]:-}" "${RPS[ceil/$k]:-}")"
    done
    echo
    echo "targets at 16 connections:"
    for transport in "${TRANSPORTS[@]}"; do
        target "$transport" sts-crlf.test 5 3
        target "$transport" nodane.test 10
    done
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
