#!/usr/bin/env bash
# Installs the Debian 12 packages mxpolicy needs to build, run and test —
# only those missing, and says which. Idempotent; works as root, uses sudo
# otherwise. Daemons that Debian would start on install (nginx on :80,
# knot on :53) are kept from starting: the tests run their own instances.
set -euo pipefail

PACKAGES=(
  # build
  cmake g++ make pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libunbound-dev libcurl4-openssl-dev libssl-dev libidn2-dev
  libgtest-dev libgmock-dev
  # metrics endpoint
  libcivetweb-dev
  # fuzzing (libFuzzer, ASan, UBSan)
  clang libclang-rt-14-dev
  # run: the DNSSEC root trust anchor and the system CA store
  dns-root-data ca-certificates
  # test world: knot + signed zones, nginx + test CA
  knot knot-dnsutils ldnsutils nginx-light openssl curl python3
  python3-cryptography python3-yaml
  # conformance: Postfix's posttls-finger, a validating unbound on :53 in a
  # private network namespace
  postfix unbound iproute2 postfix-mta-sts-resolver
  # L2 shared tier: hiredis, and redis-server for its tests (the tests run
  # their own instance; the system one is kept from starting)
  libhiredis-dev redis-server
)

missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
echo "deps: installing ${missing[*]}"
# Keep postinst scripts from starting system daemons (restored afterwards).
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  added_policy=1
fi
cleanup() { if [ "$added_policy" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${SUDO[@]}" apt-get update -qq
# Postfix asks how it is used; it runs no daemon here (posttls-finger only).
echo "postfix postfix/main_mailer_type select No configuration" |
  "${SUDO[@]}" debconf-set-selections
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" -E apt-get install -y -qq \
  --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} package(s)"
