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
#include "server/src/dane/decision.h"
#include "server/src/dane/host.h"
#include "server/src/dane/mx.h"

namespace mxpolicy {
namespace {

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

v1::TlsaState ToProto(dane::TlsaState state) {
  switch (state) {
    case dane::TlsaState::kUsable:
      return v1::TLSA_STATE_USABLE;
    case dane::TlsaState::kUnusable:
      return v1::TLSA_STATE_UNUSABLE;
    case dane::TlsaState::kNone:
      return v1::TLSA_STATE_NONE;
    case dane::TlsaState::kInsecure:
      return v1::TLSA_STATE_INSECURE;
    case dane::TlsaState::kError:
      return v1::TLSA_STATE_ERROR;
  }
  return v1::TLSA_STATE_UNSPECIFIED;
}

v1::TlsRequirement ToProto(dane::Requirement requirement) {
  switch (requirement) {
    case dane::Requirement::kDane:
      return v1::TLS_REQUIREMENT_DANE;
    case dane::Requirement::kEncrypt:
      return v1::TLS_REQUIREMENT_ENCRYPT;
    case dane::Requirement::kOpportunistic:
      return v1::TLS_REQUIREMENT_OPPORTUNISTIC;
    case dane::Requirement::kUnusable:
      return v1::TLS_REQUIREMENT_UNUSABLE;
  }
  return v1::TLS_REQUIREMENT_UNSPECIFIED;
}

v1::Decision ToProto(dane::DaneDecision decision) {
  switch (decision) {
    case dane::DaneDecision::kDaneRequired:
      return v1::DECISION_DANE_REQUIRED;
    case dane::DaneDecision::kDane:
      return v1::DECISION_DANE;
    case dane::DaneDecision::kTempFail:
      return v1::DECISION_TEMPFAIL;
    case dane::DaneDecision::kNoMail:
      return v1::DECISION_NO_MAIL;
    case dane::DaneDecision::kNoDane:
      return v1::DECISION_NONE;
  }
  return v1::DECISION_UNSPECIFIED;
}

void FillHost(const dane::HostVerdict& v, v1::MxHost& out) {
  out.set_hostname(v.host.name);
  out.set_preference(v.host.preference);
  out.set_address_dnssec(ToProto(v.address_state));
  for (const std::string& ip : v.addresses) out.add_addresses(ip);
  out.set_tls_requirement(ToProto(v.requirement));
  out.set_tlsa_state(ToProto(v.tlsa_state));
  out.set_tlsa_base_domain(v.tlsa_base_domain);
  for (const TlsaRecord& record : v.tlsa) {
    v1::TlsaRecord& r = *out.add_tlsa_records();
    r.set_usage(record.usage);
    r.set_selector(record.selector);
    r.set_matching_type(record.matching_type);
    r.set_data(record.data);
  }
  out.set_reason(v.reason);
}

struct HostState {
  dane::MxHost host;
  dane::HostAnswers answers;
  absl::flat_hash_set<dane::Query> asked;
  std::optional<dane::HostVerdict> verdict;
};

// One in-flight resolution, shared by its lookups' callbacks. The MX answer
// fans out to every host's lookups at once; each answer asks the pure DANE
// logic what is still needed (SPEC G2/G5/G6), so a host costs one
// round-trip level unless CNAMEs demand another.
class Resolution : public std::enable_shared_from_this<Resolution> {
 public:
  Resolution(DnsClient& dns, std::string domain, PolicyResolver::Callback done)
      : dns_(dns), domain_(std::move(domain)), done_(std::move(done)) {}

  void Start() {
    dns_.Lookup(domain_, RrType::kMx,
                [self = shared_from_this()](DnsResult mx) {
                  self->OnMx(std::move(mx));
                });
  }

 private:
  using Batch = std::vector<std::pair<size_t, dane::Query>>;

  void OnMx(DnsResult mx);
  void OnLookup(size_t index, dane::Query query, DnsResult answer);
  // Records what `index` still needs into `batch`, or its verdict; returns
  // true when that completed the last host. Requires mu_.
  bool Advance(size_t index, Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Issue(const Batch& batch);
  void Finish();

  DnsClient& dns_;
  const std::string domain_;
  PolicyResolver::Callback done_;
  absl::Mutex mu_;
  dane::MxPlan plan_ ABSL_GUARDED_BY(mu_);
  std::vector<HostState> hosts_ ABSL_GUARDED_BY(mu_);
  size_t hosts_left_ ABSL_GUARDED_BY(mu_) = 0;
};

void Resolution::OnMx(DnsResult mx) {
  Batch batch;
  bool finished = false;
  {
    absl::MutexLock lock(&mu_);
    plan_ = dane::PlanMx(domain_, mx);
    for (const dane::MxHost& host : plan_.hosts) {
      hosts_.emplace_back().host = host;
    }
    hosts_left_ = hosts_.size();
    for (size_t i = 0; i < hosts_.size(); ++i) {
      for (dane::Query& q : dane::InitialLookups(hosts_[i].host)) {
        hosts_[i].asked.insert(q);
        batch.emplace_back(i, std::move(q));
      }
      finished = Advance(i, batch) || finished;  // invalid targets: no lookups
    }
    finished = finished || hosts_.empty();
  }
  Issue(batch);
  if (finished) Finish();
}

void Resolution::OnLookup(size_t index, dane::Query query, DnsResult answer) {
  Batch batch;
  bool finished;
  {
    absl::MutexLock lock(&mu_);
    HostState& host = hosts_[index];
    host.answers.insert_or_assign(std::move(query), std::move(answer));
    finished = Advance(index, batch);
  }
  Issue(batch);
  if (finished) Finish();
}

bool Resolution::Advance(size_t index, Batch& batch) {
  HostState& host = hosts_[index];
  if (host.verdict) return false;  // a late speculative answer
  const std::vector<dane::Query> needed =
      dane::NeededLookups(host.host, host.answers);
  if (!needed.empty()) {
    for (const dane::Query& q : needed) {
      if (host.asked.insert(q).second) batch.emplace_back(index, q);
    }
    return false;  // still waiting
  }
  host.verdict = dane::EvaluateHost(host.host, host.answers);
  return --hosts_left_ == 0;
}

void Resolution::Issue(const Batch& batch) {
  for (const auto& [index, query] : batch) {
    dns_.Lookup(query.name, query.type,
                [self = shared_from_this(), index = index,
                 query = query](DnsResult answer) mutable {
                  self->OnLookup(index, std::move(query), std::move(answer));
                });
  }
}

void Resolution::Finish() {
  v1::ResolveResponse response;
  {
    absl::MutexLock lock(&mu_);
    std::vector<dane::HostVerdict> verdicts;
    absl::Duration ttl = plan_.ttl;
    for (HostState& host : hosts_) {
      ttl = std::min(ttl, host.verdict->ttl);
      verdicts.push_back(*host.verdict);
    }
    const dane::DomainVerdict verdict = dane::Decide(plan_, verdicts);
    response.set_domain(domain_);
    response.set_source(v1::SOURCE_FRESH);
    response.set_mx_dnssec(ToProto(plan_.mx_state));
    response.set_implicit_mx(plan_.implicit_mx);
    for (const dane::HostVerdict& v : verdicts) {
      FillHost(v, *response.add_mx_hosts());
    }
    response.set_decision(ToProto(verdict.decision));
    std::string reason = verdict.reason;
    if (verdict.decision == dane::DaneDecision::kNoDane) {
      absl::StrAppend(&reason, "; MTA-STS is not evaluated in this build");
    }
    if (plan_.kind == dane::MxPlan::Kind::kHosts && !plan_.reason.empty()) {
      absl::StrAppend(&reason, "; ", plan_.reason);
    }
    response.set_reason(std::move(reason));
    if (ttl != absl::InfiniteDuration()) {
      response.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    }
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
