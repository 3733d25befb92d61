#include "server/src/resolver/caching_resolver.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/src/common/domain.h"

namespace mxpolicy {
namespace {

// Protobuf merges a message parsed from concatenated encodings: later
// scalars win, sub-messages merge. Appending these fields to a cached
// response turns it into "source CACHE, ttl = time left" without parsing.
std::string CacheSuffix(absl::Duration remaining) {
  v1::ResolveResponse suffix;
  suffix.set_source(v1::SOURCE_CACHE);
  suffix.mutable_ttl()->set_seconds(
      std::max<int64_t>(0, absl::ToInt64Seconds(remaining)));
  return suffix.SerializeAsString();
}

}  // namespace

CachingResolver::CachingResolver(PolicyResolver& resolver,
                                 DecisionCache& cache, sts::PolicyStore& store,
                                 Options options, SharedTier* tier)
    : resolver_(resolver),
      cache_(cache),
      store_(store),
      options_(options),
      tier_(tier) {}

absl::Duration CachingResolver::CacheTtl(
    const v1::ResolveResponse& response) const {
  const absl::Duration dns = absl::Seconds(response.ttl().seconds());
  if (response.provisional()) {
    return std::min(options_.tempfail_ttl, options_.max_ttl);
  }
  switch (response.decision()) {
    case v1::DECISION_TEMPFAIL:
    case v1::DECISION_UNSPECIFIED:
      return std::min(options_.tempfail_ttl, options_.max_ttl);
    case v1::DECISION_NO_MAIL:  // negative answers: the DNS TTL
      return std::min(dns, options_.max_ttl);
    default:
      // The cap wins over the floor when an operator sets it lower.
      return std::min(std::max(dns, options_.min_positive_ttl),
                      options_.max_ttl);
  }
}

std::optional<std::string> CachingResolver::FromCache(const std::string& key) {
  std::optional<DecisionCache::Hit> hit = cache_.Lookup(key);
  if (!hit) return std::nullopt;
  hits_.fetch_add(1, std::memory_order_relaxed);
  // Refresh-ahead: re-resolve in the background before the entry expires.
  if (hit->refresh) StartOrJoin(key, nullptr, /*refresh=*/true);
  hit->response += CacheSuffix(hit->remaining);
  return std::move(hit->response);
}

std::optional<absl::StatusOr<std::string>> CachingResolver::TryNow(
    absl::string_view domain) {
  absl::StatusOr<std::string> key = NormalizeDomain(domain);
  if (!key.ok()) return key.status();
  if (std::optional<std::string> hit = FromCache(*key)) return *std::move(hit);
  return std::nullopt;
}

void CachingResolver::Resolve(absl::string_view domain, Callback done) {
  absl::StatusOr<std::string> key = NormalizeDomain(domain);
  if (!key.ok()) {
    std::move(done)(key.status());
    return;
  }
  if (std::optional<std::string> hit = FromCache(*key)) {
    std::move(done)(*std::move(hit));
    return;
  }
  StartOrJoin(*key, std::move(done), /*refresh=*/false);
}

bool CachingResolver::StartOrJoin(const std::string& domain, Callback done,
                                  bool refresh) {
  {
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(domain);
    if (it != flights_.end()) {
      if (done) {
        it->second.waiters.push_back(std::move(done));
        joins_.fetch_add(1, std::memory_order_relaxed);
      }
      return true;
    }
    if (cold_in_flight_ >= options_.max_cold_resolutions) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      if (!done) return false;  // a refresh simply does not happen
      // Released below, outside the lock.
    } else {
      ++cold_in_flight_;
      (refresh ? refreshes_ : misses_).fetch_add(1, std::memory_order_relaxed);
      Flight& flight = flights_[domain];
      flight.refresh = refresh;
      if (done) flight.waiters.push_back(std::move(done));
      done = nullptr;
    }
  }
  if (done) {
    std::move(done)(absl::ResourceExhaustedError(absl::StrCat(
        "too many concurrent cold resolutions (", options_.max_cold_resolutions,
        "); retry shortly")));
    return false;
  }
  // A refresh wants new data: it never takes the tier's copy.
  Launch(domain, /*ask_tier=*/!refresh);
  return true;
}

void CachingResolver::Launch(const std::string& domain, bool ask_tier) {
  if (tier_ != nullptr && ask_tier) {
    tier_->GetDecision(domain, [this, domain](
                                   std::optional<StoredDecision> stored) {
      if (stored.has_value() && CompleteFromTier(domain, *stored)) return;
      Launch(domain, /*ask_tier=*/false);
    });
    return;
  }
  resolver_.Resolve(domain,
                    [this, domain](absl::StatusOr<v1::ResolveResponse> r) {
                      Complete(domain, std::move(r));
                    });
}

bool CachingResolver::WeakerThanLocalPolicy(
    const v1::ResolveResponse& response) const {
  // Redis is trusted infrastructure, but a shared answer never overrides an
  // `enforce` policy this replica holds itself: such a domain resolves here.
  std::optional<sts::CachedPolicy> local = store_.Get(response.domain());
  return local.has_value() && local->policy.mode == sts::Mode::kEnforce &&
         (response.decision() == v1::DECISION_NONE ||
          response.decision() == v1::DECISION_STS_TESTING);
}

bool CachingResolver::CompleteFromTier(const std::string& domain,
                                       const StoredDecision& stored) {
  // Another replica's answer, read back from Redis: untrusted until it
  // parses as an answer for this very domain with a real decision.
  const absl::Duration remaining = std::min(
      stored.expires_at - store_.clock().Now(), options_.max_ttl);
  v1::ResolveResponse response;
  if (remaining <= absl::ZeroDuration() ||
      !response.ParseFromString(stored.response) ||
      response.domain() != domain ||
      response.decision() == v1::DECISION_UNSPECIFIED ||
      response.decision() == v1::DECISION_TEMPFAIL || response.provisional() ||
      WeakerThanLocalPolicy(response)) {
    return false;
  }
  response.mutable_ttl()->set_seconds(absl::ToInt64Seconds(remaining));
  response.set_source(v1::SOURCE_FRESH);  // as stored in L1; hits say CACHE
  std::string wire = response.SerializeAsString();
  cache_.Insert(domain, wire, remaining);
  wire += CacheSuffix(remaining);
  Finish(domain, wire, /*failed=*/false);
  return true;
}

void CachingResolver::Complete(const std::string& domain,
                               absl::StatusOr<v1::ResolveResponse> result) {
  const bool failed =
      !result.ok() || result->decision() == v1::DECISION_TEMPFAIL ||
      result->provisional();
  absl::StatusOr<std::string> wire;
  if (result.ok()) {
    const absl::Duration ttl = CacheTtl(*result);
    result->mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    wire = result->SerializeAsString();
    cache_.Insert(domain, *wire, ttl);
    if (tier_ != nullptr && !failed) {
      tier_->PutDecision(domain,
                         StoredDecision{.response = *wire,
                                        .expires_at = store_.clock().Now() + ttl});
    }
  } else {
    wire = result.status();
  }
  Finish(domain, wire, failed);
}

void CachingResolver::Finish(const std::string& domain,
                             const absl::StatusOr<std::string>& wire,
                             bool failed) {
  std::vector<Callback> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(domain);
    if (it != flights_.end()) {
      waiters = std::move(it->second.waiters);
      if (it->second.refresh && failed) {
        refresh_failures_.fetch_add(1, std::memory_order_relaxed);
      }
      flights_.erase(it);
    }
    --cold_in_flight_;
  }
  for (Callback& cb : waiters) std::move(cb)(wire);
}

absl::StatusOr<CachingResolver::Invalidated> CachingResolver::Invalidate(
    absl::string_view domain) {
  absl::StatusOr<std::string> key = NormalizeDomain(domain);
  if (!key.ok()) return key.status();
  Invalidated out;
  out.domain = *key;
  out.decision = cache_.Erase(*key);
  out.policy = store_.Get(*key).has_value();
  store_.Forget(*key);
  if (tier_ != nullptr) tier_->Forget(*key);
  return out;
}

CachingResolver::Counters CachingResolver::counters() const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  return Counters{.hits = hits_.load(kRelaxed),
                  .misses = misses_.load(kRelaxed),
                  .joins = joins_.load(kRelaxed),
                  .refreshes = refreshes_.load(kRelaxed),
                  .rejected = rejected_.load(kRelaxed),
                  .refresh_failures = refresh_failures_.load(kRelaxed)};
}

}  // namespace mxpolicy
