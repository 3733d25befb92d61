// Plain value types for DNS data shared by the DNS adapter (which produces
// them) and the pure RFC logic in dane/ and sts/ (which consumes them). No I/O
// and no library headers beyond the standard library and Abseil.
#ifndef MXPOLICY_COMMON_DNS_RECORDS_H_
#define MXPOLICY_COMMON_DNS_RECORDS_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

namespace mxpolicy {

// DNSSEC validation outcome of one answer (RFC 4035 §4.3). "Indeterminate"
// covers answers that could not be obtained at all (SERVFAIL, timeout).
enum class DnssecState { kSecure, kInsecure, kBogus, kIndeterminate };

absl::string_view DnssecStateName(DnssecState state);

// DNS record types the service looks up.
enum class RrType : uint16_t {
  kA = 1,
  kCname = 5,
  kMx = 15,
  kTxt = 16,
  kAaaa = 28,
  kTlsa = 52,
};

absl::string_view RrTypeName(RrType type);

struct MxRecord {
  uint16_t preference = 0;
  // Lowercase, no trailing dot; "" for the root name (null MX, RFC 7505).
  std::string exchange;
};

// One TXT record: its character-strings kept apart (RFC 1035 §3.3.14).
struct TxtRecord {
  std::vector<std::string> strings;
  // The strings joined with nothing between them (RFC 8461 §3.1).
  std::string Joined() const;
};

struct TlsaRecord {
  uint8_t usage = 0;
  uint8_t selector = 0;
  uint8_t matching_type = 0;
  std::string data;  // binary association data
  bool operator==(const TlsaRecord&) const = default;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_COMMON_DNS_RECORDS_H_
