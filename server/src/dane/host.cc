#include "server/src/dane/host.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/src/common/domain.h"
#include "server/src/dane/tlsa.h"

namespace mxpolicy::dane {
namespace {

const DnsResult* Find(const HostAnswers& answers, absl::string_view name,
                      RrType type) {
  auto it = answers.find(Query{std::string(name), type});
  return it == answers.end() ? nullptr : &it->second;
}

// Either the lookups still needed, or the verdict.
struct Step {
  std::vector<Query> needed;
  std::optional<HostVerdict> verdict;
};

HostVerdict Unusable(HostVerdict v, std::string reason, bool lookup_failed) {
  v.requirement = Requirement::kUnusable;
  v.tlsa_state = TlsaState::kError;
  v.lookup_failed = lookup_failed;
  v.reason = std::move(reason);
  return v;
}

// G7: the host's treatment from the TLSA answer found at `base`.
HostVerdict FromTlsa(HostVerdict v, const DnsResult& tlsa,
                     absl::string_view base) {
  const std::string qname = TlsaQueryName(base);
  if (LookupFailed(tlsa)) {
    v = Unusable(
        std::move(v),
        absl::StrCat("TLSA lookup for ", qname, " ", FailureText(tlsa)),
        /*lookup_failed=*/true);
    v.dane_lookup_failed = true;
    return v;
  }
  v.ttl = std::min(v.ttl, tlsa->ttl);
  if (!tlsa->secure()) {
    v.tlsa_state = TlsaState::kInsecure;
    v.requirement = Requirement::kOpportunistic;
    v.reason = absl::StrCat("TLSA answer for ", qname,
                            " is insecure: ignored (RFC 6698 §4.1)");
    return v;
  }
  if (tlsa->outcome != DnsOutcome::kData) {
    v.tlsa_state = TlsaState::kNone;
    v.requirement = Requirement::kOpportunistic;
    v.reason = absl::StrCat("no TLSA records at ", qname, " (secure denial)");
    return v;
  }
  v.tlsa_base_domain = std::string(base);
  v.tlsa = SelectUsable(tlsa->tlsa);
  if (!v.tlsa.empty()) {
    v.tlsa_state = TlsaState::kUsable;
    v.requirement = Requirement::kDane;
    v.reason = absl::StrCat(v.tlsa.size(), " usable TLSA record(s) at ", qname);
  } else {
    // RFC 7672 §2.2: TLSA present but all unusable → TLS without
    // authentication, never cleartext (Postfix "encrypt").
    v.tlsa_state = TlsaState::kUnusable;
    v.requirement = Requirement::kEncrypt;
    v.reason = absl::StrCat("all ", tlsa->tlsa.size(), " TLSA record(s) at ",
                            qname, " are unusable (",
                            TlsaUnusableReason(tlsa->tlsa.front()), ", ...)");
  }
  return v;
}

// TLSA at `base` if answered, else asks for it.
Step TlsaAt(HostVerdict v, const HostAnswers& answers, absl::string_view base) {
  const DnsResult* tlsa = Find(answers, TlsaQueryName(base), RrType::kTlsa);
  if (tlsa == nullptr) return {{Query{TlsaQueryName(base), RrType::kTlsa}}, {}};
  return {{}, FromTlsa(std::move(v), *tlsa, base)};
}

Step Analyze(const MxHost& host, const HostAnswers& answers) {
  HostVerdict v;
  v.host = host;
  if (!host.valid) {
    // SPEC J5: never looked up.
    return {{},
            Unusable(std::move(v),
                     absl::StrCat("MX target \"", host.name,
                                  "\" is not a host name"),
                     /*lookup_failed=*/false)};
  }
  const DnsResult* a = Find(answers, host.name, RrType::kA);
  const DnsResult* aaaa = Find(answers, host.name, RrType::kAaaa);
  if (a == nullptr || aaaa == nullptr) {
    Step step;
    if (a == nullptr) step.needed.push_back({host.name, RrType::kA});
    if (aaaa == nullptr) step.needed.push_back({host.name, RrType::kAaaa});
    return step;
  }

  // SPEC G5: an address lookup error makes the host unreachable.
  for (const DnsResult* r : {a, aaaa}) {
    if (LookupFailed(*r)) {
      v.address_state = StateOf(*r);
      return {{},
              Unusable(
                  std::move(v),
                  absl::StrCat(RrTypeName(r == a ? RrType::kA : RrType::kAaaa),
                               " lookup for ", host.name, " ", FailureText(*r)),
                  /*lookup_failed=*/true)};
    }
  }
  bool secure = true;
  std::string canonical = host.name;
  for (const DnsResult* r : {a, aaaa}) {
    secure = secure && (*r)->secure();
    if ((*r)->outcome != DnsOutcome::kData) continue;
    v.ttl = std::min(v.ttl, (*r)->ttl);
    v.addresses.insert(v.addresses.end(), (*r)->addresses.begin(),
                       (*r)->addresses.end());
    canonical = (*r)->canonical_name;
  }
  v.address_state = secure ? DnssecState::kSecure : DnssecState::kInsecure;
  if (v.addresses.empty()) {
    const bool nx = (*a)->outcome == DnsOutcome::kNxDomain;
    return {{},
            Unusable(std::move(v),
                     absl::StrCat(host.name,
                                  nx ? " does not exist" : " has no addresses"),
                     /*lookup_failed=*/false)};
  }
  const bool cnamed = canonical != host.name && IsLdhHostname(canonical);

  if (!secure) {
    if (!cnamed) {
      v.tlsa_state = TlsaState::kInsecure;
      v.requirement = Requirement::kOpportunistic;
      v.reason = absl::StrCat("addresses of ", host.name,
                              " are insecure: no DANE (RFC 7672 §2.2.2)");
      return {{}, std::move(v)};
    }
    // SPEC G2/G5/G6: the chain is not all secure; if its first CNAME is,
    // TLSA is looked up at the original name only.
    const DnsResult* probe = Find(answers, host.name, RrType::kCname);
    if (probe == nullptr) return {{Query{host.name, RrType::kCname}}, {}};
    if (StateOf(*probe) == DnssecState::kBogus) {
      return {{},
              Unusable(std::move(v),
                       absl::StrCat("CNAME lookup for ", host.name, " ",
                                    FailureText(*probe)),
                       /*lookup_failed=*/true)};
    }
    if (LookupFailed(*probe) || !(*probe)->secure()) {
      v.tlsa_state = TlsaState::kInsecure;
      v.requirement = Requirement::kOpportunistic;
      v.reason = absl::StrCat(host.name, " is an insecure CNAME to ", canonical,
                              ": no DANE (RFC 7672 §2.2.2)");
      return {{}, std::move(v)};
    }
    return TlsaAt(std::move(v), answers, host.name);
  }
  if (!cnamed) return TlsaAt(std::move(v), answers, host.name);

  // SPEC G6: whole chain secure → TLSA at the expanded name first; on a
  // secure denial there, at the original name; on an error, no fallback.
  const DnsResult* expanded =
      Find(answers, TlsaQueryName(canonical), RrType::kTlsa);
  if (expanded == nullptr) {
    return {{Query{TlsaQueryName(canonical), RrType::kTlsa}}, {}};
  }
  const bool denial = !LookupFailed(*expanded) && (*expanded)->secure() &&
                      (*expanded)->outcome != DnsOutcome::kData;
  if (!denial) return {{}, FromTlsa(std::move(v), *expanded, canonical)};
  return TlsaAt(std::move(v), answers, host.name);
}

}  // namespace

std::string TlsaQueryName(absl::string_view base) {
  return absl::StrCat("_25._tcp.", base);
}

std::vector<Query> InitialLookups(const MxHost& host) {
  if (!host.valid) return {};
  return {{host.name, RrType::kA},
          {host.name, RrType::kAaaa},
          {TlsaQueryName(host.name), RrType::kTlsa}};
}

std::vector<Query> NeededLookups(const MxHost& host,
                                 const HostAnswers& answers) {
  return Analyze(host, answers).needed;
}

HostVerdict EvaluateHost(const MxHost& host, const HostAnswers& answers) {
  Step step = Analyze(host, answers);
  if (step.verdict) return *std::move(step.verdict);
  // Called too early: report what is missing rather than guessing.
  HostVerdict v;
  v.host = host;
  return Unusable(
      std::move(v),
      absl::StrCat("internal: ", step.needed.front().name, " not looked up"),
      /*lookup_failed=*/true);
}

}  // namespace mxpolicy::dane
