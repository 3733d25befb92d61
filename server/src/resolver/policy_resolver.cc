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
#include "server/src/log/log.h"
#include "server/src/sts/policy.h"
#include "server/src/sts/txt_record.h"

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

v1::StsMode ToProto(sts::Mode mode) {
  switch (mode) {
    case sts::Mode::kEnforce:
      return v1::STS_MODE_ENFORCE;
    case sts::Mode::kTesting:
      return v1::STS_MODE_TESTING;
    case sts::Mode::kNone:
      return v1::STS_MODE_NONE;
  }
  return v1::STS_MODE_UNSPECIFIED;
}

void FillPolicy(const sts::CachedPolicy& cached, v1::StsPolicy& out) {
  out.set_id(cached.id);
  out.set_mode(ToProto(cached.policy.mode));
  for (const std::string& p : cached.policy.mx) out.add_mx_patterns(p);
  out.mutable_max_age()->set_seconds(
      absl::ToInt64Seconds(cached.policy.max_age));
  out.mutable_fetched_at()->set_seconds(absl::ToUnixSeconds(cached.fetched_at));
  for (const std::string& line : cached.policy.lines) out.add_raw_lines(line);
}

// The TXT lookup as the policy store sees it (SPEC A4, A9).
sts::TxtState ToTxtState(const DnsResult& txt, std::string* why) {
  if (LookupFailed(txt)) {
    *why = absl::StrCat("_mta-sts TXT lookup ", FailureText(txt));
    return {sts::TxtState::Kind::kFailed, ""};
  }
  if (txt->outcome != DnsOutcome::kData) {
    return {sts::TxtState::Kind::kAbsent, ""};
  }
  absl::StatusOr<std::string> id = sts::ParseStsTxtRecords(txt->txt);
  if (!id.ok()) {
    *why = std::string(id.status().message());
    return {sts::TxtState::Kind::kAbsent, ""};
  }
  return {sts::TxtState::Kind::kValid, *std::move(id)};
}

struct HostState {
  dane::MxHost host;
  dane::HostAnswers answers;
  absl::flat_hash_set<dane::Query> asked;
  std::optional<dane::HostVerdict> verdict;
};

// One in-flight resolution, shared by its lookups' callbacks. Three
// branches start at once — DANE (MX, then every host's lookups, fanned
// out), MTA-STS (TXT, then the policy store and perhaps a fetch) and
// TLSRPT (TXT) — and the last one to finish combines them.
class Resolution : public std::enable_shared_from_this<Resolution> {
 public:
  Resolution(DnsClient& dns, sts::PolicyStore& store, PolicyFetcher& fetcher,
             SharedTier* tier, const PolicyResolver::Options& options,
             std::string domain, PolicyResolver::Callback done)
      : dns_(dns),
        store_(store),
        fetcher_(fetcher),
        tier_(tier),
        options_(options),
        domain_(std::move(domain)),
        done_(std::move(done)) {}

  void Start() {
    auto self = shared_from_this();
    dns_.Lookup(domain_, RrType::kMx,
                [self](DnsResult mx) { self->OnMx(std::move(mx)); });
    // Without a policy here, the fleet's L2 tier may have one: asked
    // alongside the TXT lookup, restored into the store before the plan.
    const bool ask_tier = tier_ != nullptr && !store_.Get(domain_).has_value();
    {
      absl::MutexLock lock(&mu_);
      sts_inputs_left_ = ask_tier ? 2 : 1;
    }
    if (ask_tier) {
      tier_->GetPolicy(domain_, [self](std::optional<StoredPolicy> stored) {
        if (stored.has_value()) self->RestoreFromTier(*std::move(stored));
        self->StsInputReady(std::nullopt);
      });
    }
    dns_.Lookup(absl::StrCat("_mta-sts.", domain_), RrType::kTxt,
                [self](DnsResult txt) { self->StsInputReady(std::move(txt)); });
    dns_.Lookup(absl::StrCat("_smtp._tls.", domain_), RrType::kTxt,
                [self](DnsResult txt) { self->OnTlsRpt(std::move(txt)); });
  }

 private:
  using Batch = std::vector<std::pair<size_t, dane::Query>>;

  void OnMx(DnsResult mx);
  void OnLookup(size_t index, dane::Query query, DnsResult answer);
  // Records what `index` still needs into `batch`, or its verdict; returns
  // true when that completed the DANE branch. Requires mu_.
  bool Advance(size_t index, Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Issue(const Batch& batch);
  // The TXT answer (or nullopt: the L2 tier's answer) arrived; the last of
  // the two goes on with OnStsTxt.
  void StsInputReady(std::optional<DnsResult> txt);
  // Parses and checks a policy from the L2 tier (untrusted) and keeps it in
  // the store when it is valid and current.
  void RestoreFromTier(StoredPolicy stored);
  void OnStsTxt(DnsResult txt);
  void OnTlsRpt(DnsResult txt);
  // Marks one branch done; the last one combines and answers.
  void BranchDone();
  void Finish();

  DnsClient& dns_;
  sts::PolicyStore& store_;
  PolicyFetcher& fetcher_;
  SharedTier* const tier_;
  const PolicyResolver::Options& options_;
  const std::string domain_;
  PolicyResolver::Callback done_;

  absl::Mutex mu_;
  int branches_left_ ABSL_GUARDED_BY(mu_) = 3;
  // DANE branch.
  dane::MxPlan plan_ ABSL_GUARDED_BY(mu_);
  std::vector<HostState> hosts_ ABSL_GUARDED_BY(mu_);
  size_t hosts_left_ ABSL_GUARDED_BY(mu_) = 0;
  // MTA-STS branch.
  int sts_inputs_left_ ABSL_GUARDED_BY(mu_) = 1;
  std::optional<DnsResult> sts_txt_ ABSL_GUARDED_BY(mu_);
  std::optional<sts::CachedPolicy> policy_ ABSL_GUARDED_BY(mu_);
  bool txt_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool fetch_failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration txt_ttl_ ABSL_GUARDED_BY(mu_) = absl::InfiniteDuration();
  std::string sts_note_ ABSL_GUARDED_BY(mu_);
  // TLSRPT branch.
  std::vector<std::string> rua_ ABSL_GUARDED_BY(mu_);
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
  if (finished) BranchDone();
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
  if (finished) BranchDone();
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

void Resolution::StsInputReady(std::optional<DnsResult> txt) {
  std::optional<DnsResult> ready;
  {
    absl::MutexLock lock(&mu_);
    if (txt.has_value()) sts_txt_ = std::move(txt);
    if (--sts_inputs_left_ > 0) return;
    ready = std::move(sts_txt_);
  }
  OnStsTxt(*std::move(ready));
}

void Resolution::RestoreFromTier(StoredPolicy stored) {
  // Whatever Redis holds is re-checked as if it came from HTTPS and DNS:
  // the policy grammar (SPEC C), the id grammar (A), a sane lifetime.
  absl::StatusOr<sts::Policy> policy = sts::ParsePolicy(stored.body);
  if (!policy.ok() || !sts::IsValidPolicyId(stored.id) ||
      stored.expires_at > stored.fetched_at + policy->max_age ||
      stored.fetched_at > store_.clock().Now() + absl::Minutes(5)) {
    LogLine(LogLevel::kWarning, "l2_policy_rejected")
        .Add("domain", domain_)
        .Add("error", !policy.ok() ? std::string(policy.status().message())
                                   : "bad id or lifetime");
    return;
  }
  store_.Restore(domain_, sts::CachedPolicy{.id = stored.id,
                                            .policy = *std::move(policy),
                                            .fetched_at = stored.fetched_at,
                                            .expires_at = stored.expires_at});
}

void Resolution::OnStsTxt(DnsResult txt) {
  std::string why;
  const sts::TxtState state = ToTxtState(txt, &why);
  const sts::StorePlan plan = store_.Plan(domain_, state);
  {
    absl::MutexLock lock(&mu_);
    txt_failed_ = state.kind == sts::TxtState::Kind::kFailed;
    if (txt.ok() && !LookupFailed(txt)) txt_ttl_ = txt->ttl;
    policy_ = plan.cached;
    // The parser's reason says more than the store's note unless the store
    // has something to add (a cached policy, a fetch).
    sts_note_ = why.empty() ? plan.note
                : (plan.cached || plan.fetch) ? absl::StrCat(why, "; ", plan.note)
                                              : why;
  }
  if (!plan.fetch) {
    BranchDone();
    return;
  }
  // A new or changed id: wait for the fetch (it runs on, and fills the
  // cache, even if the caller gives up — SPEC B8); on failure the cached
  // policy, if any, applies (D2). A proactive refresh (D5) of an unchanged
  // id runs in the background while the cached policy answers.
  const bool wait = !plan.refresh;
  fetcher_.Fetch(domain_, plan.fetch_id,
                 [self = wait ? shared_from_this() : nullptr](
                     PolicyFetchOutcome outcome) {
                   if (self == nullptr) return;
                   {
                     absl::MutexLock lock(&self->mu_);
                     self->policy_ = outcome.ok ? outcome.policy
                                                : self->store_.Get(self->domain_);
                     if (!outcome.ok) {
                       self->fetch_failed_ = true;
                       absl::StrAppend(&self->sts_note_, "; policy fetch: ",
                                       outcome.detail);
                     }
                   }
                   self->BranchDone();
                 });
  if (!wait) BranchDone();
}

void Resolution::OnTlsRpt(DnsResult txt) {
  {
    absl::MutexLock lock(&mu_);
    if (!LookupFailed(txt) && txt->outcome == DnsOutcome::kData) {
      absl::StatusOr<std::vector<std::string>> rua =
          sts::ParseTlsRptRecords(txt->txt);
      if (rua.ok()) rua_ = *std::move(rua);
    }
  }
  BranchDone();
}

void Resolution::BranchDone() {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    last = --branches_left_ == 0;
  }
  if (last) Finish();
}

void Resolution::Finish() {
  v1::ResolveResponse response;
  {
    absl::MutexLock lock(&mu_);
    std::vector<dane::HostVerdict> verdicts;
    absl::Duration ttl = std::min(plan_.ttl, txt_ttl_);
    for (HostState& host : hosts_) {
      ttl = std::min(ttl, host.verdict->ttl);
      verdicts.push_back(*host.verdict);
    }
    const dane::DomainVerdict dane = dane::Decide(plan_, verdicts);
    response.set_domain(domain_);
    response.set_source(v1::SOURCE_FRESH);
    response.set_mx_dnssec(ToProto(plan_.mx_state));
    response.set_implicit_mx(plan_.implicit_mx);
    for (const dane::HostVerdict& v : verdicts) {
      FillHost(v, *response.add_mx_hosts());
    }
    for (const std::string& uri : rua_) response.add_tlsrpt_rua(uri);
    if (policy_) {
      FillPolicy(*policy_, *response.mutable_sts_policy());
      for (v1::MxHost& host : *response.mutable_mx_hosts()) {
        host.set_sts_allowed(
            sts::MatchesAnyPattern(policy_->policy.mx, host.hostname()));
      }
      ttl = std::min(ttl, policy_->expires_at - store_.clock().Now());
    }
    std::string reason = dane.reason;
    v1::Decision decision = ToProto(dane.decision);
    // RFC 8461 §2 / SPEC F1–F4: DANE first; MTA-STS only where DANE does
    // not apply, and never over a DANE failure.
    if (dane.decision == dane::DaneDecision::kNoDane) {
      const sts::Mode mode =
          policy_ ? policy_->policy.mode : sts::Mode::kNone;
      if (policy_ && mode == sts::Mode::kEnforce) {
        decision = v1::DECISION_STS_ENFORCE;
        int allowed = 0;
        for (v1::MxHost& host : *response.mutable_mx_hosts()) {
          if (host.tls_requirement() == v1::TLS_REQUIREMENT_UNUSABLE) continue;
          if (host.sts_allowed()) {
            ++allowed;
            host.set_tls_requirement(v1::TLS_REQUIREMENT_PKIX);
            host.set_reason(absl::StrCat(
                "MTA-STS enforce: certificate must be valid for ",
                host.hostname(), " (RFC 8461 §4.2)"));
          } else {
            host.set_tls_requirement(v1::TLS_REQUIREMENT_UNUSABLE);
            host.set_reason(absl::StrCat(
                host.hostname(),
                " matches no mx pattern of the MTA-STS policy (RFC 8461 §4.1)"));
          }
        }
        reason = absl::StrCat("MTA-STS enforce (id ", policy_->id, "; ",
                              sts_note_, "): ", allowed, " of ",
                              response.mx_hosts_size(),
                              " MX host(s) allowed; ", reason);
      } else if (policy_ && mode == sts::Mode::kTesting) {
        decision = v1::DECISION_STS_TESTING;
        reason = absl::StrCat("MTA-STS testing (id ", policy_->id, "; ",
                              sts_note_,
                              "): deliver as usual, report failures; ", reason);
      } else if (!policy_ && txt_failed_ &&
                 options_.sts_discovery_failure_tempfail) {
        decision = v1::DECISION_TEMPFAIL;
        reason = absl::StrCat("MTA-STS discovery failed (",
                              sts_note_, ") and --sts-discovery-failure="
                              "tempfail; ", reason);
      } else {
        decision = v1::DECISION_NONE;
        // Without a policy because discovery failed, not because there is
        // none: a fallback for now, not a fact to cache or share.
        response.set_provisional(!policy_ && (txt_failed_ || fetch_failed_));
        reason = absl::StrCat(
            policy_ ? "MTA-STS mode none" : "no MTA-STS policy", " (",
            sts_note_, "); ", reason);
      }
    }
    response.set_decision(decision);
    if (plan_.kind == dane::MxPlan::Kind::kHosts && !plan_.reason.empty()) {
      absl::StrAppend(&reason, "; ", plan_.reason);
    }
    response.set_reason(std::move(reason));
    if (ttl != absl::InfiniteDuration()) {
      response.mutable_ttl()->set_seconds(
          std::max<int64_t>(0, absl::ToInt64Seconds(ttl)));
    }
  }
  std::move(done_)(std::move(response));
}

}  // namespace

PolicyResolver::PolicyResolver(DnsClient& dns, HttpsFetcher& https,
                               sts::PolicyStore& store, Options options,
                               SharedTier* tier)
    : dns_(dns),
      store_(store),
      options_(options),
      tier_(tier),
      fetcher_(dns, https, store, options.sts_https_port, tier) {}

size_t PolicyResolver::RefreshDuePolicies(size_t limit) {
  const std::vector<std::string> due = store_.DueForRefresh(limit);
  for (const std::string& domain : due) {
    Resolve(domain, [](absl::StatusOr<v1::ResolveResponse>) {});
  }
  return due.size();
}

void PolicyResolver::Resolve(absl::string_view domain, Callback done) {
  absl::StatusOr<std::string> normalized = NormalizeDomain(domain);
  if (!normalized.ok()) {
    std::move(done)(normalized.status());
    return;
  }
  std::make_shared<Resolution>(dns_, store_, fetcher_, tier_, options_,
                               *std::move(normalized), std::move(done))
      ->Start();
}

}  // namespace mxpolicy
