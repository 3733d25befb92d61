// Recipient-domain normalisation: the one gate every domain passes before
// the service looks anything up (DESIGN.md "The decision", SPEC J1–J3, I1).
#ifndef MXPOLICY_COMMON_DOMAIN_H_
#define MXPOLICY_COMMON_DOMAIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxpolicy {

// Maximum length of a domain name in presentation form without the trailing
// dot (RFC 1035 §2.3.4: 255 octets on the wire).
inline constexpr size_t kMaxDomainLength = 253;
inline constexpr size_t kMaxLabelLength = 63;

// Turns a recipient domain (UTF-8 or A-label, any case, one optional
// trailing dot) into a lowercase A-label without trailing dot, using IDNA2008
// with UTS #46 non-transitional mapping.
//
// Returns INVALID_ARGUMENT, with a message that names the problem and quotes
// the (escaped, truncated) input, for: an empty name; invalid UTF-8; a
// leading dot (Postfix parent-domain keys); "[host]" or "[host]:port"
// next-hops and anything with ':' (IPv6, ports); IPv4 literals and other
// all-numeric top-level labels; an empty label; a label over 63 octets or a
// name over 253 octets; a label that is not LDH (letters, digits, inner
// hyphens); a name IDNA rejects (e.g. bad punycode). Thread-safe.
absl::StatusOr<std::string> NormalizeDomain(absl::string_view input);

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or
// values beyond U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// True when `name` is a lowercase LDH host name (labels of letters, digits
// and inner hyphens, 1–63 octets each, ≤ 253 in total, no trailing dot).
bool IsLdhHostname(absl::string_view name);

}  // namespace mxpolicy

#endif  // MXPOLICY_COMMON_DOMAIN_H_
