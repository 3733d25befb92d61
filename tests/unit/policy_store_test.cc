// PolicyStore timelines on a fake clock (SPEC D1–D7, B9, B10, A9, J10).
#include "server/src/sts/policy_store.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace mxpolicy::sts {
namespace {

Policy Make(Mode mode, absl::Duration max_age) {
  Policy p;
  p.mode = mode;
  p.max_age = max_age;
  if (mode != Mode::kNone) p.mx = {"mx.example"};
  return p;
}

TxtState Valid(std::string id) { return {TxtState::Kind::kValid, std::move(id)}; }
const TxtState kAbsent{TxtState::Kind::kAbsent, ""};
const TxtState kFailed{TxtState::Kind::kFailed, ""};

class PolicyStoreTest : public ::testing::Test {
 protected:
  testing::FakeClock clock_;
  PolicyStore store_{clock_, PolicyStore::Options{.refresh_jitter =
                                                      absl::ZeroDuration()}};
};

TEST_F(PolicyStoreTest, B1_FirstSightFetches) {
  StorePlan plan = store_.Plan("d.example", Valid("1"));
  EXPECT_TRUE(plan.fetch);
  EXPECT_EQ(plan.fetch_id, "1");
  EXPECT_FALSE(plan.cached.has_value());
}

TEST_F(PolicyStoreTest, D1_D2_UnchangedIdSkipsFetchAndKeepsFetchedAt) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(48)));
  const absl::Time fetched = clock_.Now();
  clock_.Advance(absl::Hours(1));
  StorePlan plan = store_.Plan("d.example", Valid("1"));
  EXPECT_FALSE(plan.fetch);
  ASSERT_TRUE(plan.cached.has_value());
  EXPECT_EQ(plan.cached->fetched_at, fetched);  // D1: TXT does not move it
  EXPECT_EQ(plan.cached->expires_at, fetched + absl::Hours(48));
}

TEST_F(PolicyStoreTest, J10_TxtVanishesPolicyAppliesUntilExpiryThenNone) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(2)));
  clock_.Advance(absl::Minutes(30));
  StorePlan plan = store_.Plan("d.example", kAbsent);  // D3
  EXPECT_FALSE(plan.fetch);
  ASSERT_TRUE(plan.cached.has_value());
  EXPECT_EQ(plan.cached->policy.mode, Mode::kEnforce);
  // D5: at half its life the policy is refreshed whatever the TXT says; the
  // policy host is gone too, so the refresh fails and the policy stays.
  clock_.Advance(absl::Minutes(30));
  plan = store_.Plan("d.example", kAbsent);
  EXPECT_TRUE(plan.fetch);
  EXPECT_TRUE(plan.refresh);
  EXPECT_TRUE(store_.FetchFailed("d.example", plan.fetch_id));
  clock_.Advance(absl::Hours(1) - absl::Seconds(1));
  EXPECT_TRUE(store_.Plan("d.example", kFailed).cached.has_value());  // A9
  clock_.Advance(absl::Seconds(1));  // J10: expiry exactly at fetched+max_age
  EXPECT_FALSE(store_.Plan("d.example", kAbsent).cached.has_value());
  EXPECT_FALSE(store_.Get("d.example").has_value());
}

TEST_F(PolicyStoreTest, J10_IdChangesFetchFailsOldPolicyKept) {  // D2, B10
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  StorePlan plan = store_.Plan("d.example", Valid("2"));
  EXPECT_TRUE(plan.fetch);
  EXPECT_EQ(plan.fetch_id, "2");
  ASSERT_TRUE(plan.cached.has_value());  // applies while fetching
  EXPECT_EQ(plan.cached->id, "1");
  EXPECT_TRUE(store_.FetchFailed("d.example", "2"));  // D5 alert: enforce
  EXPECT_EQ(store_.refresh_failures(), 1u);
  EXPECT_EQ(store_.Get("d.example")->id, "1");
}

TEST_F(PolicyStoreTest, B9_D4_FiveMinuteBackoffPerId) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  ASSERT_TRUE(store_.Plan("d.example", Valid("2")).fetch);
  store_.FetchFailed("d.example", "2");  // e.g. the new body was invalid
  clock_.Advance(absl::Minutes(4));
  StorePlan plan = store_.Plan("d.example", Valid("2"));
  EXPECT_FALSE(plan.fetch);
  EXPECT_THAT(plan.note, ::testing::HasSubstr("back-off"));
  EXPECT_EQ(plan.cached->id, "1");
  EXPECT_TRUE(store_.Plan("d.example", Valid("3")).fetch);  // other id: no wait
  clock_.Advance(absl::Minutes(1));
  EXPECT_TRUE(store_.Plan("d.example", Valid("2")).fetch);
}

TEST_F(PolicyStoreTest, B9_BackoffWithoutCachedPolicy) {  // B10
  ASSERT_TRUE(store_.Plan("d.example", Valid("1")).fetch);
  EXPECT_FALSE(store_.FetchFailed("d.example", "1"));  // nothing cached: no alert
  StorePlan plan = store_.Plan("d.example", Valid("1"));
  EXPECT_FALSE(plan.fetch);
  EXPECT_FALSE(plan.cached.has_value());  // → deliver as if no MTA-STS
  EXPECT_EQ(store_.refresh_failures(), 0u);
}

TEST_F(PolicyStoreTest, D6_J10_NoneReplacesEnforce) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  ASSERT_TRUE(store_.Plan("d.example", Valid("2")).fetch);
  store_.FetchSucceeded("d.example", "2", Make(Mode::kNone, absl::Hours(24 * 1)));
  StorePlan plan = store_.Plan("d.example", Valid("2"));
  ASSERT_TRUE(plan.cached.has_value());
  EXPECT_EQ(plan.cached->policy.mode, Mode::kNone);
  // D5: no alert for failures while the cached mode is none.
  clock_.Advance(absl::Hours(25));
  ASSERT_TRUE(store_.Plan("d.example", Valid("2")).fetch);
  EXPECT_FALSE(store_.FetchFailed("d.example", "2"));
}

TEST_F(PolicyStoreTest, D5_ProactiveRefreshAboutDaily) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  clock_.Advance(absl::Hours(23));  // daily, well before the 7-day expiry
  EXPECT_FALSE(store_.Plan("d.example", Valid("1")).fetch);
  clock_.Advance(absl::Hours(1));
  StorePlan plan = store_.Plan("d.example", Valid("1"));
  EXPECT_TRUE(plan.fetch);
  EXPECT_TRUE(plan.refresh);
  EXPECT_TRUE(plan.cached.has_value());
  // A successful refresh moves fetched_at and the expiry (D1).
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  EXPECT_EQ(store_.Get("d.example")->expires_at, clock_.Now() + absl::Hours(24 * 7));
  EXPECT_FALSE(store_.Plan("d.example", Valid("1")).fetch);
}

TEST_F(PolicyStoreTest, D5_RefreshWhateverTheTxtState) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  clock_.Advance(absl::Hours(12));
  EXPECT_TRUE(store_.DueForRefresh(10).empty());
  EXPECT_FALSE(store_.Plan("d.example", kAbsent).fetch);
  clock_.Advance(absl::Hours(12));
  EXPECT_THAT(store_.DueForRefresh(10), ::testing::ElementsAre("d.example"));
  StorePlan plan = store_.Plan("d.example", kAbsent);  // TXT gone meanwhile
  EXPECT_TRUE(plan.fetch);
  EXPECT_TRUE(plan.refresh);
  EXPECT_EQ(plan.fetch_id, "1");
  // A failed refresh backs off 5 minutes before the domain is due again.
  EXPECT_TRUE(store_.FetchFailed("d.example", "1"));
  EXPECT_TRUE(store_.DueForRefresh(10).empty());
  EXPECT_FALSE(store_.Plan("d.example", kFailed).fetch);
  clock_.Advance(absl::Minutes(5));
  EXPECT_THAT(store_.DueForRefresh(10), ::testing::ElementsAre("d.example"));
  EXPECT_EQ(store_.Get("d.example")->id, "1");  // still in force
}

TEST_F(PolicyStoreTest, D5_RefreshJitterStaysWithinWindow) {
  PolicyStore jittered(clock_);  // default: 24 h + up to 1 h
  jittered.FetchSucceeded("j.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  clock_.Advance(absl::Hours(24) - absl::Seconds(1));
  EXPECT_FALSE(jittered.Plan("j.example", Valid("1")).fetch);
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  EXPECT_TRUE(jittered.Plan("j.example", Valid("1")).fetch);
}

TEST_F(PolicyStoreTest, D5_ShortLivedPolicyRefreshedAtHalfLife) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(2)));
  clock_.Advance(absl::Minutes(59));
  EXPECT_FALSE(store_.Plan("d.example", Valid("1")).fetch);
  clock_.Advance(absl::Minutes(1));
  EXPECT_TRUE(store_.Plan("d.example", Valid("1")).refresh);
}

TEST_F(PolicyStoreTest, C7_MaxAgeZeroExpiresAtOnce) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::ZeroDuration()));
  EXPECT_FALSE(store_.Get("d.example").has_value());
  EXPECT_TRUE(store_.Plan("d.example", Valid("1")).fetch);
}

TEST_F(PolicyStoreTest, BudgetEvictsBackoffsFirstThenNearestExpiryCounted) {
  PolicyStore small(clock_, PolicyStore::Options{.max_entries = 3});
  small.FetchSucceeded("long.example", "1", Make(Mode::kEnforce, absl::Hours(48)));
  small.FetchSucceeded("short.example", "1", Make(Mode::kEnforce, absl::Hours(2)));
  small.FetchFailed("failing.example", "1");  // back-off only, no policy
  small.FetchSucceeded("new1.example", "1", Make(Mode::kEnforce, absl::Hours(24)));
  EXPECT_EQ(small.evictions(), 0u);  // the back-off entry made room
  EXPECT_TRUE(small.Get("short.example").has_value());
  small.FetchSucceeded("new2.example", "1", Make(Mode::kEnforce, absl::Hours(24)));
  EXPECT_EQ(small.evictions(), 1u);  // an unexpired policy had to go
  EXPECT_FALSE(small.Get("short.example").has_value());  // nearest expiry
  EXPECT_TRUE(small.Get("long.example").has_value());
  EXPECT_EQ(small.size(), 3u);
}

TEST_F(PolicyStoreTest, ForgetDropsPolicyAndBackoff) {
  store_.FetchSucceeded("d.example", "1", Make(Mode::kEnforce, absl::Hours(24 * 7)));
  store_.FetchFailed("d.example", "2");
  store_.Forget("d.example");
  EXPECT_FALSE(store_.Get("d.example").has_value());
  EXPECT_TRUE(store_.Plan("d.example", Valid("2")).fetch);
}

// A policy another replica fetched (the L2 tier, issue 7): kept as fetched
// then, so its expiry and daily refresh follow the original fetch (D1, D5);
// never over a policy fetched later here; never when already expired.
TEST_F(PolicyStoreTest, RestoreKeepsTheNewerPolicy) {
  const absl::Time fetched = clock_.Now() - absl::Hours(20);
  CachedPolicy shared{"1", Make(Mode::kEnforce, absl::Hours(48)), fetched,
                      fetched + absl::Hours(48)};
  EXPECT_TRUE(store_.Restore("d.example", shared));
  ASSERT_TRUE(store_.Get("d.example").has_value());
  EXPECT_EQ(store_.Get("d.example")->fetched_at, fetched);
  EXPECT_FALSE(store_.Plan("d.example", Valid("1")).fetch) << "id unchanged";
  clock_.Advance(absl::Hours(5));  // 25 h after the original fetch
  EXPECT_TRUE(store_.Plan("d.example", Valid("1")).refresh) << "D5: daily";

  CachedPolicy older = shared;
  older.id = "0";
  older.fetched_at -= absl::Hours(1);
  EXPECT_FALSE(store_.Restore("d.example", older));
  EXPECT_EQ(store_.Get("d.example")->id, "1");

  store_.FetchSucceeded("e.example", "2", Make(Mode::kTesting, absl::Hours(48)));
  EXPECT_FALSE(store_.Restore("e.example", shared)) << "fetched here later";
  EXPECT_EQ(store_.Get("e.example")->policy.mode, Mode::kTesting);

  CachedPolicy expired = shared;
  expired.expires_at = clock_.Now();
  EXPECT_FALSE(store_.Restore("f.example", expired));
  EXPECT_FALSE(store_.Get("f.example").has_value());
}

}  // namespace
}  // namespace mxpolicy::sts
