#include "server/src/dane/mx.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "server/src/common/domain.h"

namespace mxpolicy::dane {

MxPlan PlanMx(absl::string_view domain, const DnsResult& mx) {
  MxPlan plan;
  plan.mx_state = StateOf(mx);
  if (LookupFailed(mx)) {
    plan.kind = MxPlan::Kind::kLookupFailed;
    plan.reason = absl::StrCat("MX lookup for ", domain, " ", FailureText(mx));
    return plan;
  }
  plan.ttl = mx->ttl;
  switch (mx->outcome) {
    case DnsOutcome::kNxDomain:
      plan.kind = MxPlan::Kind::kNoMail;
      plan.reason = absl::StrCat(domain, " does not exist (NXDOMAIN)");
      return plan;
    case DnsOutcome::kNoData:
      plan.kind = MxPlan::Kind::kHosts;
      plan.implicit_mx = true;
      plan.hosts.push_back(MxHost{std::string(domain), 0, true});
      return plan;
    case DnsOutcome::kError:  // handled by LookupFailed
    case DnsOutcome::kData:
      break;
  }
  std::vector<MxRecord> records = mx->mx;
  std::stable_sort(records.begin(), records.end(),
                   [](const MxRecord& l, const MxRecord& r) {
                     return l.preference < r.preference;
                   });
  absl::flat_hash_set<std::string> seen;
  size_t distinct = 0;
  for (const MxRecord& record : records) {
    // RFC 7505 §3: "." mixed with other MX records is ignored (SPEC J4).
    if (record.exchange.empty()) continue;
    if (!seen.insert(record.exchange).second) continue;
    ++distinct;
    if (plan.hosts.size() == kMaxMxHosts) continue;
    plan.hosts.push_back(MxHost{record.exchange, record.preference,
                                IsLdhHostname(record.exchange)});
  }
  if (plan.hosts.empty()) {
    plan.kind = MxPlan::Kind::kNoMail;
    plan.reason = absl::StrCat(domain,
                               " publishes a null MX (RFC 7505): it accepts "
                               "no mail");
    return plan;
  }
  plan.kind = MxPlan::Kind::kHosts;
  if (distinct > kMaxMxHosts) {
    plan.reason = absl::StrCat("only the first ", kMaxMxHosts, " of ", distinct,
                               " MX hosts are evaluated");
  }
  return plan;
}

}  // namespace mxpolicy::dane
