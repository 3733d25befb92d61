// The service's Prometheus metrics outside the request path: a DnsClient
// decorator timing lookups and counting their failures, an HttpsFetcher
// decorator timing policy fetches, and scrape-time collectors over the
// counters the cache, the policy store, the fetcher and the resolver keep
// themselves (so their hot paths pay for nothing more).
#ifndef MXPOLICY_APP_INSTRUMENTATION_H_
#define MXPOLICY_APP_INSTRUMENTATION_H_

#include <array>
#include <string>

#include "server/src/dns/dns_client.h"
#include "server/src/https/https_fetcher.h"
#include "server/src/l2/shared_tier.h"
#include "server/src/metrics/metrics.h"

namespace mxpolicy {

class DecisionCache;
class CachingResolver;
class PolicyFetcher;
namespace sts {
class PolicyStore;
}  // namespace sts

// Contract: forwards every lookup to `inner`; records into instruments
// owned by `registry`, so callbacks that `inner` completes at its own
// destruction stay safe as long as the registry lives. Thread-safe.
class InstrumentedDnsClient final : public DnsClient {
 public:
  InstrumentedDnsClient(DnsClient& inner, metrics::Registry& registry);
  void Lookup(absl::string_view name, RrType type, Callback done) override;

 private:
  struct Instruments {
    std::array<metrics::Histogram*, 6> latency{};  // by RrType, see .cc
    metrics::Counter* bogus = nullptr;
    metrics::Counter* servfail = nullptr;
    metrics::Counter* timeout = nullptr;
    metrics::Counter* error = nullptr;
  };
  DnsClient& inner_;
  Instruments instruments_;
};

// Same contract, for policy fetches (their failures are counted by kind by
// PolicyFetcher, which classifies them).
class InstrumentedHttpsFetcher final : public HttpsFetcher {
 public:
  InstrumentedHttpsFetcher(HttpsFetcher& inner, metrics::Registry& registry);
  void Fetch(HttpsRequest request, Callback done) override;

 private:
  HttpsFetcher& inner_;
  metrics::Histogram* latency_;
};

// Registers the scrape-time families: cache entries, hits, misses,
// evictions (and evictions of unexpired `enforce` policies), single-flight
// joins, refresh attempts and failures, admission-control rejections and
// policy fetch failures by kind. The components must outlive the registry's
// last Render().
void RegisterComponentMetrics(metrics::Registry& registry,
                              const DecisionCache& cache,
                              const sts::PolicyStore& store,
                              const CachingResolver& caching,
                              const PolicyFetcher& fetcher);

// Registers the L2 tier's families: mxpolicy_l2_requests_total{kind,
// result} (hit, miss, or error for every failed operation: error reply, bad
// value, timeout, dropped, unavailable), mxpolicy_l2_reconnects_total, and
// its failures as mxpolicy_upstream_errors_total{kind="redis"}. The tier
// must outlive the registry's last Render().
void RegisterTierMetrics(metrics::Registry& registry, const SharedTier& tier);

// Every failed L2 operation so far.
uint64_t TierFailures(const SharedTier::Stats& stats);

// The name of the family that counts failures of the service's upstreams
// (DNS, HTTPS, Redis) by `kind`.
inline constexpr char kUpstreamErrors[] = "mxpolicy_upstream_errors_total";
inline constexpr char kUpstreamErrorsHelp[] =
    "Failed upstream operations by kind (DNS, policy fetch, Redis).";

}  // namespace mxpolicy

#endif  // MXPOLICY_APP_INSTRUMENTATION_H_
