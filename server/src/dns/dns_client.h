// DnsClient: the asynchronous DNS interface the resolver depends on. Answers
// are values carrying their DNSSEC state (RFC 4035 §4.3), so callers decide on
// data, not on error codes (Postfix src/dns style: found / not found / retry).
// The implementation is UnboundDnsClient; resolver tests use a fake.
#ifndef MXPOLICY_DNS_DNS_CLIENT_H_
#define MXPOLICY_DNS_DNS_CLIENT_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/src/common/dns_records.h"

namespace mxpolicy {

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
