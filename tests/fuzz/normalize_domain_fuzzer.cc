// Fuzzes NormalizeDomain (SPEC J1–J3, I1; DESIGN "The decision"), IDNA2008
// included. Invariants of an OK result: non-empty, ≤ 253 bytes, a lowercase
// LDH host name, idempotent (NormalizeDomain(r) == r). Errors are always
// INVALID_ARGUMENT. An input holding a NUL byte is never accepted: NUL is
// not LDH and not a valid IDNA code point, so no name can contain it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/src/common/domain.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<std::string> got = mxpolicy::NormalizeDomain(input);
  if (!got.ok()) {
    FUZZ_CHECK(got.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(!got->empty());
  FUZZ_CHECK(got->size() <= mxpolicy::kMaxDomainLength);
  FUZZ_CHECK(mxpolicy::IsLdhHostname(*got));
  for (char c : *got) {
    FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.');
  }
  FUZZ_CHECK(input.find('\0') == absl::string_view::npos);
  const absl::StatusOr<std::string> again = mxpolicy::NormalizeDomain(*got);
  FUZZ_CHECK(again.ok() && *again == *got);
  return 0;
}
