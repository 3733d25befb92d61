// Every Prometheus metric family moves as it should under a scripted
// sequence of requests against the real daemon on the hermetic world,
// scraped over HTTP from --metrics-listen (issue 7 "Observability": requests
// by decision, source and code; latency histograms; cache entries, hits,
// misses, evictions incl. enforce evictions; single-flight joins; refresh
// attempts; DNSSEC bogus answers; upstream errors by kind).

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/world_daemon.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

// An HTTP/1.1 request (Connection: close) to 127.0.0.1:port; the whole
// response (headers + body).
std::string HttpGet(int port, const std::string& request_line) {
  return testing::LoopbackExchange(
      port, request_line + "\r\nHost: x\r\nConnection: close\r\n\r\n",
      /*first_line_only=*/false);
}

// A scrape over HTTP: the response's status and type, and its values.
class Scrape : public testing::MetricValues {
 public:
  explicit Scrape(int port) : Scrape(HttpGet(port, "GET /metrics HTTP/1.1")) {}
  bool ok() const { return ok_; }

 private:
  explicit Scrape(const std::string& response)
      : MetricValues(response),
        ok_(absl::StartsWith(response, "HTTP/1.1 200") &&
            absl::StrContains(response, "text/plain; version=0.0.4")) {}
  bool ok_;
};

class MetricsWorldTest : public ::testing::Test {
 protected:
  void Start(void (*adjust)(ServerConfig&) = nullptr) {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    ServerConfig config = testing::WorldServerConfig(*env);
    config.fetch_timeout = absl::Seconds(3);
    if (adjust != nullptr) adjust(config);
    absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> world =
        testing::WorldDaemon::Start(config);
    ASSERT_TRUE(world.ok()) << world.status();
    world_ = *std::move(world);
    ASSERT_GT(world_->daemon().metrics_port(), 0);
  }
  Scrape Now() { return Scrape(world_->daemon().metrics_port()); }
  grpc::Status Resolve(const std::string& domain) {
    v1::ResolveResponse r;
    return world_->Resolve(domain, &r);
  }

  std::unique_ptr<testing::WorldDaemon> world_;
};

constexpr char kOkDaneFresh[] =
    "mxpolicy_requests_total{decision=\"dane_required\",source=\"fresh\","
    "code=\"OK\"}";
constexpr char kOkDaneCache[] =
    "mxpolicy_requests_total{decision=\"dane_required\",source=\"cache\","
    "code=\"OK\"}";
constexpr char kInvalid[] =
    "mxpolicy_requests_total{decision=\"\",source=\"\",code=\"INVALID_"
    "ARGUMENT\"}";

TEST_F(MetricsWorldTest, RequestsByDecisionSourceAndCodeWithLatencyAndCache) {
  Start();
  Scrape before = Now();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before[kOkDaneFresh], 0);
  EXPECT_EQ(before["mxpolicy_build_info{version=\"0.1.0\"}"], 1);

  ASSERT_TRUE(Resolve("dane.test").ok());  // fresh
  ASSERT_TRUE(Resolve("dane.test").ok());  // cache
  ASSERT_TRUE(Resolve("DANE.test.").ok());  // cache (normalised)
  EXPECT_EQ(Resolve("[192.0.2.1]").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  Scrape after = Now();
  EXPECT_EQ(after[kOkDaneFresh], 1);
  EXPECT_EQ(after[kOkDaneCache], 2);
  EXPECT_EQ(after[kInvalid], 1);
  EXPECT_EQ(after["mxpolicy_cache_misses_total"], 1);
  EXPECT_EQ(after["mxpolicy_cache_hits_total"], 2);
  EXPECT_EQ(after["mxpolicy_cache_entries{cache=\"decision\"}"], 1);
  EXPECT_EQ(after["mxpolicy_request_duration_seconds_count{source=\"fresh\"}"], 1);
  EXPECT_EQ(after["mxpolicy_request_duration_seconds_count{source=\"cache\"}"], 2);
  EXPECT_EQ(after["mxpolicy_request_duration_seconds_count{source=\"error\"}"], 1);
  // dane.test: MX, then A/AAAA and TLSA of its host, at least one each.
  EXPECT_GE(after["mxpolicy_dns_query_duration_seconds_count{rrtype=\"MX\"}"], 1);
  EXPECT_GE(after["mxpolicy_dns_query_duration_seconds_count{rrtype=\"TLSA\"}"], 1);
  EXPECT_EQ(after["mxpolicy_dnssec_bogus_total"], 0);
}

TEST_F(MetricsWorldTest, PolicyFetchesBogusAnswersAndUpstreamErrorsByKind) {
  Start();
  ASSERT_TRUE(Resolve("insecure.test").ok());   // MTA-STS enforce: a fetch
  ASSERT_TRUE(Resolve("sts-s404.test").ok());   // HTTP 404
  ASSERT_TRUE(Resolve("sts-html.test").ok());   // text/html
  ASSERT_TRUE(Resolve("bogus-sig.test").ok());  // TEMPFAIL, bogus MX
  Scrape s = Now();
  EXPECT_EQ(s["mxpolicy_requests_total{decision=\"sts_enforce\",source=\"fresh\","
              "code=\"OK\"}"],
            1);
  EXPECT_EQ(s["mxpolicy_requests_total{decision=\"tempfail\",source=\"fresh\","
              "code=\"OK\"}"],
            1);
  EXPECT_EQ(s["mxpolicy_sts_fetch_duration_seconds_count"], 3);
  EXPECT_EQ(s["mxpolicy_cache_entries{cache=\"policy\"}"], 1);
  EXPECT_EQ(s["mxpolicy_upstream_errors_total{kind=\"https_status\"}"], 1);
  EXPECT_EQ(s["mxpolicy_upstream_errors_total{kind=\"https_media_type\"}"], 1);
  EXPECT_EQ(s["mxpolicy_upstream_errors_total{kind=\"policy_syntax\"}"], 0);
  EXPECT_GE(s["mxpolicy_dnssec_bogus_total"], 1);
}

TEST_F(MetricsWorldTest, EvictionsAndEnforceEvictions) {
  Start([](ServerConfig& c) {
    c.cache_entries = 1;
    c.cache_shards = 1;
    c.policy_entries = 1;
  });
  ASSERT_TRUE(Resolve("dane.test").ok());
  ASSERT_TRUE(Resolve("insecure.test").ok());  // enforce policy cached
  ASSERT_TRUE(Resolve("sts-blank.test").ok());  // enforce: evicts the first
  Scrape s = Now();
  EXPECT_GE(s["mxpolicy_cache_evictions_total{cache=\"decision\"}"], 2);
  EXPECT_EQ(s["mxpolicy_cache_evictions_total{cache=\"policy\"}"], 1);
  EXPECT_EQ(s["mxpolicy_sts_enforce_evictions_total"], 1);
  EXPECT_EQ(s["mxpolicy_cache_entries{cache=\"decision\"}"], 1);
}

TEST_F(MetricsWorldTest, SingleFlightJoinsAndAdmissionRejections) {
  Start([](ServerConfig& c) { c.max_cold_resolutions = 1; });
  // 16 concurrent calls for one cold domain: one resolution, the rest join.
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([this] { EXPECT_TRUE(Resolve("sts-blank.test").ok()); });
  }
  for (std::thread& t : threads) t.join();
  Scrape s = Now();
  EXPECT_EQ(s["mxpolicy_cache_misses_total"], 1);
  EXPECT_EQ(s["mxpolicy_singleflight_joins_total"] +
                s["mxpolicy_cache_hits_total"],
            15);

  // Room for one cold resolution: while sts-stall.test's policy fetch
  // trickles (until the 3 s fetch timeout), another cold domain is refused.
  std::thread stalled([this] { EXPECT_TRUE(Resolve("sts-stall.test").ok()); });
  const absl::Time give_up = absl::Now() + absl::Seconds(2);
  while (Now()["mxpolicy_cache_misses_total"] < 2 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(Resolve("dane.test").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  stalled.join();
  s = Now();
  EXPECT_EQ(s["mxpolicy_cold_resolutions_rejected_total"], 1);
  EXPECT_EQ(s["mxpolicy_requests_total{decision=\"\",source=\"\",code=\"RESOURCE_"
              "EXHAUSTED\"}"],
            s["mxpolicy_cold_resolutions_rejected_total"]);
}

TEST_F(MetricsWorldTest, RefreshAheadIsCounted) {
  // Decisions live 2 s here; a hit in the last eighth of that starts a
  // background refresh (DESIGN.md "Caching": refresh-ahead).
  Start([](ServerConfig& c) { c.max_ttl = absl::Seconds(2); });
  ASSERT_TRUE(Resolve("dane.test").ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(4);
  double attempts = 0;
  while (absl::Now() < give_up && attempts < 1) {
    ASSERT_TRUE(Resolve("dane.test").ok());
    absl::SleepFor(absl::Milliseconds(20));
    attempts = Now()["mxpolicy_refresh_attempts_total{kind=\"decision\"}"];
  }
  EXPECT_GE(attempts, 1);
  Scrape s = Now();
  EXPECT_EQ(s["mxpolicy_refresh_failures_total{kind=\"decision\"}"], 0);
  EXPECT_EQ(s["mxpolicy_refresh_attempts_total{kind=\"policy\"}"], 0);
}

TEST_F(MetricsWorldTest, OnlyGetMetricsIsServed) {
  Start();
  const int port = world_->daemon().metrics_port();
  EXPECT_TRUE(absl::StartsWith(HttpGet(port, "GET /other HTTP/1.1"), "HTTP/1.1 404"));
  EXPECT_TRUE(absl::StartsWith(HttpGet(port, "POST /metrics HTTP/1.1"), "HTTP/1.1 405"));
  EXPECT_TRUE(absl::StartsWith(HttpGet(port, "GET /metrics/../etc/passwd HTTP/1.1"),
                               "HTTP/1.1 404"));
}

}  // namespace
}  // namespace mxpolicy
