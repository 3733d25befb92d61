#include "server/src/sts/policy.h"

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/src/common/domain.h"
#include "server/src/sts/grammar.h"

namespace mxpolicy::sts {
namespace {

absl::Status Invalid(size_t line, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("MTA-STS policy line ", line, ": ", why));
}

// Extension value (SPEC C5): printable ASCII or UTF-8 non-control, inner
// spaces allowed. Leading/trailing WSP are already stripped.
bool IsExtensionValue(absl::string_view value) {
  if (value.empty()) return false;
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7F) return false;
  }
  return true;
}

// An mx value: "*." + LDH name, or an LDH name; lowercased; a single
// trailing dot stripped (J2). nullopt when invalid.
std::optional<std::string> ParsePattern(absl::string_view value) {
  for (unsigned char c : value) {
    if (c >= 0x80) return std::nullopt;  // U-label: C4/J1
  }
  std::string p = absl::AsciiStrToLower(value);
  if (absl::EndsWith(p, ".")) p.pop_back();
  absl::string_view name = p;
  absl::ConsumePrefix(&name, "*.");
  if (!IsLdhHostname(name)) return std::nullopt;
  return p;
}

}  // namespace

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kEnforce:
      return "enforce";
    case Mode::kTesting:
      return "testing";
    case Mode::kNone:
      return "none";
  }
  return "?";
}

absl::StatusOr<Policy> ParsePolicy(absl::string_view body) {
  absl::ConsumePrefix(&body, "\xEF\xBB\xBF");  // C9: BOM
  if (!IsValidUtf8(body)) {
    return absl::InvalidArgumentError("MTA-STS policy is not valid UTF-8");
  }
  Policy policy;
  std::optional<std::string> version;
  std::optional<Mode> mode;
  std::optional<int64_t> max_age;
  size_t number = 0;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    ++number;
    // CRLF: strip the CR only where an LF follows; a final lone CR is a
    // CR-only line end (C1).
    if (line.data() + line.size() != body.data() + body.size()) {
      absl::ConsumeSuffix(&line, "\r");
    }
    if (line.find('\r') != absl::string_view::npos) {
      return Invalid(number, "CR without LF");  // C1
    }
    if (line.find('\0') != absl::string_view::npos) {
      return Invalid(number, "NUL byte");
    }
    // Trailing WSP is allowed (C1); blank lines are ignored (C9).
    while (!line.empty() && IsWsp(line.back())) line.remove_suffix(1);
    if (line.empty() || absl::StripLeadingAsciiWhitespace(line).empty()) {
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) return Invalid(number, "no ':'");
    const absl::string_view key = line.substr(0, colon);
    absl::string_view value = line.substr(colon + 1);
    while (!value.empty() && IsWsp(value.front())) value.remove_prefix(1);
    if (!IsExtensionName(key)) {
      return Invalid(number, "malformed field name");  // incl. WSP before ':'
    }
    if (key == "version") {
      if (value != "STSv1") return Invalid(number, "version must be STSv1");
      if (!version) {
        version = std::string(value);
        policy.lines.push_back("version: STSv1");
      }
    } else if (key == "mode") {
      Mode m;
      if (value == "enforce") {
        m = Mode::kEnforce;
      } else if (value == "testing") {
        m = Mode::kTesting;
      } else if (value == "none") {
        m = Mode::kNone;
      } else {
        return Invalid(number, "mode must be enforce, testing or none");
      }
      if (!mode) {
        mode = m;
        policy.lines.push_back(absl::StrCat("mode: ", ModeName(m)));
      }
    } else if (key == "max_age") {
      int64_t seconds = 0;
      if (value.empty() || value.size() > 10 ||
          !std::all_of(value.begin(), value.end(),
                       [](char c) { return absl::ascii_isdigit(c); }) ||
          !absl::SimpleAtoi(value, &seconds)) {
        return Invalid(number, "max_age must be 1 to 10 digits");
      }
      if (!max_age) {
        max_age = seconds;
        policy.lines.push_back(absl::StrCat("max_age: ", value));
      }
    } else if (key == "mx") {
      std::optional<std::string> pattern = ParsePattern(value);
      if (!pattern) {
        return Invalid(number,
                       "mx must be an A-label host name or *. plus one");
      }
      policy.lines.push_back(absl::StrCat("mx: ", *pattern));
      policy.mx.push_back(*std::move(pattern));
    } else if (!IsExtensionValue(value)) {
      return Invalid(number, "malformed extension value");
    }
  }
  if (!version) return absl::InvalidArgumentError("MTA-STS policy: no version");
  if (!mode) return absl::InvalidArgumentError("MTA-STS policy: no mode");
  if (!max_age) return absl::InvalidArgumentError("MTA-STS policy: no max_age");
  if (*mode != Mode::kNone && policy.mx.empty()) {
    return absl::InvalidArgumentError(
        "MTA-STS policy: no mx although mode is not none");
  }
  policy.mode = *mode;
  policy.max_age_clamped = *max_age > kMaxAgeLimitSeconds;
  policy.max_age = absl::Seconds(std::min(*max_age, kMaxAgeLimitSeconds));
  return policy;
}

bool MatchesPattern(absl::string_view pattern, absl::string_view host) {
  std::string h = absl::AsciiStrToLower(host);
  if (absl::EndsWith(h, ".")) h.pop_back();
  absl::string_view suffix = pattern;
  if (!absl::ConsumePrefix(&suffix, "*.")) return h == pattern;
  // "*.example.com": exactly one non-empty label before ".example.com".
  const size_t dot = h.find('.');
  return dot != std::string::npos && dot > 0 &&
         absl::string_view(h).substr(dot + 1) == suffix;
}

bool MatchesAnyPattern(const std::vector<std::string>& patterns,
                       absl::string_view host) {
  for (const std::string& p : patterns) {
    if (MatchesPattern(p, host)) return true;
  }
  return false;
}

}  // namespace mxpolicy::sts
