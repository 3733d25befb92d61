// Plain value types for DNS data shared by the DNS adapter (which produces
// them) and the pure RFC logic in dane/ and sts/ (which consumes them). No I/O
// and no library headers beyond the standard library and Abseil.
#ifndef MXPOLICY_COMMON_DNS_RECORDS_H_
#define MXPOLICY_COMMON_DNS_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

// What the lookup found, after DNSSEC validation.
enum class DnsOutcome {
  kData,      // rcode NOERROR with records of the asked type
  kNoData,    // NOERROR, name exists, no records of this type
  kNxDomain,  // the name does not exist
  kError,     // SERVFAIL, REFUSED, a bogus answer, or malformed records
};

struct DnsAnswer {
  std::string qname;  // as asked, lowercase, no trailing dot
  RrType qtype = RrType::kA;
  DnsOutcome outcome = DnsOutcome::kError;
  // kBogus: never use the records (libunbound fills them in anyway).
  DnssecState dnssec = DnssecState::kIndeterminate;
  // Why validation failed (libunbound's why_bogus), or what went wrong for
  // kError; "" otherwise.
  std::string error;
  int rcode = 0;
  // TTL of the answer (of the denial for kNoData/kNxDomain).
  absl::Duration ttl = absl::ZeroDuration();
  // Final name after CNAME expansion (== qname when there was none).
  std::string canonical_name;

  // Parsed records; only the vector matching qtype is filled.
  std::vector<std::string> addresses;  // A / AAAA, textual
  std::vector<MxRecord> mx;
  std::vector<TxtRecord> txt;
  std::vector<TlsaRecord> tlsa;
  std::vector<std::string> cname;  // target, lowercase, no trailing dot

  bool secure() const { return dnssec == DnssecState::kSecure; }
};

// A lookup's result: an answer, or a Status when none could be obtained
// (timeout, shutdown, resolver failure). See DnsClient.
using DnsResult = absl::StatusOr<DnsAnswer>;

// True when the lookup produced no usable answer: a Status error, or an
// answer with DnsOutcome::kError (bogus, SERVFAIL, malformed).
bool LookupFailed(const DnsResult& result);

// DNSSEC state of a result; kIndeterminate for a Status error.
DnssecState StateOf(const DnsResult& result);

// Why a failed lookup failed: "bogus: <why>", "failed: SERVFAIL",
// "failed: DNS lookup ... timed out after 5s".
std::string FailureText(const DnsResult& result);

}  // namespace mxpolicy

#endif  // MXPOLICY_COMMON_DNS_RECORDS_H_
