// Memory benchmarks (make bench), from this process's resident set size
// (/proc/self/statm), each measured against the RSS just before it:
//
// 1. flat: N distinct domains (default 2×10⁵) of the world's wildcard zone
//    (dNNNNNNN.wild.test: secure MX, DANE-EE TLSA, no MTA-STS) resolved
//    through the real CachingResolver, PolicyResolver and UnboundDnsClient
//    against the world's knot, 64 at a time, with an entry budget of 10⁴;
//    RSS after 10⁴, 5×10⁴, 10⁵ and 2×10⁵ requests must stay flat over the
//    second half (libunbound's own caches are set to 256 KiB each so that
//    they fill early too). (No policy fetch is ever asked for: NoHttps would fail
//    it and the request would count as failed.)
// 2. entries: 10⁶ decisions stored with DecisionCache::Insert (the cache's
//    own path; no resolution) whose values are a real serialized response:
//    the template domain (default dane.test) is resolved once against the
//    world through CachingResolver, and each entry stores those bytes with
//    its own domain in the `domain` field. Reported: (RSS after − RSS
//    before) / entries; target ≤ 1 KiB.
//
// Flat runs first: it must not start on a heap full of freed entries.
// Usage (MXPOLICY_WORLD_DIR names a running world):
//   memory_bench [--part=all|flat|entries] [--entries=1000000]
//       [--budget=10000] [--requests=100000] [--template-domain=dane.test]
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "mxpolicy/v1/mxpolicy.pb.h"
#include "server/src/cache/decision_cache.h"
#include "server/src/common/clock.h"
#include "server/src/dns/unbound_dns_client.h"
#include "server/src/resolver/caching_resolver.h"
#include "server/src/resolver/policy_resolver.h"
#include "server/src/sts/policy_store.h"
#include "tests/bench/load_generator.h"
#include "tests/bench/synthetic_dns.h"  // NoHttps
#include "tests/support/world_env.h"

namespace mxpolicy::bench {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double MiB(int64_t bytes) { return static_cast<double>(bytes) / kMiB; }

// `config` defaults to the world's unbound config.
std::unique_ptr<UnboundDnsClient> WorldDns(const testing::WorldEnv& env,
                                           std::string config = "") {
  UnboundDnsClient::Options options;
  options.unbound_config_file = config.empty() ? env.unbound_conf : config;
  options.trust_anchor_file = env.trust_anchor;
  options.timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<UnboundDnsClient>> dns =
      UnboundDnsClient::Create(options);
  if (!dns.ok()) {
    std::fprintf(stderr, "unbound: %s\n", dns.status().ToString().c_str());
    return nullptr;
  }
  return *std::move(dns);
}

int RunFlat(const testing::WorldEnv& env, size_t budget, size_t requests) {
  constexpr size_t kWindow = 64;  // requests in flight
  // libunbound's own caches (4 MiB each for messages and RRsets by default)
  // would fill up slowly over the run and blur the figure; at 256 KiB they
  // are full within the first thousand domains.
  const std::string config = env.dir + "/memory-bench-unbound.conf";
  {
    std::ifstream in(env.unbound_conf);
    std::ofstream out(config);
    out << in.rdbuf()
        << "server:\n    msg-cache-size: 256k\n    rrset-cache-size: 256k\n"
           "    key-cache-size: 256k\n    neg-cache-size: 256k\n";
    if (!in || !out) {
      std::fprintf(stderr, "cannot write %s\n", config.c_str());
      return 2;
    }
  }
  std::unique_ptr<UnboundDnsClient> dns = WorldDns(env, config);
  if (dns == nullptr) return 2;
  NoHttps https;
  RealClock clock;
  sts::PolicyStore store(clock);
  PolicyResolver resolver(*dns, https, store, PolicyResolver::Options());
  DecisionCache cache(clock, DecisionCache::Options{.shards = 0,
                                                    .max_entries = budget});
  CachingResolver caching(resolver, cache, store, CachingResolver::Options());
  std::vector<size_t> checkpoints = {budget, 5 * budget, requests / 2,
                                     requests};
  const int64_t start = ResidentBytes();
  std::printf("flat: %zu distinct domains dNNNNNNN.wild.test of the world's "
              "wildcard zone through CachingResolver + PolicyResolver + "
              "UnboundDnsClient (%zu in flight), cache budget %zu entries; "
              "RSS at start %.1f MiB\n",
              requests, kWindow, budget, MiB(start));
  absl::Mutex mu;
  size_t in_flight = 0, ok = 0, answer_bytes = 0;
  std::string first_error;
  std::vector<int64_t> rss;
  const absl::Time t0 = absl::Now();
  for (size_t i = 0; i < requests; ++i) {
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](size_t* n) { return *n < kWindow; }, &in_flight));
      ++in_flight;
    }
    caching.Resolve(absl::StrFormat("d%07u.wild.test", i),
                    [&](absl::StatusOr<std::string> r) {
                      absl::MutexLock lock(&mu);
                      --in_flight;
                      if (!r.ok()) {
                        if (first_error.empty()) first_error = r.status().ToString();
                        return;
                      }
                      ++ok;
                      answer_bytes = r->size();
                    });
    for (size_t c : checkpoints) {
      if (i + 1 != c) continue;
      {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(
            +[](size_t* n) { return *n == 0; }, &in_flight));
      }
      rss.push_back(ResidentBytes());
      std::printf("  after %7zu requests (%.1f s): RSS %.1f MiB (+%.2f MiB), "
                  "cache %zu entries, %llu evictions, policy store %zu "
                  "entries\n",
                  c, absl::ToDoubleSeconds(absl::Now() - t0), MiB(rss.back()),
                  MiB(rss.back() - start), cache.size(),
                  static_cast<unsigned long long>(cache.evictions()),
                  store.size());
      break;
    }
  }
  if (ok != requests) {
    std::fprintf(stderr, "flat: %zu of %zu requests failed (first: %s)\n",
                 requests - ok, requests, first_error.c_str());
    return 1;
  }
  // Flat: over the second half of the run (≥ 5× the budget of new domains)
  // at most 10 % of what filling the budget took. Between 1× and 5× the
  // budget the heap still grows by a few MiB (libunbound's message, RRset
  // and infrastructure caches and the allocator's arenas settling; measured
  // with malloc_stats: in-use bytes stop growing by 5× the budget), so that
  // span is reported, not judged. A broken LRU would add ~465 bytes per
  // domain (see `entries`): tens of MiB over the second half.
  const int64_t fill = rss[0] - start;
  const int64_t growth = rss[3] - rss[2];
  std::printf("memory: RSS with a %zu-entry budget after %zu / %zu / %zu / "
              "%zu requests: %.1f / %.1f / %.1f / %.1f MiB (answers %zu "
              "bytes; filling the budget took %.2f MiB; growth over the "
              "second half, %zu new domains: %+.2f MiB; target: <= 10%% of "
              "the fill)\n",
              budget, checkpoints[0], checkpoints[1], checkpoints[2],
              checkpoints[3], MiB(rss[0]), MiB(rss[1]), MiB(rss[2]),
              MiB(rss[3]), answer_bytes, MiB(fill),
              checkpoints[3] - checkpoints[2], MiB(growth));
  return growth <= fill / 10 ? 0 : 1;
}

// The serialized answer CachingResolver stores for `domain` (a fresh
// resolution returns exactly the stored bytes).
absl::StatusOr<std::string> RealAnswer(const testing::WorldEnv& env,
                                       const std::string& domain) {
  std::unique_ptr<UnboundDnsClient> dns = WorldDns(env);
  if (dns == nullptr) return absl::UnavailableError("no DNS client");
  NoHttps https;  // the template domains have no MTA-STS record
  RealClock clock;
  sts::PolicyStore store(clock);
  PolicyResolver resolver(*dns, https, store, PolicyResolver::Options());
  DecisionCache cache(clock, DecisionCache::Options());
  CachingResolver caching(resolver, cache, store, CachingResolver::Options());
  absl::Notification done;
  absl::StatusOr<std::string> answer;
  caching.Resolve(domain, [&](absl::StatusOr<std::string> r) {
    answer = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  dns.reset();  // completes nothing else: the resolution is over
  return answer;
}

int RunEntries(const testing::WorldEnv& env, size_t entries,
               const std::string& template_domain) {
  absl::StatusOr<std::string> answer = RealAnswer(env, template_domain);
  v1::ResolveResponse tmpl;
  if (!answer.ok() || !tmpl.ParseFromString(*answer)) {
    std::fprintf(stderr, "template %s: %s\n", template_domain.c_str(),
                 answer.status().ToString().c_str());
    return 2;
  }
  // Every field but `domain` (field 1, serialized first); each entry gets
  // its own domain in front, which yields the bytes protobuf would.
  tmpl.clear_domain();
  const std::string rest = tmpl.SerializeAsString();
  RealClock clock;
  const int64_t before = ResidentBytes();
  DecisionCache cache(clock, DecisionCache::Options{
                                 .shards = 0, .max_entries = entries * 6 / 5});
  size_t value_bytes = 0, key_bytes = 0;
  for (size_t i = 0; i < entries; ++i) {
    std::string key = absl::StrFormat("domain-%07u.example", i);
    std::string value;
    value.reserve(2 + key.size() + rest.size());
    value.push_back('\x0a');                     // field 1, length-delimited
    value.push_back(static_cast<char>(key.size()));  // < 128: one byte
    value += key;
    value += rest;
    value_bytes += value.size();
    key_bytes += key.size();
    cache.Insert(key, std::move(value), absl::Hours(1));
  }
  const int64_t after = ResidentBytes();
  const size_t n = cache.size();
  const double per = static_cast<double>(after - before) / static_cast<double>(n);
  std::printf("entries: template %s (%s), %zu bytes as stored for it; "
              "%zu entries of ~%zu-byte keys and ~%zu-byte values "
              "(%llu evictions); RSS %.1f -> %.1f MiB\n",
              template_domain.c_str(), v1::Decision_Name(tmpl.decision()).c_str(),
              answer->size(), n, key_bytes / entries, value_bytes / entries,
              static_cast<unsigned long long>(cache.evictions()), MiB(before),
              MiB(after));
  std::printf("memory: RSS per cached decision at %zu entries: %.0f bytes "
              "(key + value %zu bytes, bookkeeping %.0f; target <= 1024)\n",
              n, per, (key_bytes + value_bytes) / entries,
              per - static_cast<double>(key_bytes + value_bytes) /
                        static_cast<double>(entries));
  return per <= 1024 && n == entries ? 0 : 1;
}

}  // namespace
}  // namespace mxpolicy::bench

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string part = "all", template_domain = "dane.test";
  size_t entries = 1000000, budget = 10000, requests = 200000;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    bool ok = true;
    if (absl::ConsumePrefix(&a, "--part=")) {
      part = std::string(a);
      ok = part == "all" || part == "flat" || part == "entries";
    } else if (absl::ConsumePrefix(&a, "--entries=")) {
      ok = absl::SimpleAtoi(a, &entries) && entries >= 1;
    } else if (absl::ConsumePrefix(&a, "--budget=")) {
      ok = absl::SimpleAtoi(a, &budget) && budget >= 1;
    } else if (absl::ConsumePrefix(&a, "--requests=")) {
      ok = absl::SimpleAtoi(a, &requests);
    } else if (absl::ConsumePrefix(&a, "--template-domain=")) {
      template_domain = std::string(a);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument %s\n", argv[i]);
      return 2;
    }
  }
  if (requests < 10 * budget) {
    std::fprintf(stderr, "--requests must be at least 10 x --budget\n");
    return 2;
  }
  absl::StatusOr<mxpolicy::testing::WorldEnv> env =
      mxpolicy::testing::LoadWorldEnv();
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 2;
  }
  int rc = 0;
  if (part != "entries") rc |= mxpolicy::bench::RunFlat(*env, budget, requests);
  if (part != "flat") {
    rc |= mxpolicy::bench::RunEntries(*env, entries, template_domain);
  }
  return rc;
}
