// Fuzzes ParsePolicy (RFC 8461 §3.2; SPEC C1–C10, J2, J8) on a raw policy
// body. Beyond memory safety it asserts what the rest of the service relies
// on:
//  - policy-injection defence (SPEC Decisions): every `mx` pattern and every
//    rebuilt line holds only [a-z0-9.*-] after the fixed "key: " prefix, so
//    no space, '=', '{', '}', ',', ':' or control byte reaches a reply;
//  - patterns are LDH names or "*." + one (C4), lines are the recognised
//    fields once each plus every mx, in body order (C6, C10);
//  - 0 ≤ max_age ≤ 31557600 s and the clamp flag tells the truth (C7);
//  - mode none or at least one mx (C3); a lone CR or a NUL is never accepted
//    (C1, J8).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "server/src/sts/policy.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using mxpolicy::sts::Mode;
using mxpolicy::sts::Policy;

bool IsSafeByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '*' || c == '-';
}

bool IsSafe(absl::string_view s) {
  for (char c : s) {
    if (!IsSafeByte(c)) return false;
  }
  return true;
}

// "*." + name or name; labels non-empty, ≤ 63, no '*' inside, not starting
// or ending with '-'. Written independently of the product's IsLdhHostname.
bool IsPatternShape(absl::string_view p) {
  if (!IsSafe(p) || p.empty() || p.size() > 255) return false;
  if (p.substr(0, 2) == "*.") p.remove_prefix(2);
  size_t start = 0;
  while (true) {
    const size_t dot = p.find('.', start);
    const absl::string_view label =
        p.substr(start, dot == absl::string_view::npos ? p.npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.find('*') != label.npos) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == absl::string_view::npos) return true;
    start = dot + 1;
  }
}

void CheckPolicy(const Policy& policy) {
  // C3: mode none or at least one mx.
  FUZZ_CHECK(policy.mode == Mode::kNone || !policy.mx.empty());
  // C7.
  FUZZ_CHECK(policy.max_age >= absl::ZeroDuration());
  FUZZ_CHECK(policy.max_age <=
             absl::Seconds(mxpolicy::sts::kMaxAgeLimitSeconds));
  for (const std::string& p : policy.mx) {
    FUZZ_CHECK(IsPatternShape(p));
    // A pattern matches its own name in any case (E2, J3).
    if (!absl::StartsWith(p, "*.")) {
      FUZZ_CHECK(mxpolicy::sts::MatchesPattern(p, p));
      FUZZ_CHECK(mxpolicy::sts::MatchesPattern(p, absl::AsciiStrToUpper(p)));
    } else {
      FUZZ_CHECK(mxpolicy::sts::MatchesPattern(p, "x" + p.substr(1)));
      FUZZ_CHECK(!mxpolicy::sts::MatchesPattern(p, p.substr(2)));
    }
  }
  // C10: the rebuilt lines, each recognised field once, every mx in order.
  FUZZ_CHECK(policy.lines.size() == 3 + policy.mx.size());
  int versions = 0, modes = 0, max_ages = 0;
  size_t next_mx = 0;
  for (const std::string& line : policy.lines) {
    absl::string_view v = line;
    if (line == "version: STSv1") {  // the one fixed form with capitals
      ++versions;
      v = absl::string_view();
    } else if (absl::ConsumePrefix(&v, "mode: ")) {
      ++modes;
      FUZZ_CHECK(v == mxpolicy::sts::ModeName(policy.mode));
    } else if (absl::ConsumePrefix(&v, "max_age: ")) {
      ++max_ages;
      FUZZ_CHECK(!v.empty() && v.size() <= 10);
      for (char c : v) FUZZ_CHECK(c >= '0' && c <= '9');
      int64_t seconds = 0;
      FUZZ_CHECK(absl::SimpleAtoi(v, &seconds));
      const bool over = seconds > mxpolicy::sts::kMaxAgeLimitSeconds;
      FUZZ_CHECK(policy.max_age_clamped == over);
      FUZZ_CHECK(policy.max_age ==
                 absl::Seconds(over ? mxpolicy::sts::kMaxAgeLimitSeconds
                                    : seconds));
    } else {
      FUZZ_CHECK(absl::ConsumePrefix(&v, "mx: "));
      FUZZ_CHECK(next_mx < policy.mx.size() && v == policy.mx[next_mx]);
      ++next_mx;
    }
    FUZZ_CHECK(IsSafe(v));  // injection defence, after the fixed prefix
  }
  FUZZ_CHECK(versions == 1 && modes == 1 && max_ages == 1);
  FUZZ_CHECK(next_mx == policy.mx.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<Policy> policy = mxpolicy::sts::ParsePolicy(body);
  if (!policy.ok()) {
    FUZZ_CHECK(policy.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  CheckPolicy(*policy);
  // C1 / J8: a CR not followed by LF, or a NUL, makes the policy invalid.
  for (size_t i = 0; i < body.size(); ++i) {
    FUZZ_CHECK(body[i] != '\0');
    if (body[i] == '\r') FUZZ_CHECK(i + 1 < body.size() && body[i + 1] == '\n');
  }
  return 0;
}
