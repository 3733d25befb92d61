// The L1 decision cache and CachingResolver on a fake clock and a fake DNS
// (issue "Engine at speed"; DESIGN.md "Caching"): TTL and LRU, negative and
// TEMPFAIL TTLs, refresh-ahead, single-flight with callers leaving early,
// admission control, Invalidate.
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_shared_tier.h"
#include "server/src/cache/decision_cache.h"
#include "server/src/resolver/caching_resolver.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

// ---- DecisionCache ----

TEST(DecisionCacheTest, ExpiresAfterTtl) {
  testing::FakeClock clock;
  DecisionCache cache(clock, {.shards = 1, .max_entries = 10});
  cache.Insert("a.example", "bytes", absl::Seconds(60));
  ASSERT_TRUE(cache.Lookup("a.example").has_value());
  EXPECT_EQ(cache.Lookup("a.example")->remaining, absl::Seconds(60));
  clock.Advance(absl::Seconds(59));
  EXPECT_EQ(cache.Lookup("a.example")->response, "bytes");
  clock.Advance(absl::Seconds(1));
  EXPECT_FALSE(cache.Lookup("a.example").has_value());
  EXPECT_EQ(cache.size(), 0u);
  cache.Insert("b.example", "x", absl::ZeroDuration());  // not stored
  EXPECT_FALSE(cache.Lookup("b.example").has_value());
}

TEST(DecisionCacheTest, LeastRecentlyUsedMakesRoom) {
  testing::FakeClock clock;
  DecisionCache cache(clock, {.shards = 1, .max_entries = 3});
  for (const char* d : {"a", "b", "c"}) cache.Insert(d, d, absl::Hours(1));
  ASSERT_TRUE(cache.Lookup("a").has_value());  // a is now most recent
  cache.Insert("d", "d", absl::Hours(1));       // evicts b
  EXPECT_TRUE(cache.Lookup("a").has_value());
  EXPECT_FALSE(cache.Lookup("b").has_value());
  EXPECT_TRUE(cache.Lookup("c").has_value());
  EXPECT_TRUE(cache.Lookup("d").has_value());
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evictions(), 1u);
}

TEST(DecisionCacheTest, BudgetHoldsAcrossShards) {
  testing::FakeClock clock;
  DecisionCache cache(clock, {.shards = 8, .max_entries = 800});
  for (int i = 0; i < 10000; ++i) {
    cache.Insert("d" + std::to_string(i) + ".example", "x", absl::Hours(1));
  }
  EXPECT_LE(cache.size(), 800u);
  EXPECT_GE(cache.evictions(), 9200u);
}

TEST(DecisionCacheTest, RefreshAheadOnceNearExpiry) {
  testing::FakeClock clock;
  DecisionCache cache(clock, {.shards = 1, .max_entries = 10});
  cache.Insert("a.example", "x", absl::Seconds(800));
  clock.Advance(absl::Seconds(600));  // 200 s left: not yet in the last 1/8
  EXPECT_FALSE(cache.Lookup("a.example")->refresh);
  clock.Advance(absl::Seconds(105));  // 95 s left: inside the window
  EXPECT_TRUE(cache.Lookup("a.example")->refresh);
  EXPECT_FALSE(cache.Lookup("a.example")->refresh);  // only one refresher
  cache.Insert("a.example", "y", absl::Seconds(800));  // refreshed
  EXPECT_FALSE(cache.Lookup("a.example")->refresh);
}

TEST(DecisionCacheTest, Erase) {
  testing::FakeClock clock;
  DecisionCache cache(clock, {.shards = 2, .max_entries = 10});
  cache.Insert("a.example", "x", absl::Hours(1));
  EXPECT_TRUE(cache.Erase("a.example"));
  EXPECT_FALSE(cache.Erase("a.example"));
  EXPECT_FALSE(cache.Lookup("a.example").has_value());
}

// ---- CachingResolver over a controllable fake DNS ----

// Answers only when told to: every lookup waits in `pending_` until
// Release(), so tests control when resolutions complete.
class HeldDns : public DnsClient {
 public:
  void Lookup(absl::string_view name, RrType type, Callback done) override {
    ++lookups_[{std::string(name), type}];
    pending_.emplace_back(std::string(name), type, std::move(done));
  }
  // Answers every pending lookup: MX per `mx` (NoData when absent), TXT and
  // TLSA NXDOMAIN (TXT SERVFAIL for names in `failing_txt`), addresses one
  // insecure A record.
  void Release(const std::map<std::string, DnsResult>& mx,
               const std::set<std::string>& failing_txt = {}) {
    while (!pending_.empty()) {
      auto [name, type, done] = std::move(pending_.front());
      pending_.erase(pending_.begin());
      DnsAnswer a;
      a.qname = name;
      a.canonical_name = name;
      a.dnssec = DnssecState::kInsecure;
      a.ttl = absl::Seconds(300);
      if (type == RrType::kMx) {
        auto it = mx.find(name);
        if (it != mx.end()) {
          std::move(done)(it->second);
          continue;
        }
        a.outcome = DnsOutcome::kNoData;
      } else if (type == RrType::kA) {
        a.outcome = DnsOutcome::kData;
        a.addresses = {"192.0.2.1"};
      } else if (type == RrType::kAaaa) {
        a.outcome = DnsOutcome::kNoData;
      } else if (type == RrType::kTxt && failing_txt.contains(name)) {
        a.outcome = DnsOutcome::kError;
        a.error = "SERVFAIL";
      } else {
        a.outcome = DnsOutcome::kNxDomain;
      }
      std::move(done)(a);
    }
  }
  int lookups(const std::string& name, RrType type) {
    return lookups_[{name, type}];
  }

 private:
  std::vector<std::tuple<std::string, RrType, Callback>> pending_;
  std::map<std::pair<std::string, RrType>, int> lookups_;
};

class NoFetch : public HttpsFetcher {
 public:
  void Fetch(HttpsRequest, Callback done) override {
    std::move(done)(FetchResult{});
  }
};

DnsResult MxOf(std::string host, absl::Duration ttl = absl::Seconds(300)) {
  DnsAnswer a;
  a.outcome = DnsOutcome::kData;
  a.dnssec = DnssecState::kInsecure;
  a.ttl = ttl;
  a.mx = {{10, std::move(host)}};
  return a;
}

class CachingResolverTest : public ::testing::Test {
 protected:
  explicit CachingResolverTest(SharedTier* tier = nullptr)
      : resolver_(dns_, https_, store_, PolicyResolver::Options(), tier),
        caching_(resolver_, cache_, store_, {.max_cold_resolutions = 2},
                 tier) {}

  struct Got {
    std::optional<absl::StatusOr<v1::ResolveResponse>> value;
  };
  std::shared_ptr<Got> Ask(absl::string_view domain) {
    auto got = std::make_shared<Got>();
    caching_.Resolve(domain, [got](absl::StatusOr<std::string> wire) {
      if (!wire.ok()) {
        got->value = wire.status();
        return;
      }
      v1::ResolveResponse r;
      EXPECT_TRUE(r.ParseFromString(*wire));
      got->value = std::move(r);
    });
    return got;
  }

  testing::FakeClock clock_;
  HeldDns dns_;
  NoFetch https_;
  sts::PolicyStore store_{clock_};
  PolicyResolver resolver_;
  DecisionCache cache_{clock_, {.shards = 4, .max_entries = 100}};
  CachingResolver caching_;
};

TEST_F(CachingResolverTest, SecondAskIsACacheHitWithRemainingTtl) {
  auto first = Ask("A.example.");
  dns_.Release({{"a.example", MxOf("mx.a.example")}});
  ASSERT_TRUE(first->value && first->value->ok());
  EXPECT_EQ((*first->value)->source(), v1::SOURCE_FRESH);
  EXPECT_EQ((*first->value)->ttl().seconds(), 300);
  clock_.Advance(absl::Seconds(100));
  auto second = Ask("a.example");
  ASSERT_TRUE(second->value.has_value()) << "a hit answers at once";
  EXPECT_EQ((*second->value)->source(), v1::SOURCE_CACHE);
  EXPECT_EQ((*second->value)->ttl().seconds(), 200);
  EXPECT_EQ((*second->value)->domain(), "a.example");
  EXPECT_EQ((*second->value)->mx_hosts(0).hostname(), "mx.a.example");
  EXPECT_EQ(dns_.lookups("a.example", RrType::kMx), 1);
  EXPECT_EQ(caching_.counters().hits, 1u);
}

// The RPC layer's inline path: hits and bad domains now, misses never.
TEST_F(CachingResolverTest, TryNowAnswersHitsAndBadDomainsOnly) {
  EXPECT_FALSE(caching_.TryNow("t.example").has_value()) << "a miss";
  EXPECT_EQ(dns_.lookups("t.example", RrType::kMx), 0) << "TryNow resolves nothing";
  std::optional<absl::StatusOr<std::string>> bad = caching_.TryNow("[192.0.2.1]");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status().code(), absl::StatusCode::kInvalidArgument);
  auto first = Ask("t.example");
  dns_.Release({{"t.example", MxOf("mx.t.example")}});
  ASSERT_TRUE(first->value && first->value->ok());
  clock_.Advance(absl::Seconds(10));
  std::optional<absl::StatusOr<std::string>> hit = caching_.TryNow("T.example.");
  ASSERT_TRUE(hit.has_value() && hit->ok());
  v1::ResolveResponse r;
  ASSERT_TRUE(r.ParseFromString(**hit));
  EXPECT_EQ(r.source(), v1::SOURCE_CACHE);
  EXPECT_EQ(r.ttl().seconds(), 290);
  EXPECT_EQ(caching_.counters().hits, 1u);
}

TEST_F(CachingResolverTest, SingleFlightSharesOneResolution) {
  auto a = Ask("s.example");
  auto b = Ask("s.example");
  auto c = Ask("S.EXAMPLE");
  c.reset();  // a caller that left early: its answer is simply dropped
  EXPECT_EQ(dns_.lookups("s.example", RrType::kMx), 1);
  dns_.Release({{"s.example", MxOf("mx.s.example")}});
  ASSERT_TRUE(a->value && b->value);
  EXPECT_EQ((*a->value)->mx_hosts(0).hostname(), "mx.s.example");
  EXPECT_EQ((*b->value)->mx_hosts(0).hostname(), "mx.s.example");
  EXPECT_EQ(caching_.counters().joins, 2u);
  EXPECT_EQ(cache_.size(), 1u);  // filled although one caller left
}

TEST_F(CachingResolverTest, AdmissionControlRefusesColdButNeverHits) {
  auto a = Ask("a.example");
  auto b = Ask("b.example");
  auto c = Ask("c.example");  // third cold resolution: over the bound of 2
  ASSERT_TRUE(c->value.has_value());
  EXPECT_EQ(c->value->status().code(), absl::StatusCode::kResourceExhausted);
  auto a2 = Ask("a.example");  // joining a running flight is not refused
  EXPECT_FALSE(a2->value.has_value());
  dns_.Release({});
  EXPECT_TRUE(a->value->ok() && a2->value->ok() && b->value->ok());
  EXPECT_TRUE(Ask("a.example")->value->ok());  // a hit, admitted at once
  EXPECT_EQ(caching_.counters().rejected, 1u);
}

TEST_F(CachingResolverTest, TtlRules) {
  // Positive: floor 60 s. Negative (NO_MAIL): the DNS TTL. TEMPFAIL: 30 s.
  auto pos = Ask("short.example");
  DnsAnswer nx;
  nx.outcome = DnsOutcome::kNxDomain;
  nx.dnssec = DnssecState::kSecure;
  nx.ttl = absl::Seconds(20);
  DnsAnswer servfail;
  servfail.outcome = DnsOutcome::kError;
  servfail.error = "SERVFAIL";
  dns_.Release({{"short.example", MxOf("mx.short.example", absl::Seconds(5))}});
  auto neg = Ask("gone.example");
  dns_.Release({{"gone.example", nx}});
  auto temp = Ask("broken.example");
  dns_.Release({{"broken.example", servfail}});
  EXPECT_EQ((*pos->value)->ttl().seconds(), 60);
  EXPECT_EQ((*neg->value)->decision(), v1::DECISION_NO_MAIL);
  EXPECT_EQ((*neg->value)->ttl().seconds(), 20);
  EXPECT_EQ((*temp->value)->decision(), v1::DECISION_TEMPFAIL);
  EXPECT_EQ((*temp->value)->ttl().seconds(), 30);
  clock_.Advance(absl::Seconds(31));
  EXPECT_FALSE(Ask("broken.example")->value.has_value()) << "expired: asks DNS";
  EXPECT_FALSE(Ask("gone.example")->value.has_value()) << "20 s TTL over";
  EXPECT_TRUE(Ask("short.example")->value.has_value());
}

TEST_F(CachingResolverTest, RefreshAheadResolvesInTheBackground) {
  Ask("r.example");
  dns_.Release({{"r.example", MxOf("mx1.r.example")}});
  clock_.Advance(absl::Seconds(290));  // inside the last eighth of 300 s
  auto hit = Ask("r.example");
  ASSERT_TRUE(hit->value.has_value());  // answered from the cache at once
  EXPECT_EQ((*hit->value)->mx_hosts(0).hostname(), "mx1.r.example");
  EXPECT_EQ(dns_.lookups("r.example", RrType::kMx), 2);  // refresh started
  dns_.Release({{"r.example", MxOf("mx2.r.example")}});
  clock_.Advance(absl::Seconds(20));  // the old entry would have expired
  auto after = Ask("r.example");
  ASSERT_TRUE(after->value.has_value());
  EXPECT_EQ((*after->value)->mx_hosts(0).hostname(), "mx2.r.example");
  EXPECT_EQ(caching_.counters().refreshes, 1u);
}

// A background refresh that ends in TEMPFAIL is a refresh failure (the
// mxpolicy_refresh_failures_total{kind="decision"} metric); one that
// succeeds is not.
TEST_F(CachingResolverTest, FailedRefreshIsCounted) {
  Ask("r.example");
  dns_.Release({{"r.example", MxOf("mx1.r.example")}});
  clock_.Advance(absl::Seconds(290));  // inside the last eighth of 300 s
  Ask("r.example");                    // a hit that starts the refresh
  dns_.Release({{"r.example", MxOf("mx1.r.example")}});
  EXPECT_EQ(caching_.counters().refreshes, 1u);
  EXPECT_EQ(caching_.counters().refresh_failures, 0u);
  clock_.Advance(absl::Seconds(290));
  Ask("r.example");
  DnsAnswer servfail;
  servfail.outcome = DnsOutcome::kError;
  servfail.error = "SERVFAIL";
  dns_.Release({{"r.example", servfail}});
  EXPECT_EQ(caching_.counters().refreshes, 2u);
  EXPECT_EQ(caching_.counters().refresh_failures, 1u);
}

TEST_F(CachingResolverTest, InvalidateDropsDecisionAndPolicy) {
  Ask("i.example");
  dns_.Release({});
  sts::Policy policy;
  policy.mode = sts::Mode::kEnforce;
  policy.mx = {"mx.i.example"};
  policy.max_age = absl::Hours(24);
  store_.FetchSucceeded("i.example", "1", policy);
  absl::StatusOr<CachingResolver::Invalidated> d =
      caching_.Invalidate("I.example.");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->domain, "i.example");
  EXPECT_TRUE(d->decision);
  EXPECT_TRUE(d->policy);
  EXPECT_FALSE(store_.Get("i.example").has_value());
  EXPECT_FALSE(Ask("i.example")->value.has_value());  // a miss again
  EXPECT_EQ(caching_.Invalidate("[bad]").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- with the shared L2 tier (DESIGN.md "Caching" L2; issue 7) ----

class CachingResolverTierTest : public CachingResolverTest {
 protected:
  // tier_ is only stored by the base here, used once it is constructed.
  CachingResolverTierTest() : CachingResolverTest(&tier_) {}

  // A decision as another replica would have shared it.
  StoredDecision Shared(const std::string& domain, v1::Decision decision,
                        absl::Duration left = absl::Seconds(100)) {
    v1::ResolveResponse r;
    r.set_domain(domain);
    r.set_decision(decision);
    r.set_source(v1::SOURCE_FRESH);
    r.add_mx_hosts()->set_hostname("mx." + domain);
    return StoredDecision{r.SerializeAsString(), clock_.Now() + left};
  }

  testing::FakeSharedTier tier_;
};

TEST_F(CachingResolverTierTest, SharedDecisionAnswersWithoutResolving) {
  tier_.decisions["t.example"] = Shared("t.example", v1::DECISION_DANE);
  auto got = Ask("T.example");
  ASSERT_TRUE(got->value && got->value->ok()) << "the fake tier answers inline";
  EXPECT_EQ((*got->value)->decision(), v1::DECISION_DANE);
  EXPECT_EQ((*got->value)->source(), v1::SOURCE_CACHE);
  EXPECT_EQ((*got->value)->ttl().seconds(), 100);
  EXPECT_EQ(dns_.lookups("t.example", RrType::kMx), 0);
  // Kept in L1 for its remaining time: the next ask does not reach the tier.
  clock_.Advance(absl::Seconds(40));
  auto again = Ask("t.example");
  ASSERT_TRUE(again->value.has_value());
  EXPECT_EQ((*again->value)->ttl().seconds(), 60);
  EXPECT_EQ(tier_.decision_gets, 1);
}

// What Redis returns is untrusted: anything but a current answer for this
// very domain with a final decision is ignored and the domain is resolved.
TEST_F(CachingResolverTierTest, UnfitSharedDecisionsAreResolvedAfresh) {
  sts::Policy enforce;
  enforce.mode = sts::Mode::kEnforce;
  enforce.mx = {"mx.e.example"};
  enforce.max_age = absl::Hours(24);
  store_.FetchSucceeded("e.example", "1", enforce);
  StoredDecision provisional = Shared("p.example", v1::DECISION_NONE);
  {
    v1::ResolveResponse r;
    r.ParseFromString(provisional.response);
    r.set_provisional(true);
    provisional.response = r.SerializeAsString();
  }
  const std::map<std::string, StoredDecision> unfit = {
      {"a.example", Shared("other.example", v1::DECISION_DANE)},
      {"b.example", Shared("b.example", v1::DECISION_TEMPFAIL)},
      {"c.example", Shared("c.example", v1::DECISION_UNSPECIFIED)},
      {"d.example", {"\xff\xff not a message", clock_.Now() + absl::Hours(1)}},
      {"x.example", Shared("x.example", v1::DECISION_DANE, absl::ZeroDuration())},
      // would weaken the enforce policy this replica holds
      {"e.example", Shared("e.example", v1::DECISION_NONE)},
      {"p.example", provisional},
  };
  for (const auto& [domain, stored] : unfit) {
    tier_.decisions[domain] = stored;
    auto got = Ask(domain);
    EXPECT_FALSE(got->value.has_value()) << domain << ": must resolve";
    dns_.Release({{domain, MxOf("mx." + domain)}});
    ASSERT_TRUE(got->value && got->value->ok()) << domain;
    EXPECT_EQ((*got->value)->source(), v1::SOURCE_FRESH) << domain;
    EXPECT_EQ(dns_.lookups(domain, RrType::kMx), 1) << domain;
  }
}

TEST_F(CachingResolverTierTest, FreshDecisionsAreSharedFallbacksAreNot) {
  auto ok = Ask("s.example");
  dns_.Release({{"s.example", MxOf("mx.s.example")}});
  ASSERT_EQ(tier_.put_decisions.size(), 1u);
  EXPECT_EQ(tier_.put_decisions[0].first, "s.example");
  EXPECT_EQ(tier_.put_decisions[0].second.expires_at,
            clock_.Now() + absl::Seconds(300));
  v1::ResolveResponse shared;
  ASSERT_TRUE(shared.ParseFromString(tier_.put_decisions[0].second.response));
  EXPECT_EQ(shared.domain(), "s.example");

  // TEMPFAIL: not shared.
  DnsAnswer servfail;
  servfail.outcome = DnsOutcome::kError;
  servfail.error = "SERVFAIL";
  Ask("t.example");
  dns_.Release({{"t.example", servfail}});
  // NONE only because the _mta-sts TXT lookup failed: provisional, briefly
  // cached, not shared (issue 7; RFC 8461 §3.3).
  auto fallback = Ask("f.example");
  dns_.Release({{"f.example", MxOf("mx.f.example")}}, {"_mta-sts.f.example"});
  ASSERT_TRUE(fallback->value && fallback->value->ok());
  EXPECT_EQ((*fallback->value)->decision(), v1::DECISION_NONE);
  EXPECT_TRUE((*fallback->value)->provisional());
  EXPECT_EQ((*fallback->value)->ttl().seconds(), 30);
  EXPECT_EQ(tier_.put_decisions.size(), 1u);
  EXPECT_FALSE((*ok->value)->provisional());
}

TEST_F(CachingResolverTierTest, InvalidateForgetsInTheTier) {
  ASSERT_TRUE(caching_.Invalidate("Z.example.").ok());
  EXPECT_THAT(tier_.forgotten, ::testing::ElementsAre("z.example"));
}

}  // namespace
}  // namespace mxpolicy
