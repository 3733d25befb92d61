// Token rules shared by the RFC 8461 TXT record, the policy body and the
// RFC 8460 TLSRPT record (internal to sts/).
#ifndef MXPOLICY_STS_GRAMMAR_H_
#define MXPOLICY_STS_GRAMMAR_H_

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace mxpolicy::sts {

// WSP = SP / HTAB (RFC 5234).
inline bool IsWsp(char c) { return c == ' ' || c == '\t'; }

// Extension / field names: (ALPHA / DIGIT) 0*31(ALPHA / DIGIT / "_" / "-" /
// ".") — RFC 8461 §3.1 sts-ext-name, §3.2 sts-policy-ext-name, RFC 8460 §3.
inline bool IsExtensionName(absl::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace mxpolicy::sts

#endif  // MXPOLICY_STS_GRAMMAR_H_
