// CachingResolver: PolicyResolver behind the L1 DecisionCache, with
// single-flight (concurrent misses for one domain share one resolution),
// refresh-ahead (a hit near expiry re-resolves in the background, so steady
// traffic never waits on DNS), admission control (a bound on concurrent
// cold resolutions) and the TTL rules of DESIGN.md "Caching". Answers are
// serialized ResolveResponses, ready for the wire.
#ifndef MXPOLICY_RESOLVER_CACHING_RESOLVER_H_
#define MXPOLICY_RESOLVER_CACHING_RESOLVER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/src/cache/decision_cache.h"
#include "server/src/l2/shared_tier.h"
#include "server/src/resolver/policy_resolver.h"

namespace mxpolicy {

// Contract: Resolve() never blocks; `done` runs exactly once — at once for
// cache hits, INVALID_ARGUMENT and RESOURCE_EXHAUSTED, else when the shared
// resolution completes (on an adapter thread). A caller that stops waiting
// simply ignores its callback: the resolution runs on and fills the cache.
// Thread-safe.
class CachingResolver {
 public:
  struct Options {
    // Longest a decision is cached (and the TTL callers are told).
    absl::Duration max_ttl = absl::Hours(1);
    // Shortest TTL of a positive decision (DANE_*, STS_*, NONE).
    absl::Duration min_positive_ttl = absl::Seconds(60);
    // How long a TEMPFAIL is cached, so a broken domain cannot melt DNS.
    absl::Duration tempfail_ttl = absl::Seconds(30);
    // Bound on concurrent cold resolutions; beyond it RESOURCE_EXHAUSTED.
    size_t max_cold_resolutions = 1000;
  };

  using Callback = absl::AnyInvocable<void(absl::StatusOr<std::string>) &&>;

  struct Counters {
    uint64_t hits = 0, misses = 0, joins = 0, refreshes = 0, rejected = 0;
    // Background refreshes that ended in an error or a TEMPFAIL.
    uint64_t refresh_failures = 0;
  };

  // `tier` (may be null): the shared L2 tier. A miss asks it before
  // resolving (an answer found there is served as CACHE and kept in L1 for
  // its remaining time); fresh decisions other than TEMPFAIL are shared
  // there until their TTL ends; Invalidate drops the domain there too.
  CachingResolver(PolicyResolver& resolver, DecisionCache& cache,
                  sts::PolicyStore& store, Options options,
                  SharedTier* tier = nullptr);

  // The serialized ResolveResponse for `domain`: from the cache (source
  // CACHE, ttl = time left) or freshly resolved (source FRESH).
  void Resolve(absl::string_view domain, Callback done);

  // The answer when it is ready at once — a cache hit (which may start a
  // background refresh, as in Resolve) or INVALID_ARGUMENT for a bad domain
  // — else nullopt, and the caller goes on with Resolve(). Lets the RPC layer
  // answer hits inline without setting up a cancellable call.
  std::optional<absl::StatusOr<std::string>> TryNow(absl::string_view domain);

  struct Invalidated {
    std::string domain;
    bool decision = false;
    bool policy = false;
  };
  // Drops the domain's cached decision and MTA-STS policy.
  // INVALID_ARGUMENT for a bad domain.
  absl::StatusOr<Invalidated> Invalidate(absl::string_view domain);

  Counters counters() const;

 private:
  // The cached answer for the normalized `key`, counted as a hit.
  std::optional<std::string> FromCache(const std::string& key);
  // Starts (or joins) the resolution of `domain`; `done` may be empty for
  // a background refresh. Returns false when admission control refused.
  bool StartOrJoin(const std::string& domain, Callback done, bool refresh);
  // Resolves `domain` for a started flight, first asking the L2 tier when
  // `ask_tier`.
  void Launch(const std::string& domain, bool ask_tier);
  // An answer from the L2 tier, if it is valid and current: serves the
  // flight and returns true.
  bool CompleteFromTier(const std::string& domain, const StoredDecision& stored);
  // True when `response` would weaken an `enforce` policy held in the store.
  bool WeakerThanLocalPolicy(const v1::ResolveResponse& response) const;
  void Complete(const std::string& domain,
                absl::StatusOr<v1::ResolveResponse> result);
  // Hands `wire` to the flight's waiters and ends the flight.
  void Finish(const std::string& domain, const absl::StatusOr<std::string>& wire,
              bool failed);
  absl::Duration CacheTtl(const v1::ResolveResponse& response) const;

  PolicyResolver& resolver_;
  DecisionCache& cache_;
  sts::PolicyStore& store_;
  const Options options_;
  SharedTier* const tier_;

  mutable absl::Mutex mu_;
  struct Flight {
    std::vector<Callback> waiters;
    bool refresh = false;  // started by refresh-ahead
  };
  absl::flat_hash_map<std::string, Flight> flights_ ABSL_GUARDED_BY(mu_);
  size_t cold_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Counted without mu_: the hit path takes no process-wide lock.
  std::atomic<uint64_t> hits_{0}, misses_{0}, joins_{0}, refreshes_{0},
      rejected_{0}, refresh_failures_{0};
};

}  // namespace mxpolicy

#endif  // MXPOLICY_RESOLVER_CACHING_RESOLVER_H_
