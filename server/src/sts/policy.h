// The MTA-STS policy body (RFC 8461 §3.2; SPEC C1–C10 with the project's
// Decisions) and `mx` pattern matching (RFC 8461 §4.1; SPEC E2). Pure logic.
#ifndef MXPOLICY_STS_POLICY_H_
#define MXPOLICY_STS_POLICY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mxpolicy::sts {

enum class Mode { kEnforce, kTesting, kNone };

absl::string_view ModeName(Mode mode);

// RFC 8461 §3.2: max_age is at most 31557600 s (about a year).
inline constexpr int64_t kMaxAgeLimitSeconds = 31557600;

struct Policy {
  Mode mode = Mode::kNone;
  // Lowercase LDH host names or "*." + LDH name, no trailing dot. Every
  // pattern passed the strict grammar: no byte outside [a-z0-9.*-] can come
  // from a policy into a reply built from these (policy-injection defence).
  std::vector<std::string> mx;
  absl::Duration max_age;
  // True when max_age was above kMaxAgeLimitSeconds and clamped (SPEC C7).
  bool max_age_clamped = false;
  // The recognised lines, rebuilt from validated values ("version: STSv1",
  // "mode: enforce", "mx: …", "max_age: …") in body order, for TLSRPT's
  // policy-string (SPEC C10). Extension lines are left out: they are not
  // validated for reply safety.
  std::vector<std::string> lines;
};

// Parses a policy body. Decisions (SPEC "Decisions" C9): a UTF-8 BOM is
// stripped; LF and CRLF end lines; blank (empty or all-WSP) lines are
// ignored; trailing WSP and a missing final line end are accepted; a CR not
// followed by LF makes the policy invalid. version/mode/max_age: the first
// occurrence wins (C6). max_age above the limit is clamped (C7). mx values
// must be A-label LDH names or "*." + one; a single trailing dot is stripped
// (J2); a U-label makes the policy invalid (C4/J1). Unknown keys are
// extensions and ignored if well-formed (C5). INVALID_ARGUMENT names the
// first problem and its line number.
absl::StatusOr<Policy> ParsePolicy(absl::string_view body);

// True when `host` (an MX host name, any case, optional trailing dot)
// matches `pattern` (as in Policy::mx): an exact name, or "*." + suffix
// matching exactly one more left-most label (SPEC E2, RFC 8461 §4.1).
bool MatchesPattern(absl::string_view pattern, absl::string_view host);

// True when any pattern matches `host`.
bool MatchesAnyPattern(const std::vector<std::string>& patterns,
                       absl::string_view host);

}  // namespace mxpolicy::sts

#endif  // MXPOLICY_STS_POLICY_H_
