#include "server/src/cache/decision_cache.h"

#include <algorithm>
#include <thread>

#include "absl/hash/hash.h"

namespace mxpolicy {

DecisionCache::DecisionCache(const Clock& clock, Options options)
    : clock_(clock) {
  size_t n = options.shards;
  if (n == 0) n = 4 * std::max(1u, std::thread::hardware_concurrency());
  n = std::max<size_t>(1, std::min(n, std::max<size_t>(1, options.max_entries)));
  per_shard_ = std::max<size_t>(1, options.max_entries / n);
  for (size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

DecisionCache::Shard& DecisionCache::ShardFor(absl::string_view domain) {
  return *shards_[absl::HashOf(domain) % shards_.size()];
}

std::optional<DecisionCache::Hit> DecisionCache::Lookup(
    absl::string_view domain) {
  const absl::Time now = clock_.Now();
  Shard& shard = ShardFor(domain);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.index.find(domain);
  if (it == shard.index.end()) return std::nullopt;
  auto entry = it->second;
  if (now >= entry->expires) {
    shard.index.erase(it);
    shard.lru.erase(entry);
    return std::nullopt;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, entry);  // most recent
  Hit hit{entry->response, entry->expires - now, false};
  if (now >= entry->refresh_at && !entry->refreshing) {
    entry->refreshing = true;
    hit.refresh = true;
  }
  return hit;
}

void DecisionCache::Insert(absl::string_view domain, std::string response,
                           absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration()) return;
  const absl::Time now = clock_.Now();
  // Refresh-ahead window: the last eighth of the TTL, minus up to another
  // sixteenth per domain so that entries stored together do not refresh
  // together.
  const double spread = static_cast<double>(absl::HashOf(domain) % 1024) / 1024;
  const absl::Time refresh_at = now + ttl * (7.0 / 8.0 - spread / 16.0);
  Shard& shard = ShardFor(domain);
  absl::MutexLock lock(&shard.mu);
  if (auto it = shard.index.find(domain); it != shard.index.end()) {
    auto entry = it->second;
    shard.index.erase(it);
    shard.lru.erase(entry);
  }
  while (shard.lru.size() >= per_shard_) {
    shard.index.erase(shard.lru.back().key);
    shard.lru.pop_back();
    ++shard.evictions;
  }
  shard.lru.push_front(Entry{std::string(domain), std::move(response),
                             now + ttl, refresh_at, false});
  shard.index.emplace(shard.lru.front().key, shard.lru.begin());
}

bool DecisionCache::Erase(absl::string_view domain) {
  Shard& shard = ShardFor(domain);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.index.find(domain);
  if (it == shard.index.end()) return false;
  auto entry = it->second;
  shard.index.erase(it);
  shard.lru.erase(entry);
  return true;
}

size_t DecisionCache::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    n += shard->lru.size();
  }
  return n;
}

uint64_t DecisionCache::evictions() const {
  uint64_t n = 0;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    n += shard->evictions;
  }
  return n;
}

}  // namespace mxpolicy
