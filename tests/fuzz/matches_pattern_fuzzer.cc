// Fuzzes MatchesPattern (SPEC E2, J2, J3) with patterns that a policy
// accepted. Input: "<mx value>\n<host>"; the mx value goes into an otherwise
// valid policy body, so only patterns ParsePolicy lets through are matched.
// Invariants, for a host h without a trailing dot (a host that already has
// its one optional trailing dot is outside the contract when another is
// appended):
//   MatchesPattern(p, h) == MatchesPattern(p, uppercase(h))
//                        == MatchesPattern(p, h + ".")
//                        == MatchesAnyPattern({p}, h),
// and a match means the lowercased host is the pattern, or one non-empty
// label + "." + the wildcard's suffix.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/src/sts/policy.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  if (nl == absl::string_view::npos) return 0;
  const absl::string_view value = input.substr(0, nl);
  const std::string host(input.substr(nl + 1));

  const absl::StatusOr<mxpolicy::sts::Policy> policy =
      mxpolicy::sts::ParsePolicy(absl::StrCat(
          "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: ", value, "\n"));
  if (!policy.ok()) return 0;
  FUZZ_CHECK(policy->mx.size() == 1);
  const std::string& p = policy->mx.front();

  const bool m = mxpolicy::sts::MatchesPattern(p, host);
  FUZZ_CHECK(m == mxpolicy::sts::MatchesPattern(p, absl::AsciiStrToUpper(host)));
  FUZZ_CHECK(m == mxpolicy::sts::MatchesAnyPattern(policy->mx, host));
  if (!absl::EndsWith(host, ".")) {
    FUZZ_CHECK(m == mxpolicy::sts::MatchesPattern(p, host + "."));
  }
  if (m) {
    std::string h = absl::AsciiStrToLower(host);
    if (absl::EndsWith(h, ".")) h.pop_back();
    if (absl::StartsWith(p, "*.")) {
      const absl::string_view suffix = absl::string_view(p).substr(1);  // ".x"
      FUZZ_CHECK(h.size() > suffix.size() && absl::EndsWith(h, suffix));
      const absl::string_view label(h.data(), h.size() - suffix.size());
      FUZZ_CHECK(!label.empty() && label.find('.') == label.npos);
    } else {
      FUZZ_CHECK(h == p);
    }
  }
  return 0;
}
