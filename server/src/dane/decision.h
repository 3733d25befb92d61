// The domain-level DANE decision (RFC 7672 §2.2, §6; SPEC F3/F4, G4, G15,
// G16, J4, J12 and DESIGN.md's decision table) from the MX plan and every
// host's verdict. Pure logic.
#ifndef MXPOLICY_DANE_DECISION_H_
#define MXPOLICY_DANE_DECISION_H_

#include <string>
#include <vector>

#include "server/src/dane/host.h"
#include "server/src/dane/mx.h"

namespace mxpolicy::dane {

enum class DaneDecision {
  // MX RRset secure; every usable host has usable TLSA (Postfix dane-only).
  kDaneRequired,
  // Some hosts have secure TLSA (usable or not), or a host's TLSA lookup
  // failed while others remain usable (Postfix dane).
  kDane,
  // The MX lookup failed, or no host is left because lookups failed:
  // defer; never fall back to MTA-STS (SPEC F3).
  kTempFail,
  // NXDOMAIN or null MX (SPEC J4, J7).
  kNoMail,
  // DANE does not apply: MTA-STS or opportunistic TLS decides.
  kNoDane,
};

struct DomainVerdict {
  DaneDecision decision = DaneDecision::kNoDane;
  std::string reason;
};

DomainVerdict Decide(const MxPlan& plan, const std::vector<HostVerdict>& hosts);

}  // namespace mxpolicy::dane

#endif  // MXPOLICY_DANE_DECISION_H_
