// mxpolicy::Client — the C++ client library for mxpolicyd
// (mxpolicy.v1.PolicyResolver). Any program of a mail fleet links it to ask
// the policy service how to deliver to a recipient domain.
//
//   mxpolicy::ClientOptions options;
//   options.target = "dns:///mxpolicy.mail.svc.cluster.local:8460";
//   auto client = mxpolicy::Client::Create(options);
//   absl::StatusOr<mxpolicy::Policy> p =
//       (*client)->Resolve("example.org", absl::Seconds(2));
//   if (p.ok() && p->response.decision() == mxpolicy::v1::DECISION_DANE) ...
//
// What it does for the caller:
// - One channel to `target`: "host:port", "ipv4:a:p1,b:p2" or
//   "dns:///name:port"; calls are spread round-robin over every address the
//   target yields (each replica of a Kubernetes headless Service).
// - A deadline per call; UNAVAILABLE (a replica going away, a connection
//   refused) is retried by gRPC with exponential back-off, within the
//   deadline.
// - Plaintext, TLS (server verified against `ca_file`) or mTLS (plus the
//   client's `cert_file` / `key_file`).
// - A local cache, bounded in entries, keyed by the normalised domain: an
//   answer is reused for the TTL the service gave it. When the service
//   cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED)
//   an expired answer is still returned for up to `stale_if_error` after its
//   expiry, marked stale (Policy::stale, source SOURCE_STALE).
// - Bad domains (IP literals, "[relay]:587", ".parent" keys, non-LDH names)
//   are refused locally with INVALID_ARGUMENT, without a call.
//
// Debian's Abseil checks every absl::Mutex lock for deadlock cycles (it is
// built without NDEBUG); programs linking this library should call
// absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore) first
// in main, as mxpolicyd, mxpolicy and mxpolicy-postfix do.
#ifndef MXPOLICY_CLIENT_CLIENT_H_
#define MXPOLICY_CLIENT_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "mxpolicy/v1/mxpolicy.pb.h"

namespace mxpolicy {

class Clock;

struct ClientOptions {
  // gRPC target: "127.0.0.1:8460", "ipv4:127.0.0.1:1,127.0.0.1:2",
  // "dns:///mxpolicy.example:8460", "unix:/run/mxpolicy.sock".
  std::string target = "127.0.0.1:8460";

  // TLS. `ca_file` set: TLS, the server verified against it (empty with
  // use_tls: the system roots). `cert_file` + `key_file`: mTLS. Any of these
  // or `tls_server_name` set turns TLS on, as use_tls does.
  bool use_tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Name checked in the server's certificate instead of the target's host.
  std::string tls_server_name;

  // Retries of UNAVAILABLE (attempts in total, 1 = none; gRPC caps at 5).
  int max_attempts = 3;
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(1);

  // Local cache: at most this many domains (0: no local cache).
  size_t cache_entries = 10000;
  // How long after its expiry an answer may still be used when the service
  // cannot be reached (0: never).
  absl::Duration stale_if_error = absl::Minutes(10);

  // Time source for the local cache; nullptr: the real clock. Must outlive
  // the client.
  const Clock* clock = nullptr;
};

// One answer.
struct Policy {
  // The service's answer. From the local cache: source SOURCE_CACHE and
  // ttl = the time left; stale: source SOURCE_STALE and ttl 0.
  v1::ResolveResponse response;
  // Answered from the local cache without a call.
  bool from_local_cache = false;
  // An expired answer, used because the service could not be reached;
  // `stale_reason` says why.
  bool stale = false;
  absl::Status stale_reason;
  // Until when this answer may be reused without asking again (by the
  // client's clock): the end of its TTL for a fresh answer, as held by the
  // local cache; absl::InfinitePast() for a stale one.
  absl::Time fresh_until = absl::InfinitePast();
};

// Counters of one client, for tests and operators' status pages.
struct ClientStats {
  uint64_t calls = 0;        // RPCs started
  uint64_t local_hits = 0;   // fresh answers from the local cache
  uint64_t stale_answers = 0;
  uint64_t failures = 0;     // RPCs that failed (before any stale answer)
};

// Contract: thread-safe; Resolve blocks the calling thread up to
// `deadline`; ResolveAsync never blocks: `done` runs exactly once, inline
// for a local cache hit or a bad domain, else on a gRPC thread (it must
// not block either).
class Client {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<Policy>) &&>;

  // INVALID_ARGUMENT for unreadable TLS files or bad options.
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      const ClientOptions& options);

  virtual ~Client() = default;

  // Errors: the call's gRPC status (INVALID_ARGUMENT for a bad domain,
  // DEADLINE_EXCEEDED, UNAVAILABLE, ...) when no stale answer can stand in.
  virtual absl::StatusOr<Policy> Resolve(absl::string_view domain,
                                         absl::Duration deadline) = 0;
  virtual void ResolveAsync(absl::string_view domain, absl::Duration deadline,
                            Callback done) = 0;

  // A fresh answer from the local cache, or nullopt; never calls.
  virtual std::optional<Policy> Cached(absl::string_view domain) = 0;

  virtual ClientStats stats() const = 0;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_CLIENT_CLIENT_H_
