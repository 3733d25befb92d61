#include "server/src/dane/decision.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mxpolicy::dane {

DomainVerdict Decide(const MxPlan& plan,
                     const std::vector<HostVerdict>& hosts) {
  switch (plan.kind) {
    case MxPlan::Kind::kLookupFailed:
      return {DaneDecision::kTempFail, plan.reason};
    case MxPlan::Kind::kNoMail:
      return {DaneDecision::kNoMail, plan.reason};
    case MxPlan::Kind::kHosts:
      break;
  }
  size_t usable = 0, dane = 0, encrypt = 0;
  bool lookup_failures = false, dane_failures = false;
  std::vector<std::string> failures;
  for (const HostVerdict& h : hosts) {
    if (h.requirement == Requirement::kUnusable) {
      lookup_failures = lookup_failures || h.lookup_failed;
      dane_failures = dane_failures || h.dane_lookup_failed;
      failures.push_back(h.reason);
      continue;
    }
    ++usable;
    if (h.requirement == Requirement::kDane) ++dane;
    if (h.requirement == Requirement::kEncrypt) ++encrypt;
  }
  const bool mx_secure = plan.mx_state == DnssecState::kSecure;
  const std::string mx_note =
      mx_secure ? "MX RRset secure"
                : "MX RRset insecure, DANE only for hosts with secure TLSA "
                  "(RFC 7672 §2.2.1)";

  if (usable == 0) {
    if (lookup_failures) {
      return {
          DaneDecision::kTempFail,
          absl::StrCat("no usable MX host: ", absl::StrJoin(failures, "; "))};
    }
    return {DaneDecision::kNoDane,
            absl::StrCat("no usable MX host: ", absl::StrJoin(failures, "; "))};
  }
  if (dane == 0 && encrypt == 0 && !dane_failures) {
    return {DaneDecision::kNoDane,
            absl::StrCat("no MX host has secure TLSA records (", mx_note, ")")};
  }
  std::string detail =
      absl::StrCat(dane, " of ", hosts.size(), " MX host(s) with usable TLSA");
  if (encrypt > 0) {
    absl::StrAppend(&detail, ", ", encrypt,
                    " with only unusable TLSA (encrypt)");
  }
  if (!failures.empty()) {
    absl::StrAppend(&detail, "; unusable: ", absl::StrJoin(failures, "; "));
  }
  if (mx_secure && dane == usable) {
    return {DaneDecision::kDaneRequired, absl::StrCat(detail, "; ", mx_note)};
  }
  return {DaneDecision::kDane, absl::StrCat(detail, "; ", mx_note)};
}

}  // namespace mxpolicy::dane
