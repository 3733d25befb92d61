#!/usr/bin/env bash
# mta_sts_resolver.sh -- conformance: mxpolicy's MTA-STS verdicts (SPEC A-E)
# against Debian's postfix-mta-sts-resolver 1.1.2 (`mta-sts-query DOMAIN`),
# for every sts-* domain of the test world.
#
#   mta_sts_resolver.sh BUILD_DIR
#
# Binaries: BUILD_DIR/server/src/app/mxpolicyd and BUILD_DIR/client/mxpolicy
# (override with MXPOLICYD=... / MXPOLICY_CLI=...).
#
# mta-sts-query resolves with c-ares (/etc/resolv.conf), fetches
# https://mta-sts.DOMAIN/ on port 443 with aiohttp and trusts what Python's
# ssl.create_default_context() trusts (OpenSSL's default paths: SSL_CERT_FILE,
# else /usr/lib/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt). So
# everything runs in a private network + mount + PID namespace (netns_lib.sh):
# the world with nginx on 127.0.0.1:443 (WORLD_HTTPS_PORT=443), a validating
# unbound on 127.0.0.1:53, a bind-mounted resolv.conf, and a directory holding
# only the world's test CA bind-mounted over /etc/ssl/certs (the host's files
# are never written); mxpolicyd runs in the same namespace with
# --sts-ca-file=<world CA> --sts-https-port=443.
#
# Verdicts, normalised on both sides:
#   valid MODE id=ID mx=P1,P2   a policy was fetched and validated
#   none                        no usable TXT record: no policy
#   fetch-error                 TXT ok, but the fetch or the policy failed
# mxpolicy's comes from `mxpolicy resolve --json`: stsPolicy present -> valid;
# else "policy fetch:" in the reason -> fetch-error; else none.
#
# The table EXPECT below gives, per domain, mxpolicy's verdict required by
# RFC 8461 and SPEC (and, for some, the decision), and where
# postfix-mta-sts-resolver is known not to conform, the SPEC item. Output:
# one line per domain,
#   OK                               both give the expected verdict
#   DIVERGES(SPEC Xn, as expected)   mxpolicy gives the RFC verdict, the
#                                    reference another one (documented)
#   MISMATCH                         anything else (both outputs printed)
# Then sts-changing.test once more after `world.sh set-txt` (id v2) and
# `world.sh set-file` (mode testing), with a fresh mxpolicyd.
#
# Exit: 0 no MISMATCH, 1 mismatch or error, 77 skipped (not root, or no
#       network namespace possible).
# Needs: postfix-mta-sts-resolver, unbound, iproute2, util-linux (unshare),
#        python3, plus the world's tools.
#
# MSR_KEEP_RUN=1 keeps the run directory (all logs) and prints its path;
# MSR_NO_IPV6=1 disables IPv6 inside the namespace.
#
# shellcheck disable=SC2317  # functions called from inner_main / traps
set -euo pipefail

NS_NAME=mta_sts_resolver
NS_WHY="MTA-STS conformance needs root for a private network namespace"
NS_TOOLS=(mta-sts-query)
NS_KEEP_RUN=${MSR_KEEP_RUN:-0}
NS_NO_IPV6=${MSR_NO_IPV6:-0}
# shellcheck source=netns_lib.sh source-path=SCRIPTDIR
. "$(dirname "$(readlink -f "$0")")/netns_lib.sh"

# domain | mxpolicy's verdict (RFC 8461 + SPEC) | mxpolicy's decision [HOST=REQ]
#        | divergence of postfix-mta-sts-resolver 1.1.2: "SPEC-ITEM: what it does"
# (TLS requirements: PKIX = enforce, the host is allowed; UNUSABLE = not
# allowed by the policy's mx patterns.)
readonly EXPECT=(
"sts-crlf.test|valid enforce id=crlf1 mx=mx.sts-crlf.test|STS_ENFORCE mx.sts-crlf.test=PKIX|"
"sts-lf.test|valid testing id=lf1 mx=mx.sts-lf.test|STS_TESTING|"
"sts-bom.test|valid enforce id=bom1 mx=mx.sts-bom.test|STS_ENFORCE|C9: decodes the body as ASCII (no charset given), the UTF-8 BOM fails to decode: fetch error"
"sts-blank.test|valid enforce id=blank1 mx=mx.sts-blank.test|STS_ENFORCE|"
"sts-dup.test|valid testing id=dup1 mx=mx.sts-dup.test|STS_TESTING|C6: the last duplicate field wins (mode: enforce)"
"sts-maxage0.test|valid enforce id=maxage01 mx=mx.sts-maxage0.test|STS_ENFORCE|"
"sts-maxagemax.test|valid enforce id=maxagemax1 mx=mx.sts-maxagemax.test|STS_ENFORCE|"
"sts-maxageover.test|valid enforce id=maxageover1 mx=mx.sts-maxageover.test|STS_ENFORCE|C7: rejects max_age above 31557600 (we clamp it): fetch error"
"sts-maxage11.test|fetch-error|NONE|"
"sts-ext.test|valid enforce id=ext1 mx=mx.sts-ext.test|STS_ENFORCE|B7: decodes the body as ASCII (no charset given), the UTF-8 extension value fails to decode: fetch error"
"sts-none.test|valid none id=none1 mx=|NONE|"
"sts-enforce-nomx.test|fetch-error|NONE|"
"sts-big.test|fetch-error|NONE|"
"sts-exact64k.test|valid enforce id=exact64k1 mx=mx.sts-exact64k.test|STS_ENFORCE|"
"sts-r301.test|fetch-error|NONE|"
"sts-r302.test|fetch-error|NONE|"
"sts-r307.test|fetch-error|NONE|"
"sts-r308.test|fetch-error|NONE|"
"sts-s404.test|fetch-error|NONE|"
"sts-s500.test|fetch-error|NONE|"
"sts-html.test|fetch-error|NONE|"
"sts-notype.test|fetch-error|NONE|"
"sts-stall.test|fetch-error|NONE|"
"sts-nomatch.test|valid enforce id=nomatch1 mx=other.sts-nomatch.test|STS_ENFORCE mx.sts-nomatch.test=UNUSABLE|"
"sts-wildcard.test|valid enforce id=wildcard1 mx=*.sts-wildcard.test|STS_ENFORCE mx.sts-wildcard.test=PKIX|"
"sts-implicit.test|valid enforce id=implicit1 mx=mail.sts-implicit.test|STS_ENFORCE sts-implicit.test=UNUSABLE|"
"sts-twotxt.test|none|NONE|"
"sts-dane.test|valid enforce id=dane1 mx=mx.sts-dane.test|DANE_REQUIRED|"
"sts-wrongname.test|fetch-error|NONE|"
"sts-expired.test|fetch-error|NONE|"
"sts-selfsigned.test|fetch-error|NONE|"
"sts-insecurezone.test|valid enforce id=insecurezone1 mx=mx.sts-insecurezone.test|STS_ENFORCE|"
"sts-changing.test|valid enforce id=v1 mx=mx.sts-changing.test|STS_ENFORCE|"
"sts-user.test|valid enforce id=prov1 mx=mx.sts-user.test|STS_ENFORCE|"
)
# after set-txt id=v2 + set-file (mode testing), fresh mxpolicyd
readonly EXPECT_CHANGED="sts-changing.test|valid testing id=v2 mx=mx.sts-changing.test|STS_TESTING|"

# mxpolicyd's fetch time limit: sts-stall.test trickles 1 byte/s and only
# this limit ends it (mta-sts-query gives up after its fixed 4 s)
readonly FETCH_TIMEOUT=6s

# reference DIR DOMAIN...: mta-sts-query for each DOMAIN, 6 at a time, output
# in DIR/DOMAIN
reference() {
    local dir=$1; shift
    mkdir -p "$dir"
    # shellcheck disable=SC2016  # expanded by the inner bash
    printf '%s\n' "$@" | xargs -P 6 -I{} env -u https_proxy -u HTTPS_PROXY -u http_proxy \
        -u HTTP_PROXY -u all_proxy -u ALL_PROXY \
        SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt SSL_CERT_DIR=/etc/ssl/certs \
        bash -c 'timeout 30 mta-sts-query -v debug "$1" > "$2/$1" 2>&1 || echo "exit $?" >> "$2/$1"' \
        _ {} "$dir"
}

# ours OUT DOMAIN...: mxpolicy resolve --json, one line per domain
ours() {
    local out=$1; shift
    # in the background: a TERM trap runs during `wait`, not during a
    # foreground command (sts-stall.test takes FETCH_TIMEOUT)
    "$MXPOLICY_CLI" resolve --json --server="$SERVER" --deadline=30s "$@" \
        > "$out" 2> "$out.err" &
    wait $! || { cat "$out.err" >&2; die "mxpolicy resolve failed"; }
}

inner_main() {
    local t0=$EPOCHREALTIME
    export WORLD_HTTPS_PORT=443
    start_world
    [[ $HTTPS_PORT == 443 ]] || die "world HTTPS port is $HTTPS_PORT, not 443"
    trust_test_ca
    start_unbound
    start_mxpolicyd --sts-ca-file="$CA_FILE" --sts-https-port="$HTTPS_PORT" \
        --fetch-timeout="$FETCH_TIMEOUT"

    local domains=() e
    for e in "${EXPECT[@]}"; do domains+=("${e%%|*}"); done
    printf '%s\n' "${EXPECT[@]}" > "$RUN/expect.txt"

    # both at once: the reference's 4 s and our 6 s for sts-stall overlap
    reference "$RUN/ref" "${domains[@]}" &
    local ref_pid=$!
    ours "$RUN/mxpolicy.jsonl" "${domains[@]}"
    wait "$ref_pid" || die "mta-sts-query runs failed"

    # sts-changing.test: a new id and a new policy body. The TXT TTL is 1 s;
    # mxpolicyd caches its answer longer (SPEC D7: floor 60 s), so a fresh
    # one answers.
    local pol="$RUN/changed-policy.txt"
    printf 'version: STSv1\r\nmode: testing\r\nmx: mx.sts-changing.test\r\nmax_age: 86400\r\n' > "$pol"
    bash "$WORLD_SH" set-file "$RUN/world" mta-sts.sts-changing.test "$pol"
    bash "$WORLD_SH" set-txt "$RUN/world" _mta-sts.sts-changing.test "v=STSv1; id=v2;" 2>> "$RUN/world.out"
    stop_mxpolicyd
    start_mxpolicyd --sts-ca-file="$CA_FILE" --sts-https-port="$HTTPS_PORT" \
        --fetch-timeout="$FETCH_TIMEOUT"
    sleep 1.1                             # unbound :53 caches the old TXT 1 s
    reference "$RUN/ref2" sts-changing.test & wait $!
    ours "$RUN/mxpolicy2.jsonl" sts-changing.test
    echo "$EXPECT_CHANGED" > "$RUN/expect2.txt"

    local rc=0
    "$PYTHON" "$HERE/mta_sts_compare.py" \
        "$RUN/expect.txt" "$RUN/mxpolicy.jsonl" "$RUN/ref" \
        "$RUN/expect2.txt" "$RUN/mxpolicy2.jsonl" "$RUN/ref2" || rc=$?
    log "done in $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )) ms" \
        "(world start ${WORLD_START_MS} ms)"
    exit "$rc"
}

ns_main "$@"
