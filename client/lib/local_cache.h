// LocalCache: the client library's cache of answers, keyed by normalised
// domain, bounded in entries (least recently used goes first). Unlike the
// server's DecisionCache it keeps an expired entry (until it is evicted or
// its stale window has passed) so that the client can answer from it while
// the service is unreachable.
#ifndef MXPOLICY_CLIENT_LIB_LOCAL_CACHE_H_
#define MXPOLICY_CLIENT_LIB_LOCAL_CACHE_H_

#include <list>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mxpolicy/v1/mxpolicy.pb.h"

namespace mxpolicy::client_internal {

// Contract: thread-safe (one mutex; O(1) per call, no I/O).
class LocalCache {
 public:
  struct Entry {
    v1::ResolveResponse response;
    absl::Time expires;
  };

  // max_entries 0: nothing is ever stored.
  LocalCache(size_t max_entries, absl::Duration stale_window)
      : max_entries_(max_entries), stale_window_(stale_window) {}

  // The entry if it has not expired at `now`, marked as recently used.
  std::optional<Entry> Fresh(absl::string_view key, absl::Time now);
  // The entry if `now` is before its expiry + the stale window.
  std::optional<Entry> Stale(absl::string_view key, absl::Time now);
  // Stores the answer until now + its ttl (a ttl of 0 stores nothing).
  void Put(absl::string_view key, const v1::ResolveResponse& response,
           absl::Time now);

  size_t size() const;

 private:
  struct Node {
    std::string key;
    Entry entry;
  };
  // The node for `key` moved to the front, or nullptr. Requires mu_.
  Node* Touch(absl::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  const absl::Duration stale_window_;
  mutable absl::Mutex mu_;
  std::list<Node> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  absl::flat_hash_map<std::string, std::list<Node>::iterator> index_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace mxpolicy::client_internal

#endif  // MXPOLICY_CLIENT_LIB_LOCAL_CACHE_H_
