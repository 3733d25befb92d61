#include "client/postfix/policy_reply.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/src/common/domain.h"

namespace mxpolicy::postfix {
namespace {

constexpr size_t kMaxReasonBytes = 200;

// An MTA-STS `mx` pattern as it may appear in a reply: an LDH host name,
// optionally behind one "*." (RFC 8461 §4.1).
bool SafePattern(absl::string_view pattern) {
  absl::ConsumePrefix(&pattern, "*.");
  return IsLdhHostname(pattern);
}

// A policy line inside "{ policy_string = … }": printable ASCII, no braces
// (which would end the attribute), no leading or trailing space.
bool SafePolicyLine(absl::string_view line) {
  if (line.empty() || line.front() == ' ' || line.back() == ' ') return false;
  for (char c : line) {
    if (c < 0x20 || c > 0x7e || c == '{' || c == '}') return false;
  }
  return true;
}

// "OK secure match=…" for an MTA-STS policy, or TEMP when the service's
// answer is not safe to pass on or too large.
std::string SecureReply(const v1::ResolveResponse& r,
                        const ReplyOptions& options) {
  const v1::StsPolicy& policy = r.sts_policy();
  if (!IsLdhHostname(r.domain()) || policy.mx_patterns().empty()) {
    return TempReply("mxpolicy: unusable MTA-STS answer from the service");
  }
  for (const std::string& p : policy.mx_patterns()) {
    if (!SafePattern(p)) {
      return TempReply("mxpolicy: unsafe MTA-STS mx pattern from the service");
    }
  }
  // SPEC I3: "*.suffix" becomes ".suffix" in the match list.
  std::string reply = "OK secure match=";
  for (int i = 0; i < policy.mx_patterns_size(); ++i) {
    absl::string_view p = policy.mx_patterns(i);
    if (i > 0) reply += ':';
    absl::ConsumePrefix(&p, "*");  // "*.suffix" → ".suffix"
    absl::StrAppend(&reply, p);
  }
  if (options.version.AtLeast(3, 4)) reply += " servername=hostname";
  if (!options.version.AtLeast(3, 10)) return reply;

  absl::StrAppend(&reply, " policy_type=sts policy_domain=", r.domain());
  if (options.version.AtLeast(3, 10, 5)) {
    for (const std::string& p : policy.mx_patterns()) {
      absl::StrAppend(&reply, " mx_host_pattern=", p);
    }
  }
  // The policy lines are only for TLSRPT reports: dropped first when one is
  // unsafe or the reply would grow too large (SPEC I6).
  std::string lines;
  bool lines_ok = true;
  for (const std::string& line : policy.raw_lines()) {
    if (!SafePolicyLine(line)) {
      lines_ok = false;
      break;
    }
    absl::StrAppend(&lines, " { policy_string = ", line, " }");
  }
  if (lines_ok && reply.size() + lines.size() < options.max_reply_bytes) {
    reply += lines;
  }
  if (reply.size() >= options.max_reply_bytes) {
    return TempReply("mxpolicy: MTA-STS policy too large for a socketmap reply");
  }
  return reply;
}

}  // namespace

bool PostfixVersion::AtLeast(int ma, int mi, int pa) const {
  if (major != ma) return major > ma;
  if (minor != mi) return minor > mi;
  return patch >= pa;
}

absl::StatusOr<PostfixVersion> ParsePostfixVersion(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  PostfixVersion v;
  int* fields[] = {&v.major, &v.minor, &v.patch};
  bool ok = parts.size() >= 2 && parts.size() <= 3;
  for (size_t i = 0; ok && i < parts.size(); ++i) {
    ok = !parts[i].empty() && parts[i].size() <= 4 &&
         absl::SimpleAtoi(parts[i], fields[i]) && *fields[i] >= 0;
  }
  if (!ok || v.major < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad Postfix version \"", absl::CEscape(text.substr(0, 20)),
        "\" (want e.g. 3.7 or 3.10.5)"));
  }
  return v;
}

absl::StatusOr<Request> ParseRequest(absl::string_view payload) {
  const size_t space = payload.find(' ');
  if (space == absl::string_view::npos || space == 0 ||
      space + 1 == payload.size()) {
    return absl::InvalidArgumentError(
        "request is not \"<mapname> <key>\"");
  }
  return Request{std::string(payload.substr(0, space)),
                 std::string(payload.substr(space + 1))};
}

std::optional<std::string> DomainForKey(absl::string_view key) {
  // NormalizeDomain refuses exactly the keys SPEC I1 answers NOTFOUND for:
  // a leading dot, brackets, ':' (ports, IPv6), IP literals, non-LDH names.
  absl::StatusOr<std::string> domain = NormalizeDomain(key);
  if (!domain.ok()) return std::nullopt;
  return *std::move(domain);
}

std::string PolicyReply(const v1::ResolveResponse& response,
                        const ReplyOptions& options) {
  switch (response.decision()) {
    case v1::DECISION_DANE_REQUIRED:
      return "OK dane-only";
    case v1::DECISION_DANE:
      return "OK dane";
    case v1::DECISION_STS_ENFORCE:
      if (response.sts_policy().mode() != v1::STS_MODE_ENFORCE) break;
      return SecureReply(response, options);
    case v1::DECISION_STS_TESTING:
      if (!options.testing_as_enforce) return std::string(kNotFound);
      return SecureReply(response, options);
    case v1::DECISION_NONE:
    case v1::DECISION_NO_MAIL:  // Postfix bounces by itself
      return std::string(kNotFound);
    case v1::DECISION_TEMPFAIL:
      return TempReply(absl::StrCat("mxpolicy: ", response.reason()));
    default:
      break;
  }
  return TempReply("mxpolicy: unexpected answer from the service");
}

std::string TempReply(absl::string_view reason) {
  std::string out = "TEMP ";
  for (char c : reason.substr(0, kMaxReasonBytes)) {
    out += (c >= 0x20 && c <= 0x7e) ? c : '?';
  }
  return out;
}

}  // namespace mxpolicy::postfix
