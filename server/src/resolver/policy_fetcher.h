// PolicyFetcher: fetches an MTA-STS policy (RFC 8461 §3.3; SPEC B1–B11):
// resolves mta-sts.<domain> with the service's own resolver, GETs
// https://mta-sts.<domain>/.well-known/mta-sts.txt pinned to that address,
// checks status and media type, parses the body, and records the outcome in
// the PolicyStore. Concurrent requests for the same (domain, id) share one
// fetch, and a fetch always runs to completion — a caller that gives up
// does not cancel it, so the next caller finds the policy cached (SPEC B8).
#ifndef MXPOLICY_RESOLVER_POLICY_FETCHER_H_
#define MXPOLICY_RESOLVER_POLICY_FETCHER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/src/dns/dns_client.h"
#include "server/src/https/https_fetcher.h"
#include "server/src/l2/shared_tier.h"
#include "server/src/sts/policy_store.h"

namespace mxpolicy {

struct PolicyFetchOutcome {
  bool ok = false;
  // The policy as stored; set when ok. Callers use it rather than reading
  // the store back, so that a max_age of 0 still applies to the delivery
  // that triggered the fetch.
  std::optional<sts::CachedPolicy> policy;
  // For failures, what went wrong in TLSRPT terms (RFC 8460 §4.3):
  // "sts-webpki-invalid: ...", "sts-policy-fetch-error: ...",
  // "sts-policy-invalid: ...".
  std::string detail;
};

// Contract: Fetch() never blocks; `done` runs once, on an adapter thread.
// Thread-safe. The adapters and the store must outlive every fetch.
class PolicyFetcher {
 public:
  using Callback = absl::AnyInvocable<void(PolicyFetchOutcome) &&>;

  // `tier` (may be null): every fetched policy is also shared there.
  PolicyFetcher(DnsClient& dns, HttpsFetcher& https, sts::PolicyStore& store,
                uint16_t https_port, SharedTier* tier = nullptr)
      : dns_(dns),
        https_(https),
        store_(store),
        https_port_(https_port),
        tier_(tier) {}

  void Fetch(absl::string_view domain, absl::string_view id, Callback done);

  // Fetches started (not joined) since creation; for tests and metrics.
  uint64_t fetches_started() const;

  // Fetches started for a domain that already had a policy (daily refresh
  // or TXT id change) since creation.
  uint64_t refreshes_started() const {
    return refreshes_started_.load(std::memory_order_relaxed);
  }

  // Failed fetches since creation by kind, for metrics:
  // "policy_host_no_address" (mta-sts.<domain> has no address; failed
  // lookups are counted as DNS errors by the DNS layer), "https_connect",
  // "https_timeout", "https_tls", "https_too_large", "https_protocol",
  // "https_internal", "https_status" (not 200), "https_media_type",
  // "policy_syntax". Every kind is listed, counted or not.
  std::vector<std::pair<std::string, uint64_t>> failures() const;

 private:
  void Start(std::string domain, std::string id);
  void Complete(const std::string& domain, const std::string& id,
                PolicyFetchOutcome outcome);

  DnsClient& dns_;
  HttpsFetcher& https_;
  sts::PolicyStore& store_;
  const uint16_t https_port_;
  SharedTier* const tier_;

  mutable absl::Mutex mu_;
  // (domain + '\n' + id) → callers waiting for that fetch.
  absl::flat_hash_map<std::string, std::vector<Callback>> waiting_
      ABSL_GUARDED_BY(mu_);
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint64_t> failures_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> refreshes_started_{0};
};

// Classifies an HTTP exchange and parses the body (SPEC B5, B7, B11, C):
// the policy, or a failure in TLSRPT terms. Exposed for tests.
absl::StatusOr<sts::Policy> CheckPolicyResponse(const FetchResult& result);

}  // namespace mxpolicy

#endif  // MXPOLICY_RESOLVER_POLICY_FETCHER_H_
