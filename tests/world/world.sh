#!/usr/bin/env bash
# world.sh -- hermetic DNS(SEC) + HTTPS "test world" on 127.0.0.1.
#
#   world.sh start DIR   wipe DIR, generate keys/zones/CA/certs, start knotd +
#                        nginx on random free loopback ports (or
#                        WORLD_DNS_PORT / WORLD_HTTPS_PORT), wait until both
#                        answer; writes DIR/world.env (also printed on stdout)
#   world.sh stop DIR    stop both daemons (idempotent; missing DIR is fine)
#   world.sh set-txt DIR NAME [TEXT...]
#                        replace the TXT RRset at NAME in the running world
#                        (re-signed, reloaded; no TEXT deletes it)
#   world.sh set-file DIR VHOST FILE|-
#                        serve another /.well-known/mta-sts.txt on an sts-*
#                        vhost
#
# Everything (config, pids, logs, temp files) lives under DIR; nothing from
# /etc/knot, /etc/nginx or /etc/ssl/openssl.cnf is used.  See README.md.
#
# Speed: start must take < 2 s on a busy 2-core VM where every fork+exec
# costs ~8 ms, so this script avoids needless processes (no cat/sleep/date;
# here-docs are written with the `hd` builtin helper; one python coprocess
# picks the ports, computes SPKI digests and DS records and signs the ~70
# child zones in-process; all signed zones share one KSK + ZSK) and runs key
# generation, signing and the HTTPS certificates in parallel.  The remaining
# cost is the ldns-keygen / openssl runs and the daemons' start-up.
# WORLD_TRACE=1 prints per-phase timings on stderr.
set -euo pipefail
shopt -s nullglob

readonly SELF="${BASH_SOURCE[0]}"
readonly TTL=300
readonly STARTUP_TIMEOUT=10      # seconds, per daemon readiness wait
readonly STOP_TIMEOUT=5          # seconds before SIGKILL

log() { echo "world: $*" >&2; }
die() { echo "world: ERROR: $*" >&2; exit 1; }

# hd: copy a here-doc to stdout without forking cat
hd() { local t; IFS= read -r -d '' t || true; printf '%s' "$t"; }

# Fork-free clock (microseconds) and sleep.
us() { local t=${EPOCHREALTIME/./}; REPLY=$((10#$t)); }
SLEEP_FD=
nap() {   # nap SECONDS
    [[ -n $SLEEP_FD ]] || exec {SLEEP_FD}<> <(:)     # a pipe nobody writes to
    read -r -t "$1" -u "$SLEEP_FD" || true
}

# step NAME: start phase NAME (named in failure messages; with WORLD_TRACE=1
# the duration of the previous phase is printed)
us; T0=$REPLY; T_LAST=$REPLY; PHASE=init
step() {
    if [[ ${WORLD_TRACE:-0} == 1 ]]; then
        us; log "trace: $PHASE: $(((REPLY - T_LAST) / 1000)) ms"; T_LAST=$REPLY
    fi
    PHASE=$1
}

# Prefer the distro python (pyenv shims cost ~300 ms per call).
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=python3

###############################################################################
# python helper: ports, SPKI digests, DS records
###############################################################################
# One python process (a start costs 20-60 ms) runs as a coprocess from the
# very beginning, so its start overlaps the CA generation; it answers one
# request line with one answer line:
#   ports             "DNS_PORT HTTPS_PORT" (DNS_PORT free on UDP and TCP)
#   spki FILE         hex SHA-256 of the DER SubjectPublicKeyInfo of the PEM
#                     certificate FILE (the data of a TLSA 3 1 1 / 2 1 1)
#   ds ZONE KEYFILE   the SHA-256 DS (digest type 2) of the DNSKEY in KEYFILE
#                     (an ldns-keygen .key file) at owner ZONE., TTL $TTL
# Errors come back as "ERROR ...".
start_helper() {
    local src
    IFS= read -r -d '' src <<'EOF' || true
import base64, hashlib, socket, sys, time

def pick(udp_too):
    while True:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        ok = True
        if udp_too:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            u.close()
        t.close()
        if ok:
            return port

def ports():
    dns = pick(True)
    https = pick(False)
    while https == dns:
        https = pick(False)
    return f"{dns} {https}"

def tlv(der, pos):
    """(tag, start of contents, end) of the DER element at pos"""
    tag, n = der[pos], der[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n

def spki(path):
    pem = open(path).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    der = base64.b64decode("".join(body.split()))
    _, pos, _ = tlv(der, 0)            # Certificate
    _, pos, _ = tlv(der, pos)          # tbsCertificate
    if der[pos] == 0xA0:               # [0] version
        pos = tlv(der, pos)[2]
    for _ in range(5):                 # serial, signature, issuer, validity, subject
        pos = tlv(der, pos)[2]
    tag, _, end = tlv(der, pos)        # subjectPublicKeyInfo
    if tag != 0x30:
        raise ValueError(f"{path}: no SubjectPublicKeyInfo")
    return hashlib.sha256(der[pos:end]).hexdigest()

def ds(zone, path):
    # "OWNER IN DNSKEY FLAGS PROTO ALG BASE64 ;{comment}"
    f = open(path).read().split(";")[0].split()
    i = f.index("DNSKEY")
    flags, proto, alg = int(f[i + 1]), int(f[i + 2]), int(f[i + 3])
    rd = flags.to_bytes(2, "big") + bytes([proto, alg]) + base64.b64decode("".join(f[i + 4:]))
    ac = sum(b if j & 1 else b << 8 for j, b in enumerate(rd))
    tag = (ac + (ac >> 16)) & 0xFFFF  # RFC 4034 appendix B
    owner = b"".join(bytes([len(l)]) + l.lower().encode() for l in zone.split(".") if l) + b"\0"
    digest = hashlib.sha256(owner + rd).hexdigest().upper()
    return f"{zone}.\t{TTL}\tIN\tDS\t{tag} {alg} 2 {digest}"

# --- DNSSEC signing of a child zone (what ldns-signzone did, in-process) ---
# Input: a zone file as world.sh writes it ($ORIGIN/$TTL lines, then
# "OWNER [TTL] [IN] TYPE RDATA", no comments, no sub-delegations); output in
# ldns-signzone's layout ("OWNER\tTTL\tIN\tTYPE\tRDATA", absolute owners,
# RRSIG/NSEC after each RRset), so corrupt_rrsig works on it unchanged.
# NSEC chain, ECDSAP256SHA256: DNSKEY RRset signed with the KSK, every other
# RRset with the ZSK.
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16,
         "AAAA": 28, "DS": 43, "RRSIG": 46, "NSEC": 47, "DNSKEY": 48, "TLSA": 52}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
KEYS = {}

def type_code(t):
    if t in TYPES:
        return TYPES[t]
    if t.startswith("TYPE") and t[4:].isdigit():
        return int(t[4:])
    raise ValueError(f"unknown type {t}")

def type_name(c):
    return TYPE_NAMES.get(c, f"TYPE{c}")

def tokens(text):
    """zone-file tokens: (is_quoted, text)"""
    out, i, n = [], 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text[i] == '"':
            j, buf = i + 1, []
            while text[j] != '"':
                if text[j] == "\\":
                    j += 1
                buf.append(text[j])
                j += 1
            out.append((True, "".join(buf)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append((False, text[i:j]))
            i = j
    return out

def absname(name, origin):
    if name == "@":
        return origin
    if name.endswith("."):
        return name.lower()
    return (name + "." + origin).lower()

def wire_name(name):
    labels = [l for l in name.rstrip(".").split(".") if l] if name != "." else []
    return b"".join(bytes([len(l)]) + l.encode() for l in labels) + b"\0"

def canon_key(name):
    """RFC 4034 §6.1 canonical order"""
    return [l.encode() for l in reversed(name.rstrip(".").split("."))] if name != "." else []

def rdata_wire(rtype, toks, origin):
    import socket as so
    v = [t for _, t in toks]
    u16 = lambda x: int(x).to_bytes(2, "big")
    u32 = lambda x: int(x).to_bytes(4, "big")
    if len(v) >= 2 and v[0] == "\\#":
        return bytes.fromhex("".join(v[2:]))
    if rtype == 1:
        return so.inet_pton(so.AF_INET, v[0])
    if rtype == 28:
        return so.inet_pton(so.AF_INET6, v[0])
    if rtype in (2, 5):
        return wire_name(absname(v[0], origin))
    if rtype == 15:
        return u16(v[0]) + wire_name(absname(v[1], origin))
    if rtype == 6:
        return (wire_name(absname(v[0], origin)) + wire_name(absname(v[1], origin))
                + b"".join(u32(x) for x in v[2:7]))
    if rtype == 16:
        out = b""
        for _, t in toks:
            b = t.encode()
            out += bytes([len(b)]) + b
        return out
    if rtype == 52:
        return bytes([int(v[0]), int(v[1]), int(v[2])]) + bytes.fromhex("".join(v[3:]))
    if rtype == 48:
        return u16(v[0]) + bytes([int(v[1]), int(v[2])]) + base64.b64decode("".join(v[3:]))
    if rtype == 43:
        return u16(v[0]) + bytes([int(v[1]), int(v[2])]) + bytes.fromhex("".join(v[3:]))
    raise ValueError(f"cannot encode type {rtype}")

def load_key(path):
    """(dnskey rdata, key tag, private key) of an ldns-keygen key pair"""
    if path not in KEYS:
        from cryptography.hazmat.primitives.asymmetric import ec
        f = open(path + ".key").read().split(";")[0].split()
        i = f.index("DNSKEY")
        rd = (int(f[i + 1]).to_bytes(2, "big") + bytes([int(f[i + 2]), int(f[i + 3])])
              + base64.b64decode("".join(f[i + 4:])))
        ac = sum(b if j & 1 else b << 8 for j, b in enumerate(rd))
        tag = (ac + (ac >> 16)) & 0xFFFF
        priv = None
        for line in open(path + ".private"):
            if line.startswith("PrivateKey:"):
                d = int.from_bytes(base64.b64decode(line.split(":", 1)[1].strip()), "big")
                priv = ec.derive_private_key(d, ec.SECP256R1())
        KEYS[path] = (rd, tag, priv)
    return KEYS[path]

def ts(t):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))

def sign_zone(zone, infile, outfile, inception, expiration, zsk_path, ksk_path):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    origin = zone.rstrip(".").lower() + "."
    ttl_default = int(TTL)
    rrsets = {}          # (owner, type) -> [ttl, [(wire, text)]]
    for line in open(infile):
        line = line.strip()
        if not line:
            continue
        if line.startswith("$ORIGIN"):
            origin = line.split()[1].lower()
            continue
        if line.startswith("$TTL"):
            ttl_default = int(line.split()[1])
            continue
        head = line.split(None, 4)
        owner, i, ttl = absname(head[0], origin), 1, ttl_default
        if head[i].isdigit():
            ttl, i = int(head[i]), i + 1
        if head[i] == "IN":
            i += 1
        rtype = type_code(head[i])
        parts = line.split(None, i + 1)
        rest = parts[i + 1] if len(parts) > i + 1 else ""
        wire = rdata_wire(rtype, tokens(rest), origin)
        entry = rrsets.setdefault((owner, rtype), [ttl, []])
        if all(w != wire for w, _ in entry[1]):
            entry[1].append((wire, rest))
    zone_apex = zone.rstrip(".").lower() + "."
    soa = rrsets[(zone_apex, 6)]
    nsec_ttl = int(tokens(soa[1][0][1])[6][1])
    owners = sorted({o for o, _ in rrsets}, key=canon_key)
    for k, o in enumerate(owners):
        types = sorted({t for oo, t in rrsets if oo == o} | {46, 47})
        nxt = owners[(k + 1) % len(owners)]
        bitmap, windows = b"", {}
        for t in types:
            windows.setdefault(t >> 8, bytearray(32))[(t & 0xFF) >> 3] |= 0x80 >> (t & 7)
        for win, bits in sorted(windows.items()):
            bits = bytes(bits).rstrip(b"\0")
            bitmap += bytes([win, len(bits)]) + bits
        rrsets[(o, 47)] = [nsec_ttl, [(wire_name(nxt) + bitmap,
                                       nxt + " " + " ".join(type_name(t) for t in types))]]
    zsk, ksk = load_key(zsk_path), load_key(ksk_path)
    signer = wire_name(zone_apex)
    out = [f"$ORIGIN {zone_apex}"]
    for o in owners:
        for (oo, t) in sorted((k for k in rrsets if k[0] == o), key=lambda k: k[1]):
            ttl, rrs = rrsets[(oo, t)]
            for _, text in rrs:
                out.append(f"{o}\t{ttl}\tIN\t{type_name(t)}\t{text}")
            rd_key, tag, priv = ksk if t == 48 else zsk
            labels = len([l for l in o.rstrip(".").split(".") if l and l != "*"])
            head = (t.to_bytes(2, "big") + bytes([13, labels]) + ttl.to_bytes(4, "big")
                    + expiration.to_bytes(4, "big") + inception.to_bytes(4, "big")
                    + tag.to_bytes(2, "big") + signer)
            ow = wire_name(o) + t.to_bytes(2, "big") + b"\0\1" + ttl.to_bytes(4, "big")
            data = head + b"".join(ow + len(w).to_bytes(2, "big") + w
                                   for w in sorted(w for w, _ in rrs))
            r, s = decode_dss_signature(priv.sign(data, ec.ECDSA(hashes.SHA256())))
            sig = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
            out.append(f"{o}\t{ttl}\tIN\tRRSIG\t{type_name(t)} 13 {labels} {ttl} "
                       f"{ts(expiration)} {ts(inception)} {tag} {zone_apex} {sig}")
    with open(outfile, "w") as f:
        f.write("\n".join(out) + "\n")
    return "ok"

def warm_up():
    """import cryptography and load its OpenSSL backend (~100 ms) while the
    main thread answers the first requests"""
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        ec.derive_private_key(1, ec.SECP256R1())
    except Exception as e:      # sign_zone reports it again
        print(f"python3-cryptography: {e!r}", file=sys.stderr)

TTL = sys.argv[1]
import threading
WARM = threading.Thread(target=warm_up, daemon=True)
WARM.start()
for line in sys.stdin:
    cmd, _, arg = line.rstrip("\n").partition(" ")
    try:
        if cmd == "ports":
            out = ports()
        elif cmd == "spki":
            out = spki(arg)
        elif cmd == "ds":
            out = ds(*arg.split(" ", 1))
        elif cmd == "sign":
            WARM.join()
            a = arg.split(" ")
            out = sign_zone(a[0], a[1], a[2], int(a[3]), int(a[4]), a[5], a[6])
        else:
            raise ValueError(f"unknown request {cmd!r}")
    except Exception as e:
        out = f"ERROR {line.strip()}: {e!r}"
    print(out, flush=True)
EOF
    coproc PY { exec "$PYTHON" -I -c "$src" "$TTL" 2>>"$W/run/helper.log"; }
}

# py REQUEST: send one request to the helper; the answer is in REPLY.
# (stderr is silenced for the write only: a signal trap that runs while the
# read waits must still be able to log)
py() {
    if ! { printf '%s\n' "$1" >&"${PY[1]:-}"; } 2>/dev/null || ! read -r -u "${PY[0]:-}"; then
        die "python helper died (request: $1); see $W/run/helper.log"
    fi
    [[ $REPLY != ERROR* ]] || die "python helper: $REPLY"
}

# stop_helper: close its stdin (it exits) and reap it.
stop_helper() {
    local fd=${PY[1]:-} pid=${PY_PID:-}
    [[ -z $fd ]] || exec {fd}>&-
    [[ -z $pid ]] || wait "$pid" 2>/dev/null || true
}

###############################################################################
# ca + certs
###############################################################################

write_openssl_cnf() {
    : > "$W/ca/index.txt"
    echo 1000 > "$W/ca/serial"
    hd > "$W/ca/openssl.cnf" <<EOF
# Minimal, self-contained OpenSSL config for the world test CA.
[ ca ]
default_ca = world_ca

[ world_ca ]
dir             = $W/ca
database        = \$dir/index.txt
new_certs_dir   = \$dir/newcerts
serial          = \$dir/serial
certificate     = $W/ca.pem
private_key     = \$dir/ca.key
default_md      = sha256
policy          = policy_any
copy_extensions = copy
unique_subject  = no

[ policy_any ]
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt             = no

[ req_dn ]
CN = unused

[ ca_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ leaf_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
}

# openssl with our config only; errors go to ca/openssl.log
ossl() { OPENSSL_CONF="$W/ca/openssl.cnf" openssl "$@" 2>>"$W/ca/openssl.log"; }

readonly EC_KEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

make_ca() {
    write_openssl_cnf
    ossl req -x509 "${EC_KEY[@]}" -keyout "$W/ca/ca.key" -out "$W/ca.pem" \
        -config "$W/ca/openssl.cnf" -extensions ca_ext \
        -subj "/CN=World Test CA" -days 3650
}

# cert_good NAME [SAN]: key+cert for NAME issued by the test CA.
# SAN defaults to NAME (pass another name to get a wrong-name cert).
cert_good() {
    local name=$1 san=${2:-$1}
    ossl req -x509 "${EC_KEY[@]}" -keyout "$W/certs/$name.key" -out "$W/certs/$name.pem" \
        -CA "$W/ca.pem" -CAkey "$W/ca/ca.key" \
        -config "$W/ca/openssl.cnf" -extensions leaf_ext \
        -subj "/CN=$name" -addext "subjectAltName=DNS:$san" -days 365
}

# san_list NAME...: "DNS:NAME1,DNS:NAME2,..." in REPLY
san_list() {
    local n; REPLY=""
    for n in "$@"; do REPLY+=${REPLY:+,}DNS:$n; done
}

# cert_multi NAME SAN...: key+cert NAME issued by the test CA for all the
# SAN names (DNS); the CN is the first of them.
cert_multi() {
    local name=$1 san; shift
    san_list "$@"; san=$REPLY
    ossl req -x509 "${EC_KEY[@]}" -keyout "$W/certs/$name.key" -out "$W/certs/$name.pem" \
        -CA "$W/ca.pem" -CAkey "$W/ca/ca.key" \
        -config "$W/ca/openssl.cnf" -extensions leaf_ext \
        -subj "/CN=$1" -addext "subjectAltName=$san" -days 365
}

# cert_expired NAME [SAN...]: issued by the test CA for NAME (and the other
# SAN names), valid in January 2020 only.
# (OpenSSL 3.0 "x509 -req"/"req -x509" cannot back-date; "ca" can.)
cert_expired() {
    local name=$1
    san_list "$@"
    ossl req -new "${EC_KEY[@]}" -keyout "$W/certs/$name.key" -out "$W/certs/$name.csr" \
        -config "$W/ca/openssl.cnf" -subj "/CN=$name" \
        -addext "subjectAltName=$REPLY"
    ossl ca -batch -notext -config "$W/ca/openssl.cnf" -extensions leaf_ext \
        -startdate 20200101000000Z -enddate 20200201000000Z \
        -in "$W/certs/$name.csr" -out "$W/certs/$name.pem"
}

# cert_selfsigned NAME [SAN...]: for NAME (and the other SAN names), not
# from the test CA.
cert_selfsigned() {
    local name=$1
    san_list "$@"
    ossl req -x509 "${EC_KEY[@]}" -keyout "$W/certs/$name.key" -out "$W/certs/$name.pem" \
        -config "$W/ca/openssl.cnf" -extensions leaf_ext \
        -subj "/CN=$name" -addext "subjectAltName=$REPLY" -days 365
}

# Certs the DNS zones need (TLSA); must exist before make_zones.
make_dns_certs() {
    make_ca
    cert_good mx1.dane.test
}

# Certs the zones do not need (nginx, later SMTP endpoints); built in the
# background while the zones are signed.
make_https_certs() {
    cert_good mx.dane-ta.test
    cert_good mta-sts.insecure.test
    cert_good mta-sts.wrongname.test mta-sts.other.test
    # the expired and the self-signed certificate also serve sts-expired and
    # sts-selfsigned (one openssl run less each)
    cert_expired mta-sts.expired.test mta-sts.sts-expired.test
    cert_selfsigned mta-sts.selfsigned.test mta-sts.sts-selfsigned.test
    # MTA-STS cases: one certificate for every sts-* vhost with a good
    # certificate; the certificate cases use the ones above (sts_cert).
    local c names=()
    for c in "${STS_CASES[@]}"; do
        sts_cert "$c"
        [[ $REPLY != sts-shared ]] || names+=("mta-sts.sts-$c.test")
    done
    cert_multi sts-shared "${names[@]}" mta-sts.sts-user.test
}

###############################################################################
# zones
###############################################################################
# A child zone of test. is declared (in define_children) with
#     define_zone NAME MODE <<EOF
#     records, relative to $ORIGIN NAME.  (SOA and "@ NS ns.test." are added)
#     EOF
# MODE: signed      normal DNSSEC, DS in test.
#       insecure    unsigned, no DS in test. (provably insecure via NSEC)
#       bogus-sig   signed, then the RRSIG of the apex MX RRset is corrupted
#       bogus-tlsa  signed, then the RRSIG of the zone's one TLSA RRset is
#                   corrupted (everything else stays valid)
#       bogus-ds    signed, but test. publishes the DS of an unrelated KSK
#       expired     signed with signatures valid in January 2020 only
# Every child is delegated from test. with "NS ns.test." (ns.test A 127.0.0.1).
# Records only the parent has (a lame delegation) are declared with
#     parent_records <<EOF
#     records, relative to $ORIGIN test.
#     EOF
#
# Keys: every signed zone (test. too) uses the same KSK and ZSK
# (ECDSAP256SHA256, keys/ksk/ and keys/zsk/); keys/unrelated/ is the KSK whose
# DS bogus-ds zones get.  A DS binds a key to its owner name, so sharing keys
# changes nothing for a validator, and 3 ldns-keygen runs replace 2 per zone.
# One key per directory, so a key-tag collision cannot overwrite files.
#
# Build steps:
#   1. the 3 keys (started in the background at the very beginning)
#   2. define_children writes zones/ZONE.zone (TLSA data from the helper)
#   3. each signed child gets the two DNSKEY RRs appended (the signers use
#      them instead of the .key files, whose owner name would not match)
#   4. test.zone: DNSKEYs, glue, delegations, the children's DS (from the
#      helper), parent_records; trust-anchor.ds; test. is signed by
#      ldns-signzone (NSEC) in the background
#   5. meanwhile the helper signs each signed child (sign_zone: NSEC,
#      ECDSAP256SHA256, the same layout as ldns-signzone; one ldns-signzone
#      process per zone cost ~20-30 ms each, ~2 s for 70 zones on a busy VM)
#      zones/ZONE.zone -> zones/ZONE.zone.signed
#   6. the bogus-sig/bogus-tlsa edits
# knot serves the .signed files (.zone for insecure zones) as they are.

ZONES=()                               # child zone names, in declaration order
declare -A ZONE_MODE=([test]=signed)   # zone -> MODE (incl. the parent)
PARENT_RECORDS=""                      # extra records for test.zone

zone_header() {
    # shellcheck disable=SC2016  # $ORIGIN/$TTL are zone-file directives
    printf '$ORIGIN %s.\n$TTL %s\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 %s\n@ NS ns.test.\n' \
        "$1" "$TTL" "$TTL"
}

define_zone() {
    local name=$1 mode=$2 body
    case $mode in signed|insecure|bogus-sig|bogus-tlsa|bogus-ds|expired) ;;
        *) die "define_zone $name: unknown mode '$mode'" ;; esac
    [[ -z ${ZONE_MODE[$name]:-} ]] || die "define_zone $name: defined twice"
    ZONES+=("$name")
    ZONE_MODE[$name]=$mode
    IFS= read -r -d '' body || true
    { zone_header "$name"; printf '%s' "$body"; } > "$W/zones/$name.zone"
}

parent_records() {
    local body
    IFS= read -r -d '' body || true
    PARENT_RECORDS+=$body
}

define_children() {
    local tlsa_mx1 tlsa_ca h32 h31 huge recs i
    # TLSA x 1 1 data: SHA-256 of the certificate's SubjectPublicKeyInfo
    py "spki $W/certs/mx1.dane.test.pem"; tlsa_mx1=$REPLY
    py "spki $W/ca.pem"; tlsa_ca=$REPLY

    define_zone dane.test signed <<EOF
@ MX 10 mx1.dane.test.
mx1 A 127.0.0.1
mx1 AAAA ::1
_25._tcp.mx1 TLSA 3 1 1 $tlsa_mx1
multi TXT "v=STSv1; id=ab" "cd;"
EOF

    # Every name below wild.test (any depth) has this MX: unlimited distinct
    # DANE domains for the memory benchmark (signed; NSEC proves the
    # wildcard expansion).
    define_zone wild.test signed <<EOF
* MX 10 mx.wild.test.
mx A 127.0.0.1
_25._tcp.mx TLSA 3 1 1 $tlsa_mx1
EOF

    define_zone nodane.test signed <<EOF
@ MX 10 mx.nodane.test.
@ TXT "hello"
mx A 127.0.0.1
EOF

    define_zone insecure.test insecure <<EOF
@ MX 10 mx.insecure.test.
mx A 127.0.0.1
_mta-sts TXT "v=STSv1; id=20240101"
mta-sts A 127.0.0.1
alias CNAME mx1.dane.test.
EOF

    define_zone bogus-sig.test bogus-sig <<EOF
@ MX 10 mx.bogus-sig.test.
mx A 127.0.0.1
EOF

    define_zone bogus-ds.test bogus-ds <<EOF
@ MX 10 mx.bogus-ds.test.
mx A 127.0.0.1
EOF

    define_zone bogus-expired.test expired <<EOF
@ MX 10 mx.bogus-expired.test.
mx A 127.0.0.1
EOF

    define_zone secmx-insecure-host.test signed <<EOF
@ MX 10 mx.insecure.test.
EOF

    # --- DANE engine cases ---------------------------------------------------

    define_zone two-mx.test signed <<EOF
@ MX 10 mx1.two-mx.test.
@ MX 20 mx2.two-mx.test.
mx1 A 127.0.0.1
mx2 A 127.0.0.1
_25._tcp.mx1 TLSA 3 1 1 $tlsa_mx1
EOF

    define_zone three-mx.test signed <<EOF
@ MX 10 mx1.three-mx.test.
@ MX 20 mx2.three-mx.test.
@ MX 30 mx3.three-mx.test.
mx1 A 127.0.0.1
mx2 A 127.0.0.1
mx3 A 127.0.0.1
_25._tcp.mx1 TLSA 3 1 1 $tlsa_mx1
_25._tcp.mx2 TLSA 3 1 1 $tlsa_mx1
_25._tcp.mx3 TLSA 3 1 1 $tlsa_mx1
EOF

    define_zone cname-secure.test signed <<EOF
@ MX 10 mx.cname-secure.test.
mx CNAME mx1.dane.test.
EOF

    # alias.insecure.test. CNAME mx1.dane.test. is in insecure.test above
    define_zone cname-insecure.test signed <<EOF
@ MX 10 alias.insecure.test.
EOF

    # Only unusable TLSA records: usages 0/1 (PKIX-*), a 31-byte SHA-256,
    # matching type 255.  The 32-byte data is mx1's real SPKI SHA-256 (and
    # the 31 bytes its prefix), so only the usage/length/type makes them
    # unusable.
    h32=$tlsa_mx1
    h31=${tlsa_mx1:0:62}
    define_zone unusable.test signed <<EOF
@ MX 10 mx.unusable.test.
mx A 127.0.0.1
_25._tcp.mx TLSA 0 1 1 $h32
_25._tcp.mx TLSA 1 1 1 $h32
_25._tcp.mx TLSA 3 1 1 $h31
_25._tcp.mx TLSA 3 1 255 $h32
EOF

    # DANE-TA(2): the test CA's SPKI; DIR/certs/mx.dane-ta.test.{key,pem} is
    # issued by that CA (make_https_certs)
    define_zone dane-ta.test signed <<EOF
@ MX 10 mx.dane-ta.test.
mx A 127.0.0.1
_25._tcp.mx TLSA 2 1 1 $tlsa_ca
EOF

    define_zone implicit.test signed <<EOF
@ A 127.0.0.1
_25._tcp TLSA 3 1 1 $tlsa_mx1
EOF

    define_zone nullmx.test signed <<EOF
@ MX 0 .
EOF

    define_zone tlsa-bogus.test bogus-tlsa <<EOF
@ MX 10 mx.tlsa-bogus.test.
mx A 127.0.0.1
_25._tcp.mx TLSA 3 1 1 $tlsa_mx1
EOF

    # Lame: test. delegates lame.test (no DS) to ns.nowhere.test, a name that
    # does not exist (secure NXDOMAIN), and knot does not serve lame.test, so
    # a validator has no server to ask: SERVFAIL in ~30 ms.  (Glue pointing at
    # 127.0.0.2, where nothing listens, made unbound 1.17 wait for timeouts
    # with backoff, over 30 s: it ignores the ICMP "port unreachable".)
    parent_records <<EOF
lame NS ns.nowhere.test.
EOF

    define_zone ipv6only.test signed <<EOF
@ MX 10 mx.ipv6only.test.
mx AAAA ::1
_25._tcp.mx TLSA 3 1 1 $tlsa_mx1
EOF

    # --- hostile DNS data ----------------------------------------------------

    # TLSA with empty association data (in RFC 3597 generic form: the
    # presentation form "TLSA 3 1 1" with no data does not load in knot)
    define_zone tlsa-empty.test signed <<EOF
@ MX 10 mx.tlsa-empty.test.
mx A 127.0.0.1
_25._tcp.mx TYPE52 \\# 3 030101
EOF

    # 4000 bytes of association data: the response exceeds 4096 bytes (TCP)
    huge=5a
    for i in 1 2 3 4 5 6 7 8 9 10 11; do huge+=$huge; done     # 2048 bytes
    huge+=${huge:0:3904}                                        # 4000 bytes
    define_zone tlsa-huge.test signed <<EOF
@ MX 10 mx.tlsa-huge.test.
mx A 127.0.0.1
_25._tcp.mx TLSA 3 1 0 $huge
EOF

    define_zone mx-ipliteral.test signed <<EOF
@ MX 10 192.0.2.1.
EOF

    define_zone mx-dot-mixed.test signed <<EOF
@ MX 0 .
@ MX 10 mx.mx-dot-mixed.test.
mx A 127.0.0.1
EOF

    define_zone cname-loop.test signed <<EOF
@ MX 10 loop1.cname-loop.test.
loop1 CNAME loop2.cname-loop.test.
loop2 CNAME loop1.cname-loop.test.
EOF

    recs=""
    for ((i = 1; i <= 100; i++)); do
        recs+="@ MX $i mx$i.mx-100.test."$'\n'"mx$i A 127.0.0.1"$'\n'
    done
    define_zone mx-100.test signed <<<"$recs"

    # --- MTA-STS cases (see "MTA-STS cases" above) ---------------------------
    define_sts_zones
}

# Wait for the given background pids; die if any failed or if anything was
# written to the build log (ldns-signzone only warns about unreadable keys).
wait_all() {
    local what=$1 p rc=0; shift
    for p in "$@"; do wait "$p" || rc=1; done
    ((rc == 0)) || die "$what failed"
    [[ ! -s $W/zones/build.log ]] || die "$what printed errors"
}

# only_file DIR GLOB: the single file matching DIR/GLOB
only_file() {
    # shellcheck disable=SC2206  # $2 is a glob on purpose
    local f=("$1"/$2)
    ((${#f[@]} == 1)) || die "expected one $2 in $1, found ${#f[@]}"
    REPLY=${f[0]}
}

# start_keygen: the shared KSK, ZSK and unrelated KSK, in the background
# (pids in KEYGEN_PIDS; make_zones waits for them).
KEYGEN_PIDS=()
start_keygen() {
    local role k
    for role in ksk zsk unrelated; do
        k=-k
        [[ $role != zsk ]] || k=""
        (cd "$W/keys/$role" && exec ldns-keygen -a ECDSAP256SHA256 $k test) \
            >/dev/null 2>>"$W/zones/build.log" &
        KEYGEN_PIDS+=($!)
    done
}

# corrupt_rrsig ZONE TYPE [OWNER]: flip one base64 character of the RRSIG
# covering TYPE (at OWNER, default: any owner); there must be exactly one.
corrupt_rrsig() {
    local zone=$1 type=$2 owner=${3:-} file="$W/zones/$1.zone.signed" lines i n=0 r
    mapfile -t lines < "$file"
    for i in "${!lines[@]}"; do
        [[ ${lines[i]} == *RRSIG* ]] || continue
        read -r -a r <<<"${lines[i]}"
        if [[ ${r[3]} == RRSIG && ${r[4]} == "$type" && ( -z $owner || ${r[0]} == "$owner" ) ]]; then
            local s=${r[-1]}
            [[ ${s:9:1} == A ]] && r[-1]=${s:0:9}B${s:10} || r[-1]=${s:0:9}A${s:10}
            lines[i]="${r[*]}"
            n=$((n + 1))
        fi
    done
    ((n == 1)) || die "corrupt_rrsig $zone $type ${owner:-*}: expected one RRSIG, found $n"
    printf '%s\n' "${lines[@]}" > "$file"
}

make_zones() {
    local z f rdata zsk ksk unrelated dnskeys=() validity pids=()
    define_children                                   # 2.
    step zone-keys                                    # 1.
    wait_all "key generation" "${KEYGEN_PIDS[@]}"
    only_file "$W/keys/zsk" 'K*.private'; zsk=${REPLY%.private}
    only_file "$W/keys/ksk" 'K*.private'; ksk=${REPLY%.private}
    only_file "$W/keys/unrelated" 'K*.private'; unrelated=${REPLY%.private}
    for f in "$zsk.key" "$ksk.key"; do
        read -r _ _ _ rdata < "$f"                 # OWNER IN DNSKEY RDATA
        dnskeys+=("DNSKEY ${rdata%%;*}")
    done

    # 3. DNSKEYs into the children to be signed
    step zone-signing
    for z in "${ZONES[@]}"; do
        [[ ${ZONE_MODE[$z]} != insecure ]] || continue
        printf '%s\n' "${dnskeys[@]/#/$z. }" >> "$W/zones/$z.zone"
    done

    # 4. the parent, with the DS records; ldns-signzone signs it in the
    # background while the helper signs the children
    {
        zone_header test
        printf '%s\n' "${dnskeys[@]/#/test. }"
        echo "ns A 127.0.0.1"
        for z in "${ZONES[@]}"; do
            echo "$z. NS ns.test."
            case ${ZONE_MODE[$z]} in
                insecure) ;;
                bogus-ds) py "ds $z $unrelated.key"; echo "$REPLY" ;;
                *)        py "ds $z $ksk.key"; echo "$REPLY" ;;
            esac
        done
        printf '%s' "$PARENT_RECORDS"
    } > "$W/zones/test.zone"
    py "ds test $ksk.key"; echo "$REPLY" > "$W/trust-anchor.ds"
    ldns-signzone -o test. -i $((NOW - 86400)) -e $((NOW + 30 * 86400)) \
        -f "$W/zones/test.zone.signed" "$W/zones/test.zone" "$zsk" "$ksk" \
        >/dev/null 2>>"$W/zones/build.log" &
    pids+=($!)

    # 5. the children, in the python helper (sign_zone: NSEC, ECDSAP256SHA256,
    # one RRSIG per RRset; ~70 ldns-signzone processes took ~2 s on a busy VM)
    for z in "${ZONES[@]}"; do
        case ${ZONE_MODE[$z]} in
            insecure) continue ;;
            expired)  validity="1577836800 1580515200" ;;    # 2020-01-01..02-01
            *)        validity="$((NOW - 86400)) $((NOW + 30 * 86400))" ;;
        esac
        py "sign $z $W/zones/$z.zone $W/zones/$z.zone.signed $validity $zsk $ksk"
    done
    wait_all "zone signing" "${pids[@]}"

    # 6. deliberate damage; zones/modes for set-txt
    : > "$W/zones/modes"
    for z in "${ZONES[@]}"; do
        printf '%s %s\n' "$z" "${ZONE_MODE[$z]}" >> "$W/zones/modes"
        case ${ZONE_MODE[$z]} in
            bogus-sig)  corrupt_rrsig "$z" MX "$z." ;;
            bogus-tlsa) corrupt_rrsig "$z" TLSA ;;
        esac
    done
}

###############################################################################
# MTA-STS cases
###############################################################################
# Every case C is a child zone sts-C.test with a policy host
# mta-sts.sts-C.test (an nginx vhost with its own docroot
# nginx/sts/mta-sts.sts-C.test/).  Unless a case says otherwise (sts_zone,
# sts_cert, sts_body, sts_location), the zone is signed, has no TLSA and
# holds
#     @        MX 10 mx.sts-C.test.
#     mx       A 127.0.0.1
#     _mta-sts TXT "v=STSv1; id=<C without dashes>1;"
#     mta-sts  A 127.0.0.1
# and the vhost serves its body as text/plain with a certificate from the
# test CA.  Besides the cases: provider.test and sts-user.test (delegation
# through CNAMEs, RFC 8461 §8.2).  README.md has the table.
readonly STS_CASES=(
    crlf lf bom blank dup maxage0 maxagemax maxageover maxage11 ext none
    enforce-nomx big exact64k r301 r302 r307 r308 s404 s500 html notype stall
    nomatch wildcard implicit twotxt dane wrongname expired selfsigned
    insecurezone changing l2 inj-space inj-brace inj-colon inj-comma inj-eq
)
# where the r30x redirects point to (a vhost serving a valid policy)
readonly STS_REDIRECT_TARGET=mta-sts.sts-crlf.test

# sts_cert CASE: the certificate (DIR/certs/NAME.pem) of the case's vhost,
# in REPLY
sts_cert() {
    case $1 in
        wrongname)  REPLY=mta-sts.wrongname.test ;;     # SAN mta-sts.other.test
        expired)    REPLY=mta-sts.expired.test ;;       # + SAN mta-sts.sts-expired.test
        selfsigned) REPLY=mta-sts.selfsigned.test ;;    # + SAN mta-sts.sts-selfsigned.test
        *)          REPLY=sts-shared ;;
    esac
}

# sts_policy DOMAIN MODE MX MAX_AGE [EOL]: a policy body in REPLY; MX may be
# empty (no mx line)
sts_policy() {
    local eol=${5:-$'\r\n'}
    REPLY="version: STSv1${eol}mode: $2${eol}"
    [[ -z $3 ]] || REPLY+="mx: $3${eol}"
    REPLY+="max_age: $4${eol}"
}

# sts_pad BODY SIZE: BODY plus an extension line "x-pad: 000...", SIZE bytes
# in all, in REPLY
sts_pad() {
    local head="$1x-pad: " pad
    printf -v pad '%0*d' $(($2 - ${#head} - 2)) 0
    REPLY="$head$pad"$'\r\n'
}

# sts_body CASE: the body served for the case, in REPLY ("" = no file; the
# vhost answers with a status only)
sts_body() {
    local c=$1 d=sts-$1.test e nl=$'\r\n'
    sts_policy "$d" enforce "mx.$d" 86400; e=$REPLY       # "E"
    case $c in
        lf)           sts_policy "$d" testing "mx.$d" 86400 $'\n' ;;
        bom)          REPLY=$'\xef\xbb\xbf'$e ;;
        blank)        REPLY="version: STSv1$nl${nl}mode: enforce$nl${nl}mx: mx.$d$nl${nl}max_age: 86400$nl" ;;
        dup)          REPLY="version: STSv1${nl}mode: testing${nl}mx: mx.$d${nl}mode: enforce${nl}max_age: 86400$nl" ;;
        maxage0)      sts_policy "$d" enforce "mx.$d" 0 ;;
        maxagemax)    sts_policy "$d" enforce "mx.$d" 31557600 ;;
        maxageover)   sts_policy "$d" enforce "mx.$d" 31557601 ;;
        maxage11)     sts_policy "$d" enforce "mx.$d" 12345678901 ;;
        ext)          REPLY="${e}x-note: some text${nl}foo.bar_baz-1: caf"$'\xc3\xa9'"$nl" ;;
        none)         sts_policy "$d" none "" 86400 ;;
        enforce-nomx) sts_policy "$d" enforce "" 86400 ;;
        big)          sts_pad "$e" 65537 ;;
        exact64k)     sts_pad "$e" 65536 ;;
        stall)        sts_pad "$e" 4000 ;;                # trickles (sts_location)
        r30?|s404|s500) REPLY="" ;;
        nomatch)      sts_policy "$d" enforce "other.$d" 86400 ;;
        wildcard)     sts_policy "$d" enforce "*.$d" 86400 ;;
        implicit)     sts_policy "$d" enforce "mail.$d" 86400 ;;
        # patterns that try to smuggle socketmap reply syntax (Decisions:
        # policy-injection defence): each makes the policy invalid
        inj-space)    sts_policy "$d" enforce "mx.$d servername=nexthop" 86400 ;;
        inj-brace)    sts_policy "$d" enforce "mx.$d } { policy_type=evil" 86400 ;;
        inj-colon)    sts_policy "$d" enforce "mx.$d:evil.test" 86400 ;;
        inj-comma)    sts_policy "$d" enforce "mx.$d,match=evil.test" 86400 ;;
        inj-eq)       sts_policy "$d" enforce "mx=$d" 86400 ;;
        *)            REPLY=$e ;;
    esac
}

# sts_location CASE: nginx directives for the case's vhost
sts_location() {
    local loc='location = /.well-known/mta-sts.txt'
    case $1 in
        r30?)   echo "        $loc { return ${1#r} https://$STS_REDIRECT_TARGET/.well-known/mta-sts.txt; }" ;;
        s404)   echo "        $loc { return 404; }" ;;
        s500)   echo "        $loc { return 500; }" ;;
        html)   echo "        $loc { default_type text/html; }" ;;
        notype) echo "        $loc { default_type \"\"; }" ;;
        # headers and ~800 body bytes at once, then 1 byte/s (4000-byte body)
        stall)  echo "        $loc { limit_rate_after 1k; limit_rate 1; }" ;;
    esac
}

# sts_zone CASE: the zone mode and records (in REPLY) of sts-CASE.test
sts_zone() {
    local c=$1 d=sts-$1.test nl=$'\n' mode=signed
    local mx="@ MX 10 mx.$d.${nl}mx A 127.0.0.1$nl"
    local txt="_mta-sts TXT \"v=STSv1; id=${c//-/}1;\"$nl" host="mta-sts A 127.0.0.1$nl"
    case $c in
        implicit)     mx="@ A 127.0.0.1$nl" ;;                      # no MX at all
        twotxt)       txt+="_mta-sts TXT \"v=STSv1; id=twotxt2;\"$nl" ;;
        dane)         mx+="_25._tcp.mx TLSA 3 1 1 $tlsa_mx1$nl" ;;   # define_children's
        insecurezone) mode=insecure ;;
        # TTL 1: a changed id (world.sh set-txt) is seen at once by resolvers
        changing)     txt="_mta-sts 1 TXT \"v=STSv1; id=v1;\"$nl" ;;
        # TTL 1: the L2 test removes its TXT record and puts it back
        l2)           txt="_mta-sts 1 TXT \"v=STSv1; id=l21;\"$nl" ;;
    esac
    REPLY="$mode $mx$txt$host"
}

# define_sts_zones: the zones of all cases, provider.test and sts-user.test
define_sts_zones() {
    local c
    for c in "${STS_CASES[@]}"; do
        sts_zone "$c"
        define_zone "sts-$c.test" "${REPLY%% *}" <<<"${REPLY#* }"
    done
    define_zone provider.test signed <<EOF
_mta-sts TXT "v=STSv1; id=prov1;"
mta-sts A 127.0.0.1
EOF
    define_zone sts-user.test signed <<EOF
@ MX 10 mx.sts-user.test.
mx A 127.0.0.1
_mta-sts CNAME _mta-sts.provider.test.
mta-sts CNAME mta-sts.provider.test.
EOF
}

# make_sts_docroots: nginx/sts/VHOST/.well-known/mta-sts.txt for every case
# with a body (sts_body), and for mta-sts.sts-user.test
make_sts_docroots() {
    local c dirs=() root="$W/nginx/sts"
    for c in "${STS_CASES[@]}" user; do dirs+=("$root/mta-sts.sts-$c.test/.well-known"); done
    mkdir -p "${dirs[@]}"
    for c in "${STS_CASES[@]}"; do
        sts_body "$c"
        [[ -z $REPLY ]] || printf '%s' "$REPLY" > "$root/mta-sts.sts-$c.test/.well-known/mta-sts.txt"
    done
    sts_policy sts-user.test enforce mx.sts-user.test 86400
    printf '%s' "$REPLY" > "$root/mta-sts.sts-user.test/.well-known/mta-sts.txt"
}

# nginx_sts_vhosts: one server{} per case (and mta-sts.sts-user.test)
nginx_sts_vhosts() {
    local c vhost cert
    for c in "${STS_CASES[@]}" user; do
        vhost=mta-sts.sts-$c.test
        cert=sts-shared
        [[ $c == user ]] || { sts_cert "$c"; cert=$REPLY; }
        hd <<EOF

    server {
        listen 127.0.0.1:$HTTPS_PORT ssl;
        server_name $vhost;
        ssl_certificate     $W/certs/$cert.pem;
        ssl_certificate_key $W/certs/$cert.key;
        root $W/nginx/sts/$vhost;
EOF
        [[ $c == user ]] || sts_location "$c"
        echo "    }"
    done
}

###############################################################################
# knot
###############################################################################

start_knot() {
    {
        hd <<EOF
# Generated by world.sh -- serves the pre-signed zone files as they are.
server:
    rundir: "$W/knot/run"
    listen: 127.0.0.1@$DNS_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

log:
  - target: "$W/knot/knot.log"
    any: info

database:
    storage: "$W/knot/db"

control:
    listen: "$W/knot/run/knot.sock"

template:
  - id: default
    storage: "$W/zones"
    dnssec-signing: off
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none

zone:
EOF
        local z file
        for z in test "${ZONES[@]}"; do
            file="$z.zone.signed"
            [[ ${ZONE_MODE[$z]} != insecure ]] || file="$z.zone"
            printf '  - domain: %s.\n    file: "%s"\n' "$z" "$file"
        done
    } > "$W/knot.conf"

    knotd -c "$W/knot.conf" -s "$W/knot/run/knot.sock" \
        </dev/null >"$W/knot/knotd.out" 2>&1 &
    echo $! > "$W/run/knotd.pid"
}

# Every zone (test. + children) answers its SOA authoritatively, and
# dane.test MX is served.
knot_ready() {
    local out z args=() nl=$'\n' s='[[:space:]]+'
    # kdig multi-query syntax: NAME TYPE NAME TYPE ...
    for z in test "${ZONES[@]}"; do args+=("$z." SOA); done
    out=$nl$(kdig @127.0.0.1 -p "$DNS_PORT" +tcp +retry=0 +timeout=1 +dnssec \
             dane.test. MX "${args[@]}" 2>/dev/null) || return 1
    # answer lines: "NAME<ws>TTL<ws>IN<ws>TYPE<ws>RDATA"
    [[ $out =~ ${nl}dane\.test\.${s}[0-9]+${s}IN${s}MX${s}10\ mx1\.dane\.test\. ]] || return 1
    for z in test "${ZONES[@]}"; do
        [[ $out =~ ${nl}${z//./\\.}\.${s}[0-9]+${s}IN${s}SOA${s} ]] || return 1
    done
}

###############################################################################
# nginx
###############################################################################

make_docroot() {
    local www="$W/nginx/www" buf
    printf 'version: STSv1\r\nmode: enforce\r\nmx: mx.insecure.test\r\nmax_age: 86400\r\n' \
        > "$www/.well-known/mta-sts.txt"
    printf -v buf '%070000d' 0; printf '%s' "$buf" > "$www/big"     # 70000 x "0"
    printf -v buf '%064000d' 0; printf '%s' "$buf" > "$www/stall"   # 64000 x "0"
    printf '<html></html>' > "$www/html"
}

# nginx_vhost SERVER_NAME CERT_NAME [default_server]
# All vhosts serve the same docroot and test endpoints.
nginx_vhost() {
    hd <<EOF

    server {
        listen 127.0.0.1:$HTTPS_PORT ssl${3:+ $3};
        server_name $1;
        ssl_certificate     $W/certs/$2.pem;
        ssl_certificate_key $W/certs/$2.key;

        location = /redirect { return 301 /.well-known/mta-sts.txt; }
        # headers + ~700 body bytes at once, then 1 byte/s (64000-byte file)
        location = /stall    { limit_rate_after 1k; limit_rate 1; }
        location = /html     { default_type text/html; }
        location /           { }
    }
EOF
}

start_nginx() {
    local n="$W/nginx" user_line=""
    make_docroot
    # as root, workers would otherwise run as nobody and might not reach DIR
    ((EUID != 0)) || user_line="user root root;"
    {
        hd <<EOF
# Generated by world.sh
$user_line
worker_processes 1;
pid $n/nginx.pid;
error_log $n/error.log info;

events { worker_connections 256; }

http {
    # the vhost first, so a benchmark can count requests per vhost
    log_format world '\$host \$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent';
    access_log $n/access.log world;
    client_body_temp_path $n/tmp/client_body;
    proxy_temp_path       $n/tmp/proxy;
    fastcgi_temp_path     $n/tmp/fastcgi;
    uwsgi_temp_path       $n/tmp/uwsgi;
    scgi_temp_path        $n/tmp/scgi;

    types { }
    default_type text/plain;
    absolute_redirect off;
    server_tokens off;
    root $n/www;

    ssl_protocols TLSv1.2 TLSv1.3;
EOF
        nginx_vhost mta-sts.insecure.test   mta-sts.insecure.test default_server
        nginx_vhost mta-sts.wrongname.test  mta-sts.wrongname.test
        nginx_vhost mta-sts.expired.test    mta-sts.expired.test
        nginx_vhost mta-sts.selfsigned.test mta-sts.selfsigned.test
        nginx_sts_vhosts
        echo "}"
    } > "$n/nginx.conf"

    nginx -p "$n" -c "$n/nginx.conf" -e "$n/error.log" -g 'daemon off;' \
        </dev/null >"$n/nginx.out" 2>&1 &
    echo $! > "$W/run/nginx.pid"
}

nginx_ready() {
    local body
    body=$(curl -sS --max-time 1 --cacert "$W/ca.pem" \
        --connect-to "mta-sts.insecure.test:443:127.0.0.1:$HTTPS_PORT" \
        https://mta-sts.insecure.test/.well-known/mta-sts.txt 2>/dev/null) || return 1
    [[ $body == version:\ STSv1* ]]
}

###############################################################################
# wait / stop
###############################################################################

# alive PID: the process exists and is not a zombie (orphans are reaped late).
alive() {
    local stat
    read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# wait_ready NAME CHECK_FN LOGFILE...: poll CHECK_FN until it succeeds; fail
# (printing the logs) if the daemon dies or STARTUP_TIMEOUT expires.
wait_ready() {
    local name=$1 check=$2 pid deadline; shift 2
    read -r pid < "$W/run/$name.pid"
    us; deadline=$((REPLY + STARTUP_TIMEOUT * 1000000))
    until "$check"; do
        if ! alive "$pid"; then
            log "$name (pid $pid) died during startup"
            dump_logs "$@"; return 1
        fi
        us
        if ((REPLY > deadline)); then
            log "$name not ready after ${STARTUP_TIMEOUT}s"
            dump_logs "$@"; return 1
        fi
        nap 0.02
    done
}

dump_logs() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        echo "----- $f (last 40 lines) -----" >&2
        tail -n 40 "$f" >&2
    done
}

# stop_daemon DIR NAME: TERM the pid in DIR/run/NAME.pid (if it still is a
# NAME process) and wait until it and its children are gone; SIGKILL after
# STOP_TIMEOUT.
stop_daemon() {
    local dir=$1 name=$2 pidfile="$1/run/$2.pid" pid="" comm="" p left deadline sig=TERM
    [[ -f $pidfile ]] || return 0
    read -r pid < "$pidfile" || true
    [[ $pid =~ ^[0-9]+$ ]] && read -r comm 2>/dev/null < "/proc/$pid/comm" || comm=""
    if [[ $comm == "$name" ]] && alive "$pid"; then
        # nginx workers are children of the master: wait for them too
        local kids=() pids
        mapfile -t kids < <(ps -o pid= --ppid "$pid" 2>/dev/null || true)
        pids=("$pid" ${kids[@]+"${kids[@]// /}"})
        kill -TERM "$pid" 2>/dev/null || true
        us; deadline=$((REPLY + STOP_TIMEOUT * 1000000))
        while :; do
            left=()
            for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
            ((${#left[@]} == 0)) && break
            us
            if ((REPLY > deadline)); then
                if [[ $sig == KILL ]]; then
                    log "ERROR: $name (pids ${left[*]}) still alive after SIGKILL"
                    return 1
                fi
                log "$name did not exit after ${STOP_TIMEOUT}s, sending SIGKILL"
                kill -KILL "${left[@]}" 2>/dev/null || true
                sig=KILL
                deadline=$((REPLY + STOP_TIMEOUT * 1000000))
            fi
            nap 0.01
        done
    fi
    rm -f "$pidfile"
}

stop_world() {
    local dir=$1 rc=0
    [[ -d $dir/run ]] || return 0
    stop_daemon "$dir" nginx || rc=1
    stop_daemon "$dir" knotd || rc=1
    return $rc
}

###############################################################################
# commands
###############################################################################

abs_dir() {
    local d=$1
    [[ -n $d ]] || die "empty DIR"
    [[ $d == /* ]] || d="$PWD/$d"
    while [[ $d == */ && $d != / ]]; do d=${d%/}; done
    [[ $d != / ]] || die "refusing to use / as world DIR"
    REPLY=$d
}

on_start_exit() {
    local rc=$?
    trap - EXIT
    if ((rc != 0)); then
        log "start failed in phase '$PHASE' (exit $rc); stopping what was started"
        case $PHASE in
            certs|https-certs) dump_logs "$W/ca/openssl.log" ;;
            zone-*)            dump_logs "$W/zones/build.log" ;;
        esac
        stop_world "$W" || true
        # leftover helper jobs (openssl, ldns-*, python) if we were interrupted
        local jobs_left
        jobs_left=$(jobs -p)
        if [[ -n $jobs_left ]]; then
            # shellcheck disable=SC2086  # one pid per word
            kill $jobs_left 2>/dev/null || true
            wait 2>/dev/null || true
        fi
        log "start FAILED; everything is in $W"
    fi
    exit $rc
}

cmd_start() {
    abs_dir "$1"; W=$REPLY
    NOW=$EPOCHSECONDS

    # Never rm -rf a directory that is not (or was not) a world.
    if [[ -d $W ]]; then
        if [[ -e $W/.world ]]; then
            stop_world "$W" || die "could not stop the old world in $W"
        else
            local old; old=("$W"/* "$W"/.[!.]* "$W"/..?*)
            ((${#old[@]} == 0)) \
                || die "$W is not empty and not a world dir (no .world marker); refusing to wipe it"
        fi
        rm -rf "$W"
    fi
    mkdir -p "$W/run" "$W/ca/newcerts" "$W/certs" "$W/zones" \
        "$W/keys/ksk" "$W/keys/zsk" "$W/keys/unrelated" \
        "$W/knot/db" "$W/knot/run" "$W/nginx/tmp" "$W/nginx/www/.well-known"
    : > "$W/.world"
    trap on_start_exit EXIT
    trap 'exit 130' INT TERM HUP          # run on_start_exit on signals too

    step certs
    start_helper
    start_keygen
    make_dns_certs
    { make_https_certs; make_sts_docroots; } & CERTS_JOB=$!

    step zone-files
    make_zones

    step start-knot
    py ports
    read -r DNS_PORT HTTPS_PORT <<<"$REPLY"
    DNS_PORT=${WORLD_DNS_PORT:-$DNS_PORT}          # forced ports (e.g. 53/443
    HTTPS_PORT=${WORLD_HTTPS_PORT:-$HTTPS_PORT}    # in a private netns)
    [[ ${DNS_PORT:-} =~ ^[0-9]+$ && ${HTTPS_PORT:-} =~ ^[0-9]+$ ]] \
        || die "could not pick free ports"
    ((DNS_PORT != HTTPS_PORT)) || die "DNS and HTTPS port are both $DNS_PORT"
    stop_helper
    start_knot
    step https-certs
    wait "$CERTS_JOB" || die "certificate or MTA-STS docroot generation failed"
    step start-nginx
    start_nginx

    hd > "$W/unbound.conf" <<EOF
server:
    do-not-query-localhost: no
    local-zone: "test." nodefault
    trust-anchor-file: "$W/trust-anchor.ds"
    val-log-level: 2
stub-zone:
    name: "test."
    stub-addr: 127.0.0.1@$DNS_PORT
EOF
    hd > "$W/world.env" <<EOF
DNS_PORT=$DNS_PORT
HTTPS_PORT=$HTTPS_PORT
UNBOUND_CONF=$W/unbound.conf
CA_FILE=$W/ca.pem
TRUST_ANCHOR=$W/trust-anchor.ds
WORLD_DIR=$W
EOF

    step wait-knot
    wait_ready knotd knot_ready "$W/knot/knot.log" "$W/knot/knotd.out"
    step wait-nginx
    wait_ready nginx nginx_ready "$W/nginx/error.log" "$W/nginx/nginx.out"
    step ready

    trap - EXIT INT TERM HUP
    us; log "started in $(((REPLY - T0) / 1000)) ms: dns=127.0.0.1@$DNS_PORT https=127.0.0.1:$HTTPS_PORT dir=$W"
    printf '%s' "$(<"$W/world.env")"; echo
}

cmd_stop() {
    abs_dir "$1"
    [[ -d $REPLY ]] || return 0
    stop_world "$REPLY"
}

# running_world DIR: DIR holds a running world; sets W and loads world.env
running_world() {
    abs_dir "$1"; W=$REPLY
    [[ -e $W/.world && -f $W/world.env ]] || die "$W is not a started world"
    local pid comm=""
    read -r pid < "$W/run/knotd.pid" 2>/dev/null || die "$W: no knotd running"
    read -r comm 2>/dev/null < "/proc/$pid/comm" || true
    [[ $comm == knotd ]] || die "$W: knotd is not running"
    # shellcheck disable=SC1091
    . "$W/world.env"
}

# set-txt DIR NAME [TEXT...]: replace the TXT RRset at NAME with one record
# per TEXT (printable ASCII without '"' and '\'; split into 255-byte
# character-strings when longer), with the old TTL (WORLD_TXT_TTL=N sets
# another; 300 if there was no record); no TEXT deletes the RRset.  The unsigned zone file is rewritten
# (SOA serial + 1), re-signed when the zone is signed, and knot reloads it;
# returns once knot serves the new RRset.
cmd_set_txt() {
    running_world "$1"
    local name=${2%.} z="" mode="" cand=${2%.} line f i owner ttl="" lines=() out
    local LC_ALL=C                        # [:print:] = printable ASCII
    name=${name,,}
    shift 2
    # the zone: the longest suffix of NAME that is a world zone
    while [[ -n $cand ]]; do
        if [[ -f $W/zones/$cand.zone ]]; then z=$cand; break; fi
        [[ $cand == *.* ]] || break
        cand=${cand#*.}
    done
    [[ -n $z ]] || die "set-txt: $name is in no zone of the world"
    if [[ $z == test ]]; then mode=signed
    else
        while read -r f i; do [[ $f != "$z" ]] || mode=$i; done < "$W/zones/modes"
    fi
    case $mode in signed|insecure) ;;
        *) die "set-txt: zone $z has mode '$mode'; only signed and insecure zones can be changed" ;; esac

    # rewrite zones/Z.zone: drop the TXT RRset at NAME, bump the SOA serial
    while IFS= read -r line; do
        read -r -a f <<<"$line"
        if ((${#f[@]} >= 2)) && [[ ${f[0]} != \$* ]]; then
            owner=${f[0],,}
            case $owner in
                @)   owner=$z ;;
                *.)  owner=${owner%.} ;;
                *)   owner=$owner.$z ;;
            esac
            i=1
            [[ ${f[i]} =~ ^[0-9]+$ ]] && i=2
            [[ ${f[i]:-} == IN ]] && i=$((i + 1))
            if [[ ${f[i]:-} == TXT && $owner == "$name" ]]; then
                [[ ! ${f[1]} =~ ^[0-9]+$ ]] || ttl=${f[1]}   # keep its TTL
                continue
            fi
            if [[ ${f[i]:-} == SOA && $owner == "$z" ]]; then
                f[i + 3]=$((f[i + 3] + 1))
                line="${f[*]}"
            fi
        fi
        lines+=("$line")
    done < "$W/zones/$z.zone"
    local text rec
    for text in "$@"; do
        [[ -n $text && $text != *[\"\\]* && $text != *[![:print:]]* ]] \
            || die "set-txt: TEXT must be printable ASCII without '\"' and '\\': $text"
        rec="$name. ${WORLD_TXT_TTL:-${ttl:-$TTL}} TXT"
        while [[ -n $text ]]; do                   # character-strings <= 255
            rec+=" \"${text:0:255}\""
            text=${text:255}
        done
        lines+=("$rec")
    done
    printf '%s\n' "${lines[@]}" > "$W/zones/$z.zone"

    if [[ $mode == signed ]]; then
        local zsk ksk now=$EPOCHSECONDS
        only_file "$W/keys/zsk" 'K*.private'; zsk=${REPLY%.private}
        only_file "$W/keys/ksk" 'K*.private'; ksk=${REPLY%.private}
        ldns-signzone -o "$z." -i $((now - 86400)) -e $((now + 30 * 86400)) \
            -f "$W/zones/$z.zone.signed" "$W/zones/$z.zone" "$zsk" "$ksk" >/dev/null \
            || die "set-txt: ldns-signzone $z failed"
    fi
    knotc -s "$W/knot/run/knot.sock" -b zone-reload "$z." >/dev/null \
        || die "set-txt: knotc zone-reload $z. failed (see $W/knot/knot.log)"

    # wait until knot serves exactly the new RRset
    local want=("$@") got=() deadline
    us; deadline=$((REPLY + 5000000))
    while :; do
        out=$(kdig @127.0.0.1 -p "$DNS_PORT" +tcp +retry=0 +timeout=1 +short TXT "$name." 2>/dev/null) || out="?"
        got=()
        while IFS= read -r line; do
            [[ -z $line ]] && continue
            line=${line//\" \"/}              # kdig prints pieces as "a" "b"
            line=${line#\"}; line=${line%\"}
            got+=("$line")
        done <<<"$out"
        if [[ $out != "?" ]] && ((${#got[@]} == ${#want[@]})); then
            local ok=1 w g hit
            for w in "${want[@]}"; do
                hit=0
                for g in "${got[@]}"; do [[ $g != "$w" ]] || hit=1; done
                ((hit)) || ok=0
            done
            ((ok)) && break
        fi
        us
        ((REPLY < deadline)) || die "set-txt: knot does not serve the new TXT at $name (got: ${out:-nothing})"
        nap 0.02
    done
    log "set-txt: $name TXT now ${*:-(deleted)} (zone $z, $mode)"
}

# set-file DIR VHOST FILE: serve FILE ("-": stdin) as VHOST's
# /.well-known/mta-sts.txt (an sts-* vhost, e.g. mta-sts.sts-changing.test);
# the file is replaced atomically, nginx serves it on the next request.
cmd_set_file() {
    running_world "$1"
    local dir="$W/nginx/sts/$2/.well-known"
    [[ $2 != */* && -d $dir ]] || die "set-file: $2 is not an sts vhost of this world"
    if [[ $3 == - ]]; then
        cat > "$dir/.mta-sts.txt.new"
    else
        cp -- "$3" "$dir/.mta-sts.txt.new" || die "set-file: cannot read $3"
    fi
    chmod 644 "$dir/.mta-sts.txt.new"
    mv -f -- "$dir/.mta-sts.txt.new" "$dir/mta-sts.txt"
}

usage() {
    echo "usage: $SELF start|stop DIR" >&2
    echo "       $SELF set-txt DIR NAME [TEXT...]" >&2
    echo "       $SELF set-file DIR VHOST FILE|-" >&2
    exit 2
}

main() {
    (($# >= 2)) || usage
    case $1 in
        start)    (($# == 2)) || usage; cmd_start "$2" ;;
        stop)     (($# == 2)) || usage; cmd_stop "$2" ;;
        set-txt)  (($# >= 3)) || usage; shift; cmd_set_txt "$@" ;;
        set-file) (($# == 4)) || usage; shift; cmd_set_file "$@" ;;
        *)        usage ;;
    esac
}

main "$@"
