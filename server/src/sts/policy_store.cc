#include "server/src/sts/policy_store.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace mxpolicy::sts {

void PolicyStore::Expire(Entry& entry, absl::Time now) const {
  if (entry.policy && now >= entry.policy->expires_at) entry.policy.reset();
}

absl::Duration PolicyStore::RefreshDelay(absl::string_view domain,
                                         absl::Time fetched,
                                         absl::Duration max_age) const {
  // About daily, but always well before expiry (RFC 8461 §10.2): at most
  // half of max_age, plus jitter of at most a quarter of that.
  const absl::Duration base = std::min(options_.refresh_after, max_age / 2);
  // Deterministic per (domain, fetch) so that replicas and tests agree, yet
  // spread over the window so that refreshes do not come in waves.
  const int64_t window =
      absl::ToInt64Seconds(std::min(options_.refresh_jitter, base / 4));
  if (window <= 0) return base;
  const size_t h = absl::HashOf(domain, absl::ToUnixSeconds(fetched));
  return base +
         absl::Seconds(static_cast<int64_t>(h % static_cast<size_t>(window)));
}

StorePlan PolicyStore::Plan(absl::string_view domain, const TxtState& txt) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  Entry& entry = entries_[domain];
  Expire(entry, now);
  StorePlan plan;
  plan.cached = entry.policy;
  switch (txt.kind) {
    case TxtState::Kind::kAbsent:
    case TxtState::Kind::kFailed:
      plan.note =
          txt.kind == TxtState::Kind::kAbsent
              ? (plan.cached ? "no valid TXT record; cached policy "
                               "applies until it expires (RFC 8461 "
                               "§3.3)"
                             : "no MTA-STS TXT record")
              : (plan.cached ? "TXT lookup failed; cached policy applies"
                             : "TXT lookup failed and nothing is "
                               "cached");
      // D5: the daily refresh happens whatever the state of the TXT record.
      if (plan.cached && now >= entry.refresh_at && now >= entry.retry_after) {
        plan.fetch = true;
        plan.refresh = true;
        plan.fetch_id = plan.cached->id;
        absl::StrAppend(&plan.note, "; proactive daily refresh");
      }
      break;
    case TxtState::Kind::kValid: {
      const bool same_id = plan.cached && plan.cached->id == txt.id;
      const bool refresh_due = same_id && now >= entry.refresh_at;
      if (same_id && !refresh_due) {
        plan.note = "TXT id unchanged; cached policy applies";
        break;
      }
      if (entry.failed_id == txt.id && now < entry.retry_after) {
        plan.note =
            absl::StrCat("back-off after a failed fetch of id ", txt.id,
                         " until ", absl::FormatTime(entry.retry_after));
        break;
      }
      plan.fetch = true;
      plan.fetch_id = txt.id;
      plan.refresh = refresh_due;
      plan.note = refresh_due   ? "proactive daily refresh"
                  : plan.cached ? "TXT id changed; fetching the new policy"
                                : "fetching the policy";
      break;
    }
  }
  // Nothing cached and no back-off running: keep no state for the domain.
  if (!entry.policy && now >= entry.retry_after) entries_.erase(domain);
  return plan;
}

void PolicyStore::MakeRoom(absl::Time now) {
  if (entries_.size() < options_.max_entries) return;
  // Entries without a policy (expired, or only a back-off) go first.
  for (auto it = entries_.begin(); it != entries_.end();) {
    Expire(it->second, now);
    if (!it->second.policy) {
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
  while (entries_.size() >= options_.max_entries && !entries_.empty()) {
    auto victim = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.policy->expires_at < victim->second.policy->expires_at) {
        victim = it;
      }
    }
    if (victim->second.policy->policy.mode == Mode::kEnforce) {
      ++enforce_evictions_;
    }
    entries_.erase(victim);
    ++evictions_;
  }
}

CachedPolicy PolicyStore::FetchSucceeded(absl::string_view domain,
                                         absl::string_view id, Policy policy) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (!entries_.contains(domain)) MakeRoom(now);
  Entry& entry = entries_[domain];
  CachedPolicy cached;
  cached.id = std::string(id);
  cached.fetched_at = now;
  cached.expires_at = now + policy.max_age;
  cached.policy = std::move(policy);
  entry.policy = cached;
  entry.failed_id.clear();
  entry.retry_after = absl::InfinitePast();
  entry.refresh_at =
      now + RefreshDelay(domain, now, entry.policy->policy.max_age);
  Expire(entry, now);  // max_age 0
  if (!entry.policy) entries_.erase(domain);
  return cached;
}

bool PolicyStore::Restore(absl::string_view domain, CachedPolicy policy) {
  const absl::Time now = clock_.Now();
  if (policy.expires_at <= now) return false;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(domain);
  if (it != entries_.end()) {
    Expire(it->second, now);
    if (it->second.policy && it->second.policy->fetched_at >= policy.fetched_at) {
      return false;
    }
  } else {
    MakeRoom(now);
  }
  Entry& entry = entries_[domain];
  entry.refresh_at = policy.fetched_at +
                     RefreshDelay(domain, policy.fetched_at, policy.policy.max_age);
  entry.policy = std::move(policy);
  return true;
}

bool PolicyStore::FetchFailed(absl::string_view domain, absl::string_view id) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (!entries_.contains(domain)) MakeRoom(now);
  Entry& entry = entries_[domain];
  Expire(entry, now);
  entry.failed_id = std::string(id);
  entry.retry_after = now + options_.failure_backoff;
  const bool alert = entry.policy && entry.policy->policy.mode != Mode::kNone;
  if (alert) ++refresh_failures_;
  return alert;
}

std::vector<std::string> PolicyStore::DueForRefresh(size_t limit) const {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  std::vector<std::string> due;
  for (auto& [domain, entry] : entries_) {
    if (due.size() >= limit) break;
    Expire(entry, now);
    // Not while a back-off for a failed refresh runs (B9).
    if (entry.policy && now >= entry.refresh_at && now >= entry.retry_after) {
      due.push_back(domain);
    }
  }
  return due;
}

std::optional<CachedPolicy> PolicyStore::Get(absl::string_view domain) const {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(domain);
  if (it == entries_.end()) return std::nullopt;
  Expire(it->second, now);
  return it->second.policy;
}

void PolicyStore::Forget(absl::string_view domain) {
  absl::MutexLock lock(&mu_);
  entries_.erase(domain);
}

uint64_t PolicyStore::evictions() const {
  absl::MutexLock lock(&mu_);
  return evictions_;
}

size_t PolicyStore::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

size_t PolicyStore::policies() const {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [domain, entry] : entries_) {
    if (entry.policy && entry.policy->expires_at > now) ++n;
  }
  return n;
}

uint64_t PolicyStore::enforce_evictions() const {
  absl::MutexLock lock(&mu_);
  return enforce_evictions_;
}

uint64_t PolicyStore::refresh_failures() const {
  absl::MutexLock lock(&mu_);
  return refresh_failures_;
}

}  // namespace mxpolicy::sts
