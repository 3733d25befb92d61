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
# The namespace plumbing (unshare, cleanup, unbound, mxpolicyd) is in
# netns_lib.sh, shared with mta_sts_resolver.sh.
#
# shellcheck disable=SC2317  # trap handlers and wait_for callbacks run indirectly
set -euo pipefail

NS_NAME=posttls_finger_dane
NS_WHY="posttls-finger conformance needs root for a private network namespace"
NS_TOOLS=(posttls-finger)
NS_KEEP_RUN=${PTF_KEEP_RUN:-0}
NS_NO_IPV6=${PTF_NO_IPV6:-0}
# shellcheck source=netns_lib.sh source-path=SCRIPTDIR
. "$(dirname "$(readlink -f "$0")")/netns_lib.sh"

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

###############################################################################
# inner: runs as PID 1 of the new namespaces (netns_lib.sh)
###############################################################################
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

inner_main() {
    local t0=$SECONDS
    start_world
    start_unbound
    start_smtp
    # shellcheck disable=SC2119  # no extra flags
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

ns_main "$@"
