#include "client/lib/local_cache.h"

#include <utility>

namespace mxpolicy::client_internal {

LocalCache::Node* LocalCache::Touch(absl::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &*it->second;
}

std::optional<LocalCache::Entry> LocalCache::Fresh(absl::string_view key,
                                                   absl::Time now) {
  absl::MutexLock lock(&mu_);
  Node* node = Touch(key);
  if (node == nullptr || now >= node->entry.expires) return std::nullopt;
  return node->entry;
}

std::optional<LocalCache::Entry> LocalCache::Stale(absl::string_view key,
                                                   absl::Time now) {
  absl::MutexLock lock(&mu_);
  Node* node = Touch(key);
  if (node == nullptr || now >= node->entry.expires + stale_window_) {
    return std::nullopt;
  }
  return node->entry;
}

void LocalCache::Put(absl::string_view key,
                     const v1::ResolveResponse& response, absl::Time now) {
  const absl::Duration ttl = absl::Seconds(response.ttl().seconds());
  if (max_entries_ == 0 || ttl <= absl::ZeroDuration()) return;
  absl::MutexLock lock(&mu_);
  if (Node* node = Touch(key)) {
    node->entry = Entry{response, now + ttl};
    return;
  }
  if (index_.size() >= max_entries_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Node{std::string(key), Entry{response, now + ttl}});
  index_.emplace(lru_.front().key, lru_.begin());
}

size_t LocalCache::size() const {
  absl::MutexLock lock(&mu_);
  return index_.size();
}

}  // namespace mxpolicy::client_internal
