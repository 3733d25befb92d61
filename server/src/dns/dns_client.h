// DnsClient: the asynchronous DNS interface the resolver depends on. Answers
// are values carrying their DNSSEC state (RFC 4035 §4.3), so callers decide on
// data, not on error codes (Postfix src/dns style: found / not found / retry).
// The implementation is UnboundDnsClient; resolver tests use a fake.
#ifndef MXPOLICY_DNS_DNS_CLIENT_H_
#define MXPOLICY_DNS_DNS_CLIENT_H_

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/src/common/dns_records.h"

namespace mxpolicy {

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

// Contract: Lookup() never blocks; `done` runs exactly once, on the client's
// own thread (so it must not block). A Status error means no answer could be
// obtained at all: DEADLINE_EXCEEDED (lookup timeout), UNAVAILABLE (shutting
// down), INTERNAL (resolver library failure). Thread-safe.
class DnsClient {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<DnsAnswer>) &&>;
  virtual ~DnsClient() = default;
  virtual void Lookup(absl::string_view name, RrType type, Callback done) = 0;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_DNS_DNS_CLIENT_H_
