// Hot-path benchmarks (make bench), against the hermetic world, with the real
// mxpolicy::Daemon in this process and a gRPC load generator
// (load_generator.h) in this process too: client and server share the
// machine exactly alike for the candidate and its baseline.
//
// --mode=hot (default): every benchmark domain is cached; Resolve throughput
//   (closed loop) and p99 latency at a fixed open-loop rate, each against a
//   baseline method on the same server (mxpolicy.bench.Canned, registered
//   through Daemon::Create's extra services) that parses the same request
//   bytes and answers a canned byte string equal to the real cached Resolve
//   response of the same domain. Ratios: Resolve / baseline. For
//   attribution, each throughput pair also measures the same baseline
//   answered on its own ServerUnaryReactor subclass (as Resolve is).
// --mode=shards: hit-path throughput of a daemon with --cache-shards=1
//   against one with the default shard count, both in this process; then
//   the same comparison without gRPC: one thread per core calling
//   CachingResolver::Resolve on cached domains (over the SYNTHETIC DNS of
//   synthetic_dns.h, to have 1 000 distinct domains), which shows what the
//   cache's locks cost when nothing else does.
//
// Baseline and candidate alternate (the order flips every pair) for --pairs
// pairs; the medians are reported (STYLE.md: single pairs on these shared
// machines range 0.85–1.41).
//
// Usage (MXPOLICY_WORLD_DIR names a running world, see tests/world):
//   hot_path_bench [--mode=hot|shards] [--pairs=6] [--seconds=3]
//       [--channels=4] [--concurrency=64] [--rate=10000]
//       [--loops=closed,open]   (hot mode: which measurements to run)
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <initializer_list>
#include <atomic>
#include <cstdio>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mxpolicy/bench/canned.grpc.pb.h"
#include "mxpolicy/v1/mxpolicy.pb.h"
#include "server/src/app/daemon.h"
#include "server/src/cache/decision_cache.h"
#include "server/src/common/clock.h"
#include "server/src/resolver/caching_resolver.h"
#include "server/src/resolver/policy_resolver.h"
#include "server/src/sts/policy_store.h"
#include "tests/bench/load_generator.h"
#include "tests/bench/synthetic_dns.h"
#include "tests/support/world_env.h"

namespace mxpolicy::bench {
namespace {

constexpr char kResolveMethod[] = "/mxpolicy.v1.PolicyResolver/Resolve";
constexpr char kCannedMethod[] = "/mxpolicy.bench.Canned/Canned";
constexpr char kOwnReactorMethod[] = "/mxpolicy.bench.Canned/CannedOwnReactor";

// World domains with a positive or NO_MAIL decision (cached for their DNS
// TTL, 300 s, longer than this benchmark runs): no entry expires or
// refreshes in the background during a measurement. TEMPFAIL domains
// (bogus, lame, ...) are left out for that reason: their 30 s entries would
// re-resolve mid-run.
const char* const kDomains[] = {
    "dane.test",         "nodane.test",       "insecure.test",
    "two-mx.test",       "three-mx.test",     "cname-secure.test",
    "cname-insecure.test", "unusable.test",   "dane-ta.test",
    "implicit.test",     "ipv6only.test",     "nullmx.test",
    "mx-dot-mixed.test", "secmx-insecure-host.test", "sts-crlf.test",
    "sts-dane.test",
};

struct Flags {
  std::string mode = "hot";
  int pairs = 6;
  double seconds = 3;
  int channels = 4;
  int concurrency = 64;
  double rate = 10000;
  bool closed_loop = true;  // --loops=closed,open picks the parts
  bool open_loop = true;
};

// The baseline: parse the request, answer the canned bytes for its domain.
// Load() runs before the load starts; Canned() only reads.
class CannedService final : public Canned::CallbackService {
 public:
  void Load(std::string domain, std::string response) {
    absl::MutexLock lock(&mu_);
    responses_[std::move(domain)] = std::move(response);
  }

  grpc::ServerUnaryReactor* Canned(grpc::CallbackServerContext* context,
                                   const CannedRequest* request,
                                   CannedResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(Answer(*request, response));
    return reactor;
  }

  grpc::ServerUnaryReactor* CannedOwnReactor(
      grpc::CallbackServerContext* context, const CannedRequest* request,
      CannedResponse* response) override {
    class OwnReactor final : public grpc::ServerUnaryReactor {
     public:
      void OnDone() override { delete this; }
    };
    auto* reactor = new OwnReactor();
    reactor->Finish(Answer(*request, response));
    return reactor;
  }

 private:
  grpc::Status Answer(const CannedRequest& request, CannedResponse* response) {
    absl::ReaderMutexLock lock(&mu_);
    auto it = responses_.find(request.domain());
    if (it == responses_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "not loaded");
    }
    response->set_response(it->second);
    return grpc::Status::OK;
  }

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> responses_
      ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<Daemon>> StartDaemon(
    const testing::WorldEnv& env, size_t cache_shards,
    std::vector<grpc::Service*> extra_services) {
  // As in tests/integration/world_dane_test.cc.
  ServerConfig config = testing::WorldServerConfig(env);
  config.dns_timeout = absl::Seconds(10);
  config.cache_shards = cache_shards;
  return Daemon::Create(config, std::move(extra_services));
}

std::string RequestFor(const std::string& domain) {
  v1::ResolveRequest request;
  request.set_domain(domain);
  return request.SerializeAsString();
}

// Resolves every domain (cold), then again: the second answer must come
// from the cache. Returns (domain, cached answer bytes).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> FillCache(
    LoadGenerator& gen, bool print) {
  std::vector<std::pair<std::string, std::string>> cached;
  for (const char* domain : kDomains) {
    const std::string request = RequestFor(domain);
    absl::StatusOr<std::string> cold =
        gen.Call(kResolveMethod, request, absl::Seconds(20));
    if (!cold.ok()) return cold.status();
    absl::StatusOr<std::string> hot =
        gen.Call(kResolveMethod, request, absl::Seconds(5));
    if (!hot.ok()) return hot.status();
    v1::ResolveResponse r;
    if (!r.ParseFromString(*hot)) {
      return absl::InternalError(absl::StrCat(domain, ": unparsable answer"));
    }
    if (r.source() != v1::SOURCE_CACHE ||
        r.decision() == v1::DECISION_TEMPFAIL || r.ttl().seconds() < 120) {
      return absl::FailedPreconditionError(absl::StrCat(
          domain, ": not a long-lived cache entry: ", r.ShortDebugString()));
    }
    if (print) {
      std::printf("  %-26s %-22s %4zu bytes, ttl %llds\n", domain,
                  v1::Decision_Name(r.decision()).c_str(), hot->size(),
                  static_cast<long long>(r.ttl().seconds()));
    }
    cached.emplace_back(domain, *std::move(hot));
  }
  return cached;
}

Workload MakeWorkload(const char* method) {
  Workload w{method, {}};
  for (const char* domain : kDomains) w.requests.push_back(RequestFor(domain));
  return w;
}

// Runs `steps` in order for even pairs and in reverse for odd ones, so that
// no side of a comparison always runs first (STYLE.md: alternate pairs).
void InPairOrder(int pair,
                 std::initializer_list<absl::FunctionRef<void()>> steps) {
  if (pair % 2 == 0) {
    for (auto step : steps) step();
  } else {
    for (auto it = std::rbegin(steps); it != std::rend(steps); ++it) (*it)();
  }
}

bool CheckRun(const char* what, uint64_t errors, const std::string& first) {
  if (errors == 0) return true;
  std::fprintf(stderr, "%s: %llu failed calls, first: %s\n", what,
               static_cast<unsigned long long>(errors), first.c_str());
  return false;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// Open-loop pairs (baseline vs Resolve) at flags.rate; prints each pair and
// the summary line. 0 when the median Resolve p99 is within 1 ms.
int OpenLoopPairs(LoadGenerator& gen, const Flags& flags) {
  const Workload resolve = MakeWorkload(kResolveMethod);
  const Workload baseline = MakeWorkload(kCannedMethod);
  const absl::Duration sample = absl::Seconds(flags.seconds);
  const absl::Duration warmup = absl::Milliseconds(300);
  std::printf("open loop: %.0f calls/s, %.1f s samples (latency from each "
              "call's scheduled start; the pacer's own start lag shown apart)\n",
              flags.rate, flags.seconds);
  // A short open-loop run of each first: the first run after start-up pays
  // for lazily built gRPC state.
  gen.OpenLoop(baseline, flags.rate, warmup, absl::Seconds(1));
  gen.OpenLoop(resolve, flags.rate, warmup, absl::Seconds(1));
  std::vector<double> p99_resolve, p99_baseline, p99_ratios;
  bool ok = true;
  for (int pair = 0; pair < flags.pairs; ++pair) {
    OpenLoopResult b, c;
    InPairOrder(pair,
                {[&] { b = gen.OpenLoop(baseline, flags.rate, warmup, sample); },
                 [&] { c = gen.OpenLoop(resolve, flags.rate, warmup, sample); }});
    ok = CheckRun("baseline", b.errors, b.first_error) && ok;
    ok = CheckRun("Resolve", c.errors, c.first_error) && ok;
    p99_resolve.push_back(Ms(c.p99));
    p99_baseline.push_back(Ms(b.p99));
    p99_ratios.push_back(Ms(c.p99) / Ms(b.p99));
    std::printf("  pair %d (%s first): p50/p99/p99.9/max ms: baseline "
                "%.3f/%.3f/%.3f/%.1f, Resolve %.3f/%.3f/%.3f/%.1f; pacer "
                "start lag p99 %.3f/%.3f%s\n",
                pair + 1, pair % 2 == 0 ? "baseline" : "Resolve", Ms(b.p50),
                Ms(b.p99), Ms(b.p999), Ms(b.max), Ms(c.p50), Ms(c.p99),
                Ms(c.p999), Ms(c.max), Ms(b.start_lag_p99),
                Ms(c.start_lag_p99),
                b.realtime_pacer ? " (SCHED_FIFO pacer)" : "");
  }
  const double p99 = Median(p99_resolve);
  std::printf("hot path: p99 at %.0f calls/s open loop, median of %d pairs: "
              "Resolve %.3f ms, baseline %.3f ms, ratio %.2f (target: Resolve "
              "p99 <= 1 ms)\n",
              flags.rate, flags.pairs, p99, Median(p99_baseline),
              Median(p99_ratios));
  std::fflush(stdout);
  return ok && p99 <= 1.0 ? 0 : 1;
}

int RunHot(const testing::WorldEnv& env, const Flags& flags) {
  CannedService canned;
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      StartDaemon(env, /*cache_shards=*/0, {&canned});
  if (!daemon.ok()) {
    std::fprintf(stderr, "daemon: %s\n", daemon.status().ToString().c_str());
    return 2;
  }
  LoadGenerator gen(absl::StrCat("127.0.0.1:", (*daemon)->port()),
                    flags.channels);
  if (!gen.connected()) {
    std::fprintf(stderr, "load generator: channels did not connect\n");
    return 2;
  }
  std::printf("domains (cached answer = canned baseline answer):\n");
  auto cached = FillCache(gen, /*print=*/true);
  if (!cached.ok()) {
    std::fprintf(stderr, "fill cache: %s\n", cached.status().ToString().c_str());
    return 2;
  }
  for (const auto& [domain, bytes] : *cached) canned.Load(domain, bytes);
  // The baseline answers what Resolve answers (the proto wrapper adds 2–3
  // bytes of tag and length).
  for (const auto& [domain, bytes] : *cached) {
    absl::StatusOr<std::string> got =
        gen.Call(kCannedMethod, RequestFor(domain), absl::Seconds(5));
    CannedResponse r;
    if (!got.ok() || !r.ParseFromString(*got) || r.response() != bytes) {
      std::fprintf(stderr, "baseline answer for %s differs\n", domain.c_str());
      return 2;
    }
  }
  const Workload resolve = MakeWorkload(kResolveMethod);
  const Workload baseline = MakeWorkload(kCannedMethod);
  const Workload own_reactor = MakeWorkload(kOwnReactorMethod);
  const absl::Duration sample = absl::Seconds(flags.seconds);
  const absl::Duration warmup = absl::Milliseconds(300);
  // Warm every path (connections, allocator, branch predictors).
  for (const Workload* w : {&baseline, &own_reactor, &resolve}) {
    gen.ClosedLoop(*w, flags.concurrency, warmup, absl::Seconds(1));
  }

  // Each pair also measures the baseline on its own reactor, in the middle
  // (drift-neutral for both orders): it attributes the gap.
  std::printf("closed loop: %d channels, %d calls in flight, %.1f s samples\n",
              flags.channels, flags.concurrency, flags.seconds);
  std::vector<double> ratios, reactor_ratios, logic_ratios;
  bool ok = true;
  for (int pair = 0; flags.closed_loop && pair < flags.pairs; ++pair) {
    ClosedLoopResult b, o, c;
    InPairOrder(
        pair,
        {[&] { b = gen.ClosedLoop(baseline, flags.concurrency, warmup, sample); },
         [&] { o = gen.ClosedLoop(own_reactor, flags.concurrency, warmup, sample); },
         [&] { c = gen.ClosedLoop(resolve, flags.concurrency, warmup, sample); }});
    ok = CheckRun("baseline", b.errors, b.first_error) && ok;
    ok = CheckRun("baseline, own reactor", o.errors, o.first_error) && ok;
    ok = CheckRun("Resolve", c.errors, c.first_error) && ok;
    ratios.push_back(c.calls_per_second / b.calls_per_second);
    reactor_ratios.push_back(o.calls_per_second / b.calls_per_second);
    logic_ratios.push_back(c.calls_per_second / o.calls_per_second);
    std::printf("  pair %d (%s first): baseline %.0f/s, Resolve %.0f/s, "
                "ratio %.3f | baseline on own reactor %.0f/s\n",
                pair + 1, pair % 2 == 0 ? "baseline" : "Resolve",
                b.calls_per_second, c.calls_per_second, ratios.back(),
                o.calls_per_second);
  }
  const double throughput_ratio = Median(ratios);

  if (flags.closed_loop) {
    std::printf("hot path: Resolve / baseline throughput (%zu cached "
                "domains), median of %d pairs: %.3f (target >= 0.9)\n",
                std::size(kDomains), flags.pairs, throughput_ratio);
    std::printf("hot path, attribution (medians): baseline on its own "
                "reactor / baseline %.3f; Resolve / baseline on its own "
                "reactor %.3f\n",
                Median(reactor_ratios), Median(logic_ratios));
    std::fflush(stdout);
    ok = ok && throughput_ratio >= 0.9;
  }
  if (!flags.open_loop) return ok ? 0 : 1;
  const int open_rc = OpenLoopPairs(gen, flags);
  return ok && open_rc == 0 ? 0 : 1;
}

// The hit path without gRPC: CachingResolver over the synthetic DNS with
// kDomains cached domains.
class InProcessHits {
 public:
  static constexpr size_t kDomains = 1000;

  explicit InProcessHits(size_t shards)
      : store_(clock_),
        resolver_(dns_, https_, store_, PolicyResolver::Options()),
        cache_(clock_, DecisionCache::Options{.shards = shards,
                                              .max_entries = 100000}),
        caching_(resolver_, cache_, store_, CachingResolver::Options()) {
    for (size_t i = 0; i < kDomains; ++i) {
      domains_.push_back(absl::StrFormat("d%04u.hits.example", i));
      caching_.Resolve(domains_.back(), [](absl::StatusOr<std::string>) {});
    }
  }

  size_t shard_count() const { return cache_.shard_count(); }

  // `threads` threads resolve the cached domains round-robin for
  // `duration`; answers per second.
  double HitsPerSecond(int threads, absl::Duration duration) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> total{0};
    std::vector<std::thread> workers;
    const absl::Time start = absl::Now();
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        uint64_t n = 0;
        size_t i = static_cast<size_t>(t) * 7919;
        while (!stop.load(std::memory_order_relaxed)) {
          caching_.Resolve(domains_[i++ % domains_.size()],
                           [&n](absl::StatusOr<std::string> r) { n += r.ok(); });
        }
        total += n;
      });
    }
    absl::SleepFor(duration);
    stop = true;
    for (std::thread& w : workers) w.join();
    return static_cast<double>(total.load()) /
           absl::ToDoubleSeconds(absl::Now() - start);
  }

 private:
  RealClock clock_;
  SyntheticDns dns_;
  NoHttps https_;
  sts::PolicyStore store_;
  PolicyResolver resolver_;
  DecisionCache cache_;
  CachingResolver caching_;
  std::vector<std::string> domains_;
};

int RunShards(const testing::WorldEnv& env, const Flags& flags) {
  absl::StatusOr<std::unique_ptr<Daemon>> one = StartDaemon(env, 1, {});
  absl::StatusOr<std::unique_ptr<Daemon>> def = StartDaemon(env, 0, {});
  if (!one.ok() || !def.ok()) {
    std::fprintf(stderr, "daemon: %s %s\n", one.status().ToString().c_str(),
                 def.status().ToString().c_str());
    return 2;
  }
  LoadGenerator gen_one(absl::StrCat("127.0.0.1:", (*one)->port()),
                        flags.channels);
  LoadGenerator gen_def(absl::StrCat("127.0.0.1:", (*def)->port()),
                        flags.channels);
  for (LoadGenerator* gen : {&gen_one, &gen_def}) {
    auto cached = FillCache(*gen, /*print=*/false);
    if (!gen->connected() || !cached.ok()) {
      std::fprintf(stderr, "fill cache: %s\n",
                   cached.status().ToString().c_str());
      return 2;
    }
  }
  const Workload resolve = MakeWorkload(kResolveMethod);
  const absl::Duration sample = absl::Seconds(flags.seconds);
  const absl::Duration warmup = absl::Milliseconds(300);
  gen_def.ClosedLoop(resolve, flags.concurrency, warmup, absl::Seconds(1));
  gen_one.ClosedLoop(resolve, flags.concurrency, warmup, absl::Seconds(1));
  // The default: 4 × hardware threads (DecisionCache::Options).
  const unsigned default_shards = 4 * std::max(1u, std::thread::hardware_concurrency());
  std::printf("closed loop: %d channels, %d calls in flight, %.1f s samples, "
              "%zu cached domains\n",
              flags.channels, flags.concurrency, flags.seconds,
              std::size(kDomains));
  std::vector<double> ratios;
  bool ok = true;
  for (int pair = 0; pair < flags.pairs; ++pair) {
    ClosedLoopResult d, o;
    InPairOrder(
        pair,
        {[&] { d = gen_def.ClosedLoop(resolve, flags.concurrency, warmup, sample); },
         [&] { o = gen_one.ClosedLoop(resolve, flags.concurrency, warmup, sample); }});
    ok = CheckRun("default shards", d.errors, d.first_error) && ok;
    ok = CheckRun("1 shard", o.errors, o.first_error) && ok;
    ratios.push_back(o.calls_per_second / d.calls_per_second);
    std::printf("  pair %d (%s first): %u shards %.0f/s, 1 shard %.0f/s, "
                "ratio %.3f\n",
                pair + 1, pair % 2 == 0 ? "default" : "1 shard",
                default_shards, d.calls_per_second, o.calls_per_second,
                ratios.back());
  }
  const double grpc_ratio = Median(ratios);

  InProcessHits one_shard(1), default_shard(0);
  const int threads =
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const absl::Duration in_process_sample = absl::Seconds(1);
  std::printf("in process (no gRPC; SYNTHETIC DNS, %zu cached domains): %d "
              "threads calling CachingResolver::Resolve, 1 s samples\n",
              InProcessHits::kDomains, threads);
  default_shard.HitsPerSecond(threads, absl::Milliseconds(300));  // warm-up
  one_shard.HitsPerSecond(threads, absl::Milliseconds(300));
  std::vector<double> in_process;
  for (int pair = 0; pair < flags.pairs; ++pair) {
    double d = 0, o = 0;
    InPairOrder(pair,
                {[&] { d = default_shard.HitsPerSecond(threads, in_process_sample); },
                 [&] { o = one_shard.HitsPerSecond(threads, in_process_sample); }});
    in_process.push_back(o / d);
    std::printf("  pair %d (%s first): %zu shards %.0f/s, 1 shard %.0f/s, "
                "ratio %.3f\n",
                pair + 1, pair % 2 == 0 ? "default" : "1 shard",
                default_shard.shard_count(), d, o, in_process.back());
  }
  std::printf("shards: hit-path Resolve throughput --cache-shards=1 / default "
              "(%u shards), median of %d pairs: over gRPC %.3f; in process, "
              "%d threads, no gRPC: %.3f\n",
              default_shards, flags.pairs, grpc_ratio, threads,
              Median(in_process));
  return ok ? 0 : 1;
}

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    bool ok = true;
    if (absl::ConsumePrefix(&a, "--mode=")) {
      flags->mode = std::string(a);
      ok = flags->mode == "hot" || flags->mode == "shards";
    } else if (absl::ConsumePrefix(&a, "--pairs=")) {
      ok = absl::SimpleAtoi(a, &flags->pairs) && flags->pairs >= 1;
    } else if (absl::ConsumePrefix(&a, "--seconds=")) {
      ok = absl::SimpleAtod(a, &flags->seconds) && flags->seconds > 0;
    } else if (absl::ConsumePrefix(&a, "--channels=")) {
      ok = absl::SimpleAtoi(a, &flags->channels) && flags->channels >= 1;
    } else if (absl::ConsumePrefix(&a, "--concurrency=")) {
      ok = absl::SimpleAtoi(a, &flags->concurrency) && flags->concurrency >= 1;
    } else if (absl::ConsumePrefix(&a, "--loops=")) {
      flags->closed_loop = absl::StrContains(a, "closed");
      flags->open_loop = absl::StrContains(a, "open");
      ok = flags->closed_loop || flags->open_loop;
    } else if (absl::ConsumePrefix(&a, "--rate=")) {
      ok = absl::SimpleAtod(a, &flags->rate) && flags->rate > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument %s\n", argv[i]);
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace mxpolicy::bench

int main(int argc, char** argv) {
  // As mxpolicyd's main: Debian's Abseil is built without NDEBUG.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  mxpolicy::bench::Flags flags;
  if (!mxpolicy::bench::ParseFlags(argc, argv, &flags)) return 2;

  absl::StatusOr<mxpolicy::testing::WorldEnv> env =
      mxpolicy::testing::LoadWorldEnv();
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 2;
  }
  return flags.mode == "shards" ? mxpolicy::bench::RunShards(*env, flags)
                                : mxpolicy::bench::RunHot(*env, flags);
}
