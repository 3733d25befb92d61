#include "absl/strings/string_view.h"
#include "server/src/resolver/policy_resolver.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "server/src/common/domain.h"
#include "server/src/dane/tlsa.h"

namespace mxpolicy {
namespace {

// A hostile domain may publish thousands of MX records; each host costs three
// lookups. Postfix stops far earlier (smtp_mx_address_limit = 5).
constexpr size_t kMaxMxHosts = 32;

v1::DnssecState ToProto(DnssecState state) {
  switch (state) {
    case DnssecState::kSecure:
      return v1::DNSSEC_STATE_SECURE;
    case DnssecState::kInsecure:
      return v1::DNSSEC_STATE_INSECURE;
    case DnssecState::kBogus:
      return v1::DNSSEC_STATE_BOGUS;
    case DnssecState::kIndeterminate:
      return v1::DNSSEC_STATE_INDETERMINATE;
  }
  return v1::DNSSEC_STATE_UNSPECIFIED;
}

// "bogus: <why>" / "SERVFAIL" / "timed out ..." for a failed lookup.
std::string FailureText(const absl::StatusOr<DnsAnswer>& answer) {
  if (!answer.ok()) return std::string(answer.status().message());
  if (answer->dnssec == DnssecState::kBogus) {
    return absl::StrCat("bogus: ", answer->error);
  }
  return answer->error;
}

// DNSSEC state of a lookup that may have failed outright.
DnssecState StateOf(const absl::StatusOr<DnsAnswer>& answer) {
  return answer.ok() ? answer->dnssec : DnssecState::kIndeterminate;
}

bool Failed(const absl::StatusOr<DnsAnswer>& answer) {
  return !answer.ok() || answer->outcome == DnsOutcome::kError;
}

struct Host {
  std::string name;
  uint16_t preference = 0;
  std::optional<absl::StatusOr<DnsAnswer>> a, aaaa, tlsa;
  bool finished = false;
};

// One in-flight resolution. Shared by the lookups' callbacks; the last one to
// finish a host and find no host left completes the call.
class Resolution : public std::enable_shared_from_this<Resolution> {
 public:
  Resolution(DnsClient& dns, std::string domain, PolicyResolver::Callback done)
      : dns_(dns), done_(std::move(done)) {
    response_.set_domain(std::move(domain));
    response_.set_source(v1::SOURCE_FRESH);
  }

  void Start() {
    dns_.Lookup(response_.domain(), RrType::kMx,
                [self = shared_from_this()](absl::StatusOr<DnsAnswer> mx) {
                  self->OnMx(std::move(mx));
                });
  }

 private:
  void OnMx(absl::StatusOr<DnsAnswer> mx);
  void OnLookup(size_t index, RrType type, absl::StatusOr<DnsAnswer> answer);
  // Fills hosts_[index] into the response when it has all it needs; returns
  // true when that was the last host. Requires mu_.
  bool MaybeFinishHost(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillHost(const Host& host, v1::MxHost& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UseTtl(absl::Duration ttl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    min_ttl_ = std::min(min_ttl_, ttl);
  }
  void Finish();

  DnsClient& dns_;
  PolicyResolver::Callback done_;
  absl::Mutex mu_;
  v1::ResolveResponse response_ ABSL_GUARDED_BY(mu_);
  std::vector<Host> hosts_ ABSL_GUARDED_BY(mu_);
  size_t hosts_left_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration min_ttl_ ABSL_GUARDED_BY(mu_) = absl::InfiniteDuration();
};

void Resolution::OnMx(absl::StatusOr<DnsAnswer> mx) {
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    const std::string& domain = response_.domain();
    response_.set_mx_dnssec(ToProto(StateOf(mx)));
    if (Failed(mx)) {
      response_.set_reason(
          absl::StrCat("MX lookup for ", domain, " failed: ", FailureText(mx)));
    } else {
      UseTtl(mx->ttl);
      switch (mx->outcome) {
        case DnsOutcome::kNxDomain:
          response_.set_reason(
              absl::StrCat(domain, " does not exist (NXDOMAIN)"));
          break;
        case DnsOutcome::kNoData:
          // RFC 5321 §5.1: no MX RRset → the domain itself is the host.
          response_.set_implicit_mx(true);
          hosts_.push_back(Host{.name = domain});
          break;
        case DnsOutcome::kData: {
          std::vector<MxRecord> records = mx->mx;
          std::stable_sort(records.begin(), records.end(),
                           [](const MxRecord& l, const MxRecord& r) {
                             return l.preference < r.preference;
                           });
          absl::flat_hash_set<std::string> seen;
          for (const MxRecord& record : records) {
            // RFC 7505 §3: "." mixed with other MX records is ignored (J4).
            if (record.exchange.empty()) continue;
            if (!seen.insert(record.exchange).second) continue;
            if (hosts_.size() == kMaxMxHosts) break;
            hosts_.push_back(
                Host{.name = record.exchange, .preference = record.preference});
          }
          if (hosts_.empty()) {
            response_.set_reason(absl::StrCat(
                domain, " publishes a null MX (RFC 7505): it accepts no mail"));
          }
          break;
        }
        case DnsOutcome::kError:
          break;  // handled by Failed()
      }
    }
    hosts_left_ = hosts_.size();
    for (Host& host : hosts_) {
      names.push_back(host.name);
      response_.add_mx_hosts();  // filled in place, keeping MX order
    }
  }
  if (names.empty()) {
    Finish();
    return;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (!IsLdhHostname(names[i])) {
      // SPEC J5: an IP literal or otherwise invalid MX target is never looked
      // up; the host is unusable.
      absl::StatusOr<DnsAnswer> invalid = absl::InvalidArgumentError(
          absl::StrCat("MX target \"", names[i], "\" is not a host name"));
      OnLookup(i, RrType::kA, invalid);
      OnLookup(i, RrType::kAaaa, invalid);
      continue;
    }
    for (RrType type : {RrType::kA, RrType::kAaaa, RrType::kTlsa}) {
      const std::string qname =
          type == RrType::kTlsa ? absl::StrCat("_25._tcp.", names[i]) : names[i];
      dns_.Lookup(qname, type,
                  [self = shared_from_this(), i,
                   type](absl::StatusOr<DnsAnswer> answer) {
                    self->OnLookup(i, type, std::move(answer));
                  });
    }
  }
}

void Resolution::OnLookup(size_t index, RrType type,
                          absl::StatusOr<DnsAnswer> answer) {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    Host& host = hosts_[index];
    if (type == RrType::kA) {
      host.a = std::move(answer);
    } else if (type == RrType::kAaaa) {
      host.aaaa = std::move(answer);
    } else {
      host.tlsa = std::move(answer);
    }
    last = MaybeFinishHost(index);
  }
  if (last) Finish();
}

bool Resolution::MaybeFinishHost(size_t index) {
  Host& host = hosts_[index];
  if (host.finished || !host.a || !host.aaaa) return false;
  const bool addr_secure = StateOf(*host.a) == DnssecState::kSecure &&
                           StateOf(*host.aaaa) == DnssecState::kSecure &&
                           !Failed(*host.a) && !Failed(*host.aaaa);
  // RFC 7672 §2.2.2: TLSA only matters for hosts with secure addresses, so
  // an insecure host never waits for (or fails on) its TLSA lookup.
  if (addr_secure && !host.tlsa) return false;
  host.finished = true;
  FillHost(host, *response_.mutable_mx_hosts(static_cast<int>(index)));
  return --hosts_left_ == 0;
}

void Resolution::FillHost(const Host& host, v1::MxHost& out) {
  out.set_hostname(host.name);
  out.set_preference(host.preference);
  const absl::StatusOr<DnsAnswer>& a = *host.a;
  const absl::StatusOr<DnsAnswer>& aaaa = *host.aaaa;

  // Address state: bogus beats failure beats insecure beats secure.
  const bool bogus = StateOf(a) == DnssecState::kBogus ||
                     StateOf(aaaa) == DnssecState::kBogus;
  const bool failed = Failed(a) || Failed(aaaa);
  const bool insecure = StateOf(a) == DnssecState::kInsecure ||
                        StateOf(aaaa) == DnssecState::kInsecure;
  const DnssecState addr = bogus      ? DnssecState::kBogus
                           : failed   ? DnssecState::kIndeterminate
                           : insecure ? DnssecState::kInsecure
                                      : DnssecState::kSecure;
  for (const auto* answer : {&a, &aaaa}) {
    if (Failed(*answer)) continue;
    UseTtl((*answer)->ttl);
    for (const std::string& ip : (*answer)->addresses) out.add_addresses(ip);
  }
  out.set_address_dnssec(ToProto(addr));

  if (addr == DnssecState::kBogus || addr == DnssecState::kIndeterminate) {
    const auto& broken = Failed(a) ? a : aaaa;
    out.set_tls_requirement(v1::TLS_REQUIREMENT_UNUSABLE);
    out.set_tlsa_state(v1::TLSA_STATE_ERROR);
    out.set_reason(absl::StrCat("address lookup for ", host.name,
                                " failed: ", FailureText(broken)));
    return;
  }
  if (addr == DnssecState::kInsecure) {
    out.set_tls_requirement(v1::TLS_REQUIREMENT_OPPORTUNISTIC);
    out.set_tlsa_state(v1::TLSA_STATE_INSECURE);
    out.set_reason(absl::StrCat("addresses of ", host.name,
                                " are insecure: no DANE (RFC 7672 §2.2.2)"));
    return;
  }
  const absl::StatusOr<DnsAnswer>& tlsa = *host.tlsa;
  const std::string tlsa_name = absl::StrCat("_25._tcp.", host.name);
  if (Failed(tlsa)) {
    out.set_tls_requirement(v1::TLS_REQUIREMENT_UNUSABLE);
    out.set_tlsa_state(v1::TLSA_STATE_ERROR);
    out.set_reason(absl::StrCat("TLSA lookup for ", tlsa_name,
                                " failed: ", FailureText(tlsa)));
    return;
  }
  UseTtl(tlsa->ttl);
  if (!tlsa->secure()) {
    out.set_tls_requirement(v1::TLS_REQUIREMENT_OPPORTUNISTIC);
    out.set_tlsa_state(v1::TLSA_STATE_INSECURE);
    out.set_reason(absl::StrCat("TLSA answer for ", tlsa_name,
                                " is insecure: ignored (RFC 6698 §4.1)"));
    return;
  }
  if (tlsa->outcome != DnsOutcome::kData) {
    out.set_tls_requirement(v1::TLS_REQUIREMENT_OPPORTUNISTIC);
    out.set_tlsa_state(v1::TLSA_STATE_NONE);
    out.set_reason(absl::StrCat("no TLSA records at ", tlsa_name,
                                " (secure denial)"));
    return;
  }
  out.set_tlsa_base_domain(host.name);
  for (const TlsaRecord& record : tlsa->tlsa) {
    if (!dane::IsUsableTlsa(record)) continue;
    v1::TlsaRecord& r = *out.add_tlsa_records();
    r.set_usage(record.usage);
    r.set_selector(record.selector);
    r.set_matching_type(record.matching_type);
    r.set_data(record.data);
  }
  if (out.tlsa_records_size() > 0) {
    out.set_tls_requirement(v1::TLS_REQUIREMENT_DANE);
    out.set_tlsa_state(v1::TLSA_STATE_USABLE);
    out.set_reason(absl::StrCat(out.tlsa_records_size(),
                                " usable TLSA record(s) at ", tlsa_name));
  } else {
    // RFC 7672 §2.2: TLSA present but all unusable → TLS without
    // authentication, never cleartext.
    out.set_tls_requirement(v1::TLS_REQUIREMENT_ENCRYPT);
    out.set_tlsa_state(v1::TLSA_STATE_UNUSABLE);
    out.set_reason(absl::StrCat("all ", tlsa->tlsa.size(),
                                " TLSA record(s) at ", tlsa_name,
                                " are unusable"));
  }
}

void Resolution::Finish() {
  v1::ResolveResponse response;
  {
    absl::MutexLock lock(&mu_);
    if (min_ttl_ != absl::InfiniteDuration()) {
      response_.mutable_ttl()->set_seconds(absl::ToInt64Seconds(min_ttl_));
    }
    response_.set_decision(v1::DECISION_UNSPECIFIED);
    const std::string lookups = response_.reason();
    response_.set_reason(absl::StrCat(
        "no decision: the DANE and MTA-STS engines are not in this build yet",
        lookups.empty() ? "" : "; ", lookups));
    response = std::move(response_);
  }
  std::move(done_)(std::move(response));
}

}  // namespace

PolicyResolver::PolicyResolver(DnsClient& dns, HttpsFetcher& https)
    : dns_(dns), https_(https) {}

void PolicyResolver::Resolve(absl::string_view domain, Callback done) {
  absl::StatusOr<std::string> normalized = NormalizeDomain(domain);
  if (!normalized.ok()) {
    std::move(done)(normalized.status());
    return;
  }
  std::make_shared<Resolution>(dns_, *std::move(normalized), std::move(done))
      ->Start();
}

}  // namespace mxpolicy
