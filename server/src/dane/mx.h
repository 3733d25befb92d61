// The MX step of RFC 7672 §2.2: from the MX answer of the next-hop domain to
// the ordered list of hosts whose DANE state must be found — or to a final
// outcome (no mail, lookup failure). Pure logic; no I/O.
#ifndef MXPOLICY_DANE_MX_H_
#define MXPOLICY_DANE_MX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/src/common/dns_records.h"

namespace mxpolicy::dane {

// A hostile domain may publish thousands of MX records; each host costs
// several lookups. Postfix stops far earlier (smtp_mx_address_limit = 5).
inline constexpr size_t kMaxMxHosts = 32;

struct MxHost {
  std::string name;  // lowercase, no trailing dot (may be invalid, see valid)
  uint16_t preference = 0;
  // False for targets that are not LDH host names (IP literals, escaped
  // bytes, SPEC J5): never looked up, the host is unusable.
  bool valid = true;
};

struct MxPlan {
  enum class Kind {
    kHosts,         // evaluate `hosts`
    kNoMail,        // NXDOMAIN or null MX (RFC 7505): no mail, no policy
    kLookupFailed,  // MX lookup bogus / SERVFAIL / timeout: defer (SPEC G3)
  };
  Kind kind = Kind::kLookupFailed;
  // DNSSEC state of the MX RRset (or of its denial).
  DnssecState mx_state = DnssecState::kIndeterminate;
  // RFC 5321 §5.1: no MX RRset, the domain itself is the host (SPEC G14).
  bool implicit_mx = false;
  // Hosts in preference order (stable for equal preference, DNS order),
  // duplicates and "." entries removed (SPEC J4), at most kMaxMxHosts.
  std::vector<MxHost> hosts;
  absl::Duration ttl = absl::InfiniteDuration();
  // For kNoMail / kLookupFailed, and notes such as "only the first 32 of
  // 100 MX hosts are used".
  std::string reason;
};

// Plans the host evaluation for `domain` (normalised) from its MX lookup.
MxPlan PlanMx(absl::string_view domain, const DnsResult& mx);

}  // namespace mxpolicy::dane

#endif  // MXPOLICY_DANE_MX_H_
