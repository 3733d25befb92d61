// DecisionCache: the L1 cache of final decisions (DESIGN.md "Caching"): N
// shards, each with its own lock and LRU list, bounded by an entry budget.
// Values are serialized ResolveResponses, so a hit is a copy of bytes that
// the RPC layer sends as they are. Expiry and refresh-ahead use an injected
// Clock. MTA-STS policies are not here: they live in sts::PolicyStore, kept
// apart so that decision churn never evicts the security state.
#ifndef MXPOLICY_CACHE_DECISION_CACHE_H_
#define MXPOLICY_CACHE_DECISION_CACHE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/src/common/clock.h"

namespace mxpolicy {

// Contract: thread-safe; every method takes one shard lock for O(1) work
// and never blocks on I/O.
class DecisionCache {
 public:
  struct Options {
    // Shards (each its own mutex and LRU); 0 picks 4 × hardware threads.
    size_t shards = 0;
    // Entry budget across all shards; the least recently used entry of a
    // full shard makes room.
    size_t max_entries = 100000;
  };

  struct Hit {
    std::string response;     // serialized ResolveResponse
    absl::Duration remaining;  // time left before expiry
    // True for exactly one caller once the entry is near expiry (the last
    // eighth of its TTL, jittered per domain): that caller starts the
    // background refresh (refresh-ahead).
    bool refresh = false;
  };

  DecisionCache(const Clock& clock, Options options);

  // The unexpired entry for `domain`, marked as recently used.
  std::optional<Hit> Lookup(absl::string_view domain);

  // Stores `response` for `ttl` (≤ 0: not stored).
  void Insert(absl::string_view domain, std::string response,
              absl::Duration ttl);

  // Drops the entry; true when there was one.
  bool Erase(absl::string_view domain);

  size_t size() const;
  uint64_t evictions() const;
  size_t shard_count() const { return shards_.size(); }

 private:
  struct Entry {
    std::string key;
    std::string response;
    absl::Time expires;
    absl::Time refresh_at;
    bool refreshing = false;
  };
  struct Shard {
    mutable absl::Mutex mu;
    std::list<Entry> lru ABSL_GUARDED_BY(mu);  // front = most recent
    absl::flat_hash_map<absl::string_view, std::list<Entry>::iterator> index
        ABSL_GUARDED_BY(mu);
    uint64_t evictions ABSL_GUARDED_BY(mu) = 0;
  };

  Shard& ShardFor(absl::string_view domain);

  const Clock& clock_;
  size_t per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_CACHE_DECISION_CACHE_H_
