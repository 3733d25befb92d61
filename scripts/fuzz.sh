#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) and runs
# each for SECONDS on a scratch copy of its seed corpus, one after another.
#   scripts/fuzz.sh [SECONDS=20] [BUILD_DIR=build-fuzz]
# BUILD_DIR is relative to the repository root unless absolute. Prints one
# line per target (execs, cov:, ft:, corpus size); exits 1 when a target
# crashed or broke an invariant (the line names the saved input under
# BUILD_DIR/artifacts/), 2 when the build failed. The committed corpus is
# never written to; everything started here stops by itself.
set -euo pipefail

SECONDS_PER_TARGET=${1:-20}
BUILD_DIR=${2:-build-fuzz}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS] [BUILD_DIR]" >&2
  exit 2
fi

# name:max_len. Policy bodies go past the 64 KiB cap (SPEC B8, J8); TXT
# RRsets and DNS answers stay small; NormalizeDomain refuses > 1012 bytes.
TARGETS=(
  sts_txt:4096
  tlsrpt:4096
  policy:70000
  matches_pattern:600
  normalize_domain:1200
  unbound_result:4096
  l2_codec:70000
)

RUN=$(mktemp -d /tmp/mxpolicy-fuzz.XXXXXX)
child=
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  if [ -n "$child" ]; then
    kill "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build (always -j1: small shared machine) ----
mkdir -p "$BUILD_DIR"
echo "fuzz: building $BUILD_DIR (-j1)"
if ! CC=clang CXX=clang++ cmake -S "$ROOT/tests/fuzz" -B "$BUILD_DIR" \
       >"$RUN/build.log" 2>&1 ||
   ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL cmake --build "$BUILD_DIR" -j 1 \
       >>"$RUN/build.log" 2>&1; then
  tail -n 40 "$RUN/build.log" >&2
  echo "fuzz: build failed" >&2
  exit 2
fi

# ---- run ----
ARTIFACTS="$BUILD_DIR/artifacts"
mkdir -p "$ARTIFACTS"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for entry in "${TARGETS[@]}"; do
  name=${entry%%:*}
  max_len=${entry#*:}
  corpus="$RUN/corpus-$name"
  log="$RUN/$name.log"
  cp -r "$ROOT/tests/fuzz/corpus/$name" "$corpus"
  # libFuzzer stops after -max_total_time; `timeout` is only the backstop
  # for a hang inside one input (which -timeout reports first).
  rc=0
  timeout -k 10 $((SECONDS_PER_TARGET + 120)) \
    "$BUILD_DIR/${name}_fuzzer" -max_total_time="$SECONDS_PER_TARGET" \
    -max_len="$max_len" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$name-" "$corpus" >"$log" 2>&1 &
  child=$!
  wait "$child" || rc=$?
  child=

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  stats="execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?}"
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz %-17s ok     %s (%ss)\n' "$name" "$stats" "$SECONDS_PER_TARGET"
    continue
  fi
  failed=1
  cp "$log" "$ARTIFACTS/$name.log"
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  why=$(grep -m1 -E 'FUZZ_CHECK failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" || echo "exit code $rc")
  printf 'fuzz %-17s FAILED %s: %s\n' "$name" "$stats" "$why"
  printf '     input: %s\n     log:   %s\n' "${input:-(none saved)}" "$ARTIFACTS/$name.log"
  printf '     replay: %s %s\n' "$BUILD_DIR/${name}_fuzzer" "${input:-}"
done
echo "fuzz: ${#TARGETS[@]} targets, $([ "$failed" -eq 0 ] && echo "no failure" || echo FAILED), ${SECONDS}s in all"
exit "$failed"
