// SharedTier: the optional L2 cache shared by a fleet of mxpolicyd replicas
// (DESIGN.md "Caching", L2). It holds MTA-STS policies and final decisions so
// that replicas answer alike and a restart or rollout does not reopen the
// first-contact downgrade window that a cached policy closes (RFC 8461 §10.2).
// This header is the interface only, no I/O; RedisTier implements it. The
// tier is a cache, never an authority: everything read from it is untrusted
// and the caller re-parses / validates it, and the service keeps working
// (L1 only) when the tier is down — every failure reads as a miss.
#ifndef MXPOLICY_L2_SHARED_TIER_H_
#define MXPOLICY_L2_SHARED_TIER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace mxpolicy {

// An MTA-STS policy as fetched over HTTPS (RFC 8461 §3.2, §3.3).
struct StoredPolicy {
  std::string id;    // the TXT record's id the policy was fetched under
  std::string body;  // raw policy text; the caller re-parses it (untrusted)
  absl::Time fetched_at;
  absl::Time expires_at;  // fetched_at + max_age
};

// A final decision for a domain.
struct StoredDecision {
  std::string response;  // serialized mxpolicy.v1.ResolveResponse (untrusted)
  absl::Time expires_at;
};

// Contract:
// - Nothing blocks the caller. A get's `done` runs exactly once — on a tier
//   thread, or inline when the tier rejects the operation at once — within
//   about the configured timeout, even when the backend hangs or is down.
//   `done` must not block (it may run on one of few tier threads), must not
//   destroy the tier, and must not Stop() it from a tier thread.
// - std::nullopt means "nothing usable": a miss, a backend error, a timeout,
//   an overloaded tier, or a stored value that failed validation (garbage,
//   wrong version, expired). The causes are told apart only in stats().
// - Puts and Forget are fire and forget; they may be dropped under overload
//   or while the backend is down (a cache may forget).
// - Domains are expected normalised by the caller (lowercase A-labels, no
//   trailing dot); the implementation still rejects other bytes (→ nullopt).
// Thread-safe.
class SharedTier {
 public:
  using PolicyCallback =
      absl::AnyInvocable<void(std::optional<StoredPolicy>) &&>;
  using DecisionCallback =
      absl::AnyInvocable<void(std::optional<StoredDecision>) &&>;

  virtual ~SharedTier() = default;

  // The stored policy of `domain`, if any and still unexpired.
  virtual void GetPolicy(std::string domain, PolicyCallback done) = 0;
  // The stored decision of `domain`, if any and still unexpired.
  virtual void GetDecision(std::string domain, DecisionCallback done) = 0;

  // Stores the value until its expires_at; nothing is stored when it has
  // already expired or is over the tier's size limits (counted as an error).
  virtual void PutPolicy(std::string domain, StoredPolicy policy) = 0;
  virtual void PutDecision(std::string domain, StoredDecision decision) = 0;

  // Drops both the policy and the decision of `domain` (operator
  // invalidation). Fire and forget, like the puts.
  virtual void Forget(std::string domain) = 0;

  // Shuts the tier down ahead of its destruction, for owners whose other
  // components keep a raw SharedTier* and may still call it (the resolver's
  // DNS/HTTPS completions while the daemon destroys those adapters):
  // - afterwards every get completes inline with std::nullopt (counted as
  //   dropped) and every put or Forget is ignored — no I/O, no thread;
  // - Stop() completes every queued get with std::nullopt on the calling
  //   thread, holding no lock: those callbacks may call the tier again (their
  //   gets complete inline, their puts are ignored, Stop() returns at once);
  // - it returns once no tier thread runs: a command already in flight
  //   completes first (its get with its result), which takes at most about
  //   the tier's timeout; queued work never reaches the backend.
  // Idempotent: a later call returns at once, a concurrent one from another
  // thread when the first is done. Not from a `done` running on a tier
  // thread. The destructor of an implementation calls it.
  virtual void Stop() = 0;

  // Monotonic counters since construction.
  struct Stats {
    uint64_t policy_hits = 0;
    uint64_t policy_misses = 0;  // the backend answered: no such key
    uint64_t decision_hits = 0;
    uint64_t decision_misses = 0;
    // Backend error replies, I/O errors on an established connection,
    // stored values that failed validation, values refused by a put.
    uint64_t errors = 0;
    // Operations whose deadline passed, in the queue or in flight.
    uint64_t timeouts = 0;
    // Operations refused because the queue was full or the tier stopped.
    uint64_t dropped = 0;
    // Operations that never reached the backend: failed fast during the
    // back-off after a failure, or their own connect attempt failed.
    uint64_t unavailable = 0;
    uint64_t connect_failures = 0;
    // Connections established after a failure (lost or never reached).
    uint64_t reconnects = 0;
  };
  virtual Stats stats() const = 0;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_L2_SHARED_TIER_H_
