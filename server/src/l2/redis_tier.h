// RedisTier: the SharedTier on Redis, through hiredis 0.14 (Debian 12). The
// blocking client library is wrapped Envoy-style: callers only enqueue into a
// bounded queue; a few worker threads, each with its own connection, run the
// commands with hiredis's synchronous API under socket timeouts. Values use
// the versioned, length-checked encoding of codec.h under the keys
// "mxpolicy:v1:policy:<domain>" and "mxpolicy:v1:decision:<domain>", stored
// with SET ... PX so Redis itself drops them at expiry, and optionally
// authenticated with an HMAC-SHA256 tag (Options::hmac_key).
#ifndef MXPOLICY_L2_REDIS_TIER_H_
#define MXPOLICY_L2_REDIS_TIER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/src/common/clock.h"
#include "server/src/l2/shared_tier.h"

namespace mxpolicy {

// Where a Redis URL points.
struct RedisEndpoint {
  std::string host;  // name, IPv4 literal or IPv6 literal (no brackets)
  int port = 6379;
  std::string user;      // Redis 6 ACL user; empty: "AUTH <password>"
  std::string password;  // empty: no AUTH (then no user either)
  int db = 0;            // SELECTed when not 0
};

// Parses redis://[user@ | [user]:password@]host[:port][/db]. User and
// password may be percent-encoded (needed for '@', ':' and '/'); an IPv6
// host goes in brackets; "user@" leaves the password to be given apart
// (RedisTier::Options::password). INVALID_ARGUMENT naming the problem for
// anything else, including rediss:// (hiredis 0.14 has no TLS) and unix
// sockets. The message never quotes the URL: a mistyped one may put the
// password anywhere (redis://user:pw/host has no '@').
absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url);

// Contract: that of SharedTier, with these specifics.
// - Every operation gets a deadline of now + `timeout` when enqueued. One
//   whose deadline passed in the queue completes with nullopt without I/O;
//   otherwise the worker gives the socket only the time left (connect, AUTH,
//   SELECT and the command all count), so a get completes within about
//   `timeout` (plus thread scheduling) even when Redis is stopped (SIGSTOP)
//   or unreachable. Host names are resolved by getaddrinfo() at connect
//   time, which the timeout does not bound: prefer an address literal.
// - A full queue drops the operation (stats().dropped; gets complete inline
//   with nullopt).
// - Any connection-level failure (I/O error, timeout, protocol error, AUTH or
//   SELECT refused) closes that worker's connection; the worker reconnects
//   by itself after a back-off doubling from `min_backoff` to `max_backoff`,
//   also when idle. While a worker backs off, its operations fail fast
//   (stats().unavailable) instead of waiting. An error *reply* to a command
//   (e.g. WRONGTYPE at the key) keeps the connection.
// - Stored values are untrusted: wrong type, version, kind, length, a
//   missing or wrong tag (with an hmac_key) or an expiry in the past read as
//   nullopt and count in stats().errors. Gets read with GETRANGE up to the
//   largest valid value (tag included), so a huge string at the key costs
//   no more than that; an empty string reads as a miss.
// - last_error() keeps the latest failure's text (hiredis's, Redis's reply
//   or the decoder's), for the caller to log. It names the endpoint as
//   host:port but never carries the user or the password.
// - Stop(): as SharedTier. A worker that has taken an operation but not yet
//   sent it completes it with nullopt (dropped); one with a command in
//   flight waits for it, at most `timeout` (getaddrinfo() aside).
// Thread-safe. The destructor calls Stop(); it must not race with other
// calls and must not run inside a callback.
class RedisTier final : public SharedTier {
 public:
  struct Options {
    std::string url;  // see ParseRedisUrl
    // Non-empty: the password to AUTH with, replacing the URL's (if any);
    // used byte for byte (a file's trailing newline is the caller's to
    // strip). Keeps the secret out of the URL, so out of argv and logs.
    std::string password;
    // Non-empty (at least 16 bytes; 32 random bytes recommended): every
    // value is stored with an HMAC-SHA256 tag over its Redis key name and
    // its bytes (layout in codec.h), and a value read back must carry a
    // valid tag before it is decoded. Without it, whoever can write to
    // Redis can set any domain's policy or decision for the whole fleet;
    // with it, such a writer can only delete values or put back a domain's
    // own earlier ones under the same key (until they expire). Every
    // replica sharing the Redis needs the same key: a value without a tag,
    // with another key's tag, or moved from another key reads as nullopt,
    // counts in stats().errors and sets last_error() to "... MAC
    // mismatch". Empty: no tags (values are trusted as far as the decoder
    // goes); such a tier fails to decode tagged values (their payload is
    // kMacBytes longer than their header says), so a fleet switches all
    // at once, each side reading the other's values as errors meanwhile.
    // Used byte for byte; never appears in an error.
    std::string hmac_key;
    absl::Duration timeout = absl::Milliseconds(50);
    int workers = 2;           // threads, and so connections
    size_t max_queue = 4096;   // operations waiting for a worker
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
    // For the expiry of stored values (decoding, PX). Socket timeouts and
    // back-off use real time. nullptr: a RealClock. Must outlive the tier.
    const Clock* clock = nullptr;
  };

  // INVALID_ARGUMENT for a bad URL or options (also a user without any
  // password, or an hmac_key of 1-15 bytes). Succeeds when Redis is down:
  // the workers keep trying in the background.
  static absl::StatusOr<std::unique_ptr<RedisTier>> Create(
      const Options& options);

  ~RedisTier() override;
  RedisTier(const RedisTier&) = delete;
  RedisTier& operator=(const RedisTier&) = delete;

  void GetPolicy(std::string domain, PolicyCallback done) override;
  void GetDecision(std::string domain, DecisionCallback done) override;
  void PutPolicy(std::string domain, StoredPolicy policy) override;
  void PutDecision(std::string domain, StoredDecision decision) override;
  void Forget(std::string domain) override;
  void Stop() override;
  Stats stats() const override;

  // The text of the most recent failure, "" if none yet.
  std::string last_error() const;

 private:
  // One queued operation. Deadlines are real time (they bound sockets).
  struct Op {
    enum class Kind { kGetPolicy, kGetDecision, kPut, kForget };
    Kind kind = Kind::kGetPolicy;
    std::string domain;
    std::string key;           // kPut: the key; others derive it from domain
    std::string value;         // kPut: the encoded value
    absl::Time expires_at;     // kPut: PX is computed when the command runs
    absl::Time deadline;
    PolicyCallback policy_done;      // kGetPolicy
    DecisionCallback decision_done;  // kGetDecision
  };
  class Connection;  // one worker's hiredis context; defined in the .cc

  RedisTier(const Options& options, RedisEndpoint endpoint);

  // Queues `op` with its deadline, or fails it at once (Fail) when the tier
  // stopped, the domain is unsafe or the queue is full.
  void Enqueue(Op op);
  // Validates and queues a put of `value` (an encoding of a `what`) at
  // `key`, tagged when the tier has an hmac_key; expired values are
  // skipped, refused ones counted as errors.
  void Put(std::string domain, std::string key, absl::string_view what,
           absl::Time expires_at, absl::StatusOr<std::string> value);
  // Counts `op` in `counter` and completes its get, if any, with nullopt.
  // Must hold no lock: the callback may call the tier.
  static void Fail(Op& op, std::atomic<uint64_t>& counter);
  // Says in last_error() why an operation on `domain` was refused before
  // it reached Redis; the caller counts it.
  void NoteRefused(absl::string_view what, absl::string_view domain,
                   absl::string_view why);
  static absl::string_view KindName(Op::Kind kind);
  void WorkerLoop();
  // Runs `op` on `conn` (a worker's own) and completes it.
  void Run(Connection& conn, Op& op);
  // Checks the tag of `text` read at `key` (when the tier has an hmac_key)
  // and decodes it into the get's callback: OK when it was delivered (a
  // hit), else the reason for the caller to count and complete.
  absl::Status DecodeAndDeliver(Op& op, absl::string_view key,
                                absl::string_view text);
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetLastError(std::string text);
  absl::Time ClockNow() const;

  const Options options_;
  const RedisEndpoint endpoint_;
  const RealClock real_clock_;

  mutable absl::Mutex mu_;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // workers joined
  // The thread running Stop(): a callback it runs may call Stop() again.
  std::thread::id stopper_ ABSL_GUARDED_BY(mu_);
  // stopping_, readable without mu_: the fast path of calls after Stop().
  std::atomic<bool> stopping_flag_{false};

  mutable absl::Mutex error_mu_;
  std::string last_error_ ABSL_GUARDED_BY(error_mu_);

  struct Counters {
    std::atomic<uint64_t> policy_hits{0}, policy_misses{0}, decision_hits{0},
        decision_misses{0}, errors{0}, timeouts{0}, dropped{0},
        unavailable{0}, connect_failures{0}, reconnects{0};
  };
  Counters counters_;

  std::vector<std::thread> threads_;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_L2_REDIS_TIER_H_
