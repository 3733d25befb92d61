#include "server/src/app/instrumentation.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "server/src/cache/decision_cache.h"
#include "server/src/resolver/caching_resolver.h"
#include "server/src/resolver/policy_fetcher.h"
#include "server/src/sts/policy_store.h"

namespace mxpolicy {
namespace {

constexpr RrType kTypes[] = {RrType::kA,   RrType::kAaaa, RrType::kCname,
                             RrType::kMx,  RrType::kTxt,  RrType::kTlsa};

size_t TypeIndex(RrType type) {
  for (size_t i = 0; i < std::size(kTypes); ++i) {
    if (kTypes[i] == type) return i;
  }
  return 0;
}

metrics::Sample Value(double v, metrics::Labels labels = {}) {
  return metrics::Sample{std::move(labels), v};
}

}  // namespace

InstrumentedDnsClient::InstrumentedDnsClient(DnsClient& inner,
                                             metrics::Registry& registry)
    : inner_(inner) {
  for (size_t i = 0; i < std::size(kTypes); ++i) {
    instruments_.latency[i] = &registry.AddHistogram(
        "mxpolicy_dns_query_duration_seconds",
        "Time of one DNS lookup by the embedded validating resolver, by "
        "record type.",
        {{"rrtype", std::string(RrTypeName(kTypes[i]))}},
        metrics::LatencyBuckets());
  }
  instruments_.bogus = &registry.AddCounter(
      "mxpolicy_dnssec_bogus_total",
      "DNS answers that failed DNSSEC validation (bogus).");
  instruments_.servfail = &registry.AddCounter(
      kUpstreamErrors, kUpstreamErrorsHelp, {{"kind", "dns_servfail"}});
  instruments_.timeout = &registry.AddCounter(
      kUpstreamErrors, kUpstreamErrorsHelp, {{"kind", "dns_timeout"}});
  instruments_.error = &registry.AddCounter(
      kUpstreamErrors, kUpstreamErrorsHelp, {{"kind", "dns_error"}});
}

void InstrumentedDnsClient::Lookup(absl::string_view name, RrType type,
                                   Callback done) {
  const absl::Time start = absl::Now();
  inner_.Lookup(name, type,
                [i = instruments_, type, start,
                 done = std::move(done)](DnsResult result) mutable {
                  i.latency[TypeIndex(type)]->Observe(absl::Now() - start);
                  if (!result.ok()) {
                    (absl::IsDeadlineExceeded(result.status()) ? i.timeout
                                                               : i.error)
                        ->Add();
                  } else if (result->dnssec == DnssecState::kBogus) {
                    i.bogus->Add();
                  } else if (result->outcome == DnsOutcome::kError) {
                    i.servfail->Add();
                  }
                  std::move(done)(std::move(result));
                });
}

InstrumentedHttpsFetcher::InstrumentedHttpsFetcher(HttpsFetcher& inner,
                                                   metrics::Registry& registry)
    : inner_(inner),
      latency_(&registry.AddHistogram(
          "mxpolicy_sts_fetch_duration_seconds",
          "Time of one MTA-STS policy fetch over HTTPS, failures included.",
          {}, metrics::LatencyBuckets())) {}

void InstrumentedHttpsFetcher::Fetch(HttpsRequest request, Callback done) {
  const absl::Time start = absl::Now();
  inner_.Fetch(std::move(request), [latency = latency_, start,
                                    done = std::move(done)](
                                       FetchResult result) mutable {
    latency->Observe(absl::Now() - start);
    std::move(done)(std::move(result));
  });
}

void RegisterComponentMetrics(metrics::Registry& registry,
                              const DecisionCache& cache,
                              const sts::PolicyStore& store,
                              const CachingResolver& caching,
                              const PolicyFetcher& fetcher) {
  using metrics::Type;
  using Samples = std::vector<metrics::Sample>;
  const CachingResolver* c = &caching;
  const DecisionCache* dc = &cache;
  const sts::PolicyStore* ps = &store;
  registry.AddCallback(
      "mxpolicy_cache_entries",
      "Entries held: decisions (L1 decision cache) and unexpired MTA-STS "
      "policies.",
      Type::kGauge, [dc, ps] {
        return Samples{
            Value(static_cast<double>(dc->size()), {{"cache", "decision"}}),
            Value(static_cast<double>(ps->policies()), {{"cache", "policy"}})};
      });
  registry.AddCallback("mxpolicy_cache_hits_total",
                       "Resolve calls answered from the decision cache.",
                       Type::kCounter, [c] {
                         return Samples{
                             Value(static_cast<double>(c->counters().hits))};
                       });
  registry.AddCallback(
      "mxpolicy_cache_misses_total",
      "Decision cache misses that started a resolution or an L2 lookup "
      "(calls joining one are counted as single-flight joins).",
      Type::kCounter, [c] {
        return Samples{Value(static_cast<double>(c->counters().misses))};
      });
  registry.AddCallback(
      "mxpolicy_cache_evictions_total",
      "Unexpired entries evicted for lack of room, by cache.", Type::kCounter,
      [dc, ps] {
        return Samples{
            Value(static_cast<double>(dc->evictions()), {{"cache", "decision"}}),
            Value(static_cast<double>(ps->evictions()), {{"cache", "policy"}})};
      });
  registry.AddCallback(
      "mxpolicy_sts_enforce_evictions_total",
      "Unexpired MTA-STS policies in mode enforce evicted for lack of room: "
      "each reopens its domain's downgrade window (raise --policy-entries).",
      Type::kCounter, [ps] {
        return Samples{Value(static_cast<double>(ps->enforce_evictions()))};
      });
  registry.AddCallback(
      "mxpolicy_singleflight_joins_total",
      "Resolve calls that joined a resolution already running for the "
      "domain.",
      Type::kCounter, [c] {
        return Samples{Value(static_cast<double>(c->counters().joins))};
      });
  registry.AddCallback(
      "mxpolicy_refresh_attempts_total",
      "Background refreshes started: decisions (refresh-ahead) and MTA-STS "
      "policies (daily refresh or TXT id change).",
      Type::kCounter, [c, f = &fetcher] {
        return Samples{Value(static_cast<double>(c->counters().refreshes),
                             {{"kind", "decision"}}),
                       Value(static_cast<double>(f->refreshes_started()),
                             {{"kind", "policy"}})};
      });
  registry.AddCallback(
      "mxpolicy_refresh_failures_total",
      "Background refreshes that failed: decisions ending in an error or "
      "TEMPFAIL; refreshes of cached non-none MTA-STS policies (RFC 8461 "
      "§10.2: the cached policy stays in force).",
      Type::kCounter, [c, ps] {
        return Samples{
            Value(static_cast<double>(c->counters().refresh_failures),
                  {{"kind", "decision"}}),
            Value(static_cast<double>(ps->refresh_failures()),
                  {{"kind", "policy"}})};
      });
  registry.AddCallback(
      "mxpolicy_cold_resolutions_rejected_total",
      "Resolve calls refused with RESOURCE_EXHAUSTED by "
      "--max-cold-resolutions.",
      Type::kCounter, [c] {
        return Samples{Value(static_cast<double>(c->counters().rejected))};
      });
  const PolicyFetcher* f = &fetcher;
  registry.AddCallback(kUpstreamErrors, kUpstreamErrorsHelp, Type::kCounter,
                       [f] {
                         Samples out;
                         for (const auto& [kind, n] : f->failures()) {
                           out.push_back(
                               Value(static_cast<double>(n), {{"kind", kind}}));
                         }
                         return out;
                       });
}

uint64_t TierFailures(const SharedTier::Stats& stats) {
  return stats.errors + stats.timeouts + stats.dropped + stats.unavailable;
}

void RegisterTierMetrics(metrics::Registry& registry, const SharedTier& tier) {
  using metrics::Type;
  using Samples = std::vector<metrics::Sample>;
  const SharedTier* t = &tier;
  registry.AddCallback(
      "mxpolicy_l2_requests_total",
      "Lookups in the shared L2 tier (Redis) by kind and result; error "
      "counts every failed operation (puts included): error replies, bad "
      "stored values, timeouts, drops, Redis unreachable.",
      Type::kCounter, [t] {
        const SharedTier::Stats s = t->stats();
        auto v = [](uint64_t n, const char* kind, const char* result) {
          return Value(static_cast<double>(n),
                       {{"kind", kind}, {"result", result}});
        };
        return Samples{v(s.decision_hits, "decision", "hit"),
                       v(s.decision_misses, "decision", "miss"),
                       v(s.policy_hits, "policy", "hit"),
                       v(s.policy_misses, "policy", "miss"),
                       v(TierFailures(s), "any", "error")};
      });
  registry.AddCallback(
      "mxpolicy_l2_reconnects_total",
      "Connections to Redis established again after a failure.",
      Type::kCounter, [t] {
        return Samples{Value(static_cast<double>(t->stats().reconnects))};
      });
  registry.AddCallback(kUpstreamErrors, kUpstreamErrorsHelp, Type::kCounter,
                       [t] {
                         return Samples{
                             Value(static_cast<double>(TierFailures(t->stats())),
                                   {{"kind", "redis"}})};
                       });
}

}  // namespace mxpolicy
