// PolicyStore: the MTA-STS policy cache and its RFC 8461 rules (§3.3, §5.1,
// §10.2; SPEC D1–D7, B9, B10, A9). It decides — from the TXT record's state
// and the clock — whether a policy must be fetched and which cached policy
// applies meanwhile; it performs no I/O. Time comes from an injected Clock.
#ifndef MXPOLICY_STS_POLICY_STORE_H_
#define MXPOLICY_STS_POLICY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/src/common/clock.h"
#include "server/src/sts/policy.h"

namespace mxpolicy::sts {

// A policy as cached (SPEC D1).
struct CachedPolicy {
  std::string id;  // the TXT id that triggered the successful fetch (D2)
  Policy policy;
  absl::Time fetched_at;  // only a successful HTTPS fetch moves it (D1)
  absl::Time expires_at;  // fetched_at + max_age
};

// What the TXT lookup said.
struct TxtState {
  enum class Kind {
    kValid,   // exactly one valid v=STSv1 record; `id` set
    kAbsent,  // NXDOMAIN, NODATA, no or several v=STSv1 records, invalid
    kFailed,  // SERVFAIL, timeout, bogus (A9: discovery failed)
  };
  Kind kind = Kind::kAbsent;
  std::string id;
};

struct StorePlan {
  // Start a fetch for `fetch_id` (B1). False during a back-off (B9) or
  // when the cached policy is current.
  bool fetch = false;
  std::string fetch_id;
  // True when the fetch is a proactive refresh (D5) of a current policy:
  // callers need not wait for it.
  bool refresh = false;
  // The policy that applies now, if any (D3: even when TXT is gone).
  std::optional<CachedPolicy> cached;
  // For logs and reasons: "TXT id unchanged", "back-off after failed fetch
  // of id X until T", ...
  std::string note;
};

// Contract: every method is thread-safe; none blocks on I/O. Entries are
// dropped when they expire. Defaults: 5-minute back-off (B9), refresh once
// the policy is a day old — or half its max_age if that is sooner — with up
// to an hour (at most a quarter of the delay) of jitter (D5).
class PolicyStore {
 public:
  struct Options {
    absl::Duration failure_backoff = absl::Minutes(5);
    absl::Duration refresh_after = absl::Hours(24);
    absl::Duration refresh_jitter = absl::Hours(1);
    // Policy budget, apart from the decision cache's so that decision churn
    // never evicts the security state. When full, domains without a policy
    // go first, then the policy closest to its expiry (counted: evicting an
    // unexpired policy reopens that domain's downgrade window, §10.2).
    size_t max_entries = 100000;
  };
  explicit PolicyStore(const Clock& clock) : PolicyStore(clock, Options()) {}
  PolicyStore(const Clock& clock, Options options)
      : clock_(clock), options_(options) {}

  // Decides after the TXT lookup of `domain` (SPEC D2, D3, D5, B9, A9).
  StorePlan Plan(absl::string_view domain, const TxtState& txt);

  // A fetch of `id` succeeded with `policy`: replaces the entry (D2),
  // including by a `mode: none` policy (D6), and returns it as cached. A
  // max_age of 0 is returned but not kept (it expires at once).
  CachedPolicy FetchSucceeded(absl::string_view domain, absl::string_view id,
                              Policy policy);

  // A policy another replica fetched (the shared L2 tier), already parsed
  // and checked by the caller: kept as if fetched at `fetched_at` — unless
  // it has expired or the store already holds a policy for the domain
  // fetched no earlier (then nothing changes). True when it was kept.
  bool Restore(absl::string_view domain, CachedPolicy policy);

  // A fetch of `id` failed or its body did not parse (D4): the entry is
  // kept until it expires; no new fetch for this id for the back-off time.
  // Returns true when this was a failed refresh of a cached non-`none`
  // policy, which operators must be told about (D5, RFC 8461 §10.2).
  bool FetchFailed(absl::string_view domain, absl::string_view id);

  // Domains whose cached policy is due for its proactive refresh (D5), at
  // most `limit`, oldest first is not guaranteed. A domain is returned
  // again on later calls until a fetch succeeds or fails for it.
  std::vector<std::string> DueForRefresh(size_t limit) const;

  // The current (unexpired) policy of `domain`.
  std::optional<CachedPolicy> Get(absl::string_view domain) const;

  // Drops the domain's policy and back-off (operator invalidation).
  void Forget(absl::string_view domain);

  // Failed refreshes of non-`none` policies since start (D5 alert counter).
  uint64_t refresh_failures() const;

  const Clock& clock() const { return clock_; }

  // Unexpired policies evicted for lack of room since start, and those of
  // them in mode `enforce` (each reopens a downgrade window: alert on it).
  uint64_t evictions() const;
  uint64_t enforce_evictions() const;
  // Entries (policies and fetch back-offs) held.
  size_t size() const;
  // Unexpired policies held; O(entries), for metrics.
  size_t policies() const;

 private:
  struct Entry {
    std::optional<CachedPolicy> policy;
    std::string failed_id;  // back-off: the id whose fetch failed
    absl::Time retry_after = absl::InfinitePast();
    absl::Time refresh_at = absl::InfiniteFuture();
  };

  // Drops an expired policy. Requires mu_.
  void Expire(Entry& entry, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes room for one more entry (see Options::max_entries).
  void MakeRoom(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration RefreshDelay(absl::string_view domain, absl::Time fetched,
                              absl::Duration max_age) const;

  const Clock& clock_;
  const Options options_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t refresh_failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t enforce_evictions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mxpolicy::sts

#endif  // MXPOLICY_STS_POLICY_STORE_H_
