// RedisTier against a real redis-server (tests/support/redis_server.h): the
// L2 shared tier of DESIGN.md "Caching" (issue 7, "Shared tier"). No mocks,
// no DNS world. Every get is awaited with a bound, so a hang fails the test
// instead of stalling it.
#include "server/src/l2/redis_tier.h"

#include <hiredis/hiredis.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/src/l2/codec.h"
#include "tests/support/redis_server.h"

namespace mxpolicy {
namespace {

using ::mxpolicy::testing::RedisServer;
using ::testing::HasSubstr;
using ::testing::Not;

// Generous: tests that need Redis to answer must not see a timeout because
// a loaded CI machine (a parallel build, other tests) stalled a thread; the
// tests of failure paths bound their waits by multiples of it.
constexpr absl::Duration kTimeout = absl::Seconds(1);
// For tests against a hung (paused) Redis: longer than kCallBound, so a call
// that waited for Redis even once would break that bound.
constexpr absl::Duration kHungTimeout = absl::Milliseconds(400);

// Bounds are generous (a shared, busy 2-core CI machine stalls threads for
// hundreds of ms) yet still tell "bounded" from "hanging": without the
// timeout a get on a paused Redis never completes (hiredis sockets have no
// timeout of their own), and Redis's kernel-side accept makes even connect
// succeed. So a completion within twice the timeout plus 1 s of scheduling
// slack proves the timeout is applied, and it stays well below any other
// limit (the 5 s of Pending::Wait, any default socket timeout).
absl::Duration GetBound(absl::Duration timeout) {
  return 2 * timeout + absl::Seconds(1);
}
// A get's or put's call only enqueues: it returns without waiting for Redis.
// Against a hung Redis with kHungTimeout (> this bound), a call that did any
// I/O inline would wait at least that long.
constexpr absl::Duration kCallBound = absl::Milliseconds(250);

absl::Time NowMs() {
  return absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
}

RedisTier::Options TierOptions(const std::string& url) {
  RedisTier::Options o;
  o.url = url;
  o.timeout = kTimeout;
  o.min_backoff = absl::Milliseconds(20);
  o.max_backoff = absl::Milliseconds(200);
  return o;
}

std::unique_ptr<RedisTier> MakeTier(const RedisTier::Options& options) {
  absl::StatusOr<std::unique_ptr<RedisTier>> tier = RedisTier::Create(options);
  EXPECT_TRUE(tier.ok()) << tier.status();
  return tier.ok() ? *std::move(tier) : nullptr;
}

// One get in flight: its result and how long the call and the completion
// took. Shared with the callback, so an abandoned wait cannot dangle.
template <typename T>
struct Pending {
  absl::Notification done;
  std::optional<T> value;
  absl::Time start;
  absl::Duration call_took;
  absl::Duration took;

  // Beyond every bound below: a hang fails here instead of stalling.
  bool Wait() { return done.WaitForNotificationWithTimeout(absl::Seconds(5)); }
};

// Starts a get of `d` (a policy or a decision, by T), timing the call and
// the completion.
template <typename T>
std::shared_ptr<Pending<T>> StartGet(RedisTier& tier, const std::string& d) {
  auto p = std::make_shared<Pending<T>>();
  p->start = absl::Now();
  auto done = [p](std::optional<T> v) {
    p->value = std::move(v);
    p->took = absl::Now() - p->start;
    p->done.Notify();
  };
  if constexpr (std::is_same_v<T, StoredPolicy>) {
    tier.GetPolicy(d, std::move(done));
  } else {
    tier.GetDecision(d, std::move(done));
  }
  p->call_took = absl::Now() - p->start;
  return p;
}

std::optional<StoredPolicy> GetPolicy(RedisTier& tier, const std::string& d) {
  auto p = StartGet<StoredPolicy>(tier, d);
  EXPECT_TRUE(p->Wait()) << "GetPolicy(" << d << ") never completed";
  return p->value;
}

std::optional<StoredDecision> GetDecision(RedisTier& tier,
                                          const std::string& d) {
  auto p = StartGet<StoredDecision>(tier, d);
  EXPECT_TRUE(p->Wait()) << "GetDecision(" << d << ") never completed";
  return p->value;
}

// Polls `pred` every 10 ms for up to `limit`. Puts are fire and forget and
// may be dropped (a worker still connecting on a busy machine), so tests
// repeat them inside `pred` until the value is visible.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration limit = absl::Seconds(3)) {
  const absl::Time give_up = absl::Now() + limit;
  while (absl::Now() < give_up) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

// A plain hiredis connection for writing raw (hostile) values and looking
// at what the tier stored.
class RawRedis {
 public:
  explicit RawRedis(int port, const std::string& password = "") {
    ctx_ = redisConnect("127.0.0.1", port);
    if (!password.empty()) Command({"AUTH", password});
  }
  ~RawRedis() {
    if (ctx_ != nullptr) redisFree(ctx_);
  }
  struct Result {
    int type = -1;
    long long integer = 0;
    std::string str;
  };
  Result Command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Result r;
    auto* reply = static_cast<redisReply*>(redisCommandArgv(
        ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (reply == nullptr) return r;
    r.type = reply->type;
    r.integer = reply->integer;
    if (reply->str != nullptr) r.str.assign(reply->str, reply->len);
    freeReplyObject(reply);
    return r;
  }
  bool Exists(const std::string& key) {
    return Command({"EXISTS", key}).integer == 1;
  }

 private:
  redisContext* ctx_ = nullptr;
};

StoredPolicy SamplePolicy(absl::Duration life = absl::Hours(1)) {
  const absl::Time now = NowMs();
  // Binary-safe: a NUL and bare newlines in the body.
  static constexpr char kBody[] =
      "version: STSv1\r\nmode: enforce\r\nmx: mx.example.net\r\n"
      "max_age: 86400\r\n\0binary\n";
  return StoredPolicy{"20240101T000000", std::string(kBody, sizeof kBody - 1),
                      now, now + life};
}

class RedisTierTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start()); }
  RedisServer redis_;
};

// DESIGN.md "Caching" L2: Redis holds MTA-STS policies for the fleet;
// RFC 8461 §10.2: a policy kept outside the process survives its restart.
TEST_F(RedisTierTest, PolicyRoundTrip) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  const StoredPolicy put = SamplePolicy();
  std::optional<StoredPolicy> got;
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("example.com", put);
    got = GetPolicy(*tier, "example.com");
    return got.has_value();
  }));
  EXPECT_EQ(got->id, put.id);
  EXPECT_EQ(got->body, put.body);
  EXPECT_EQ(got->fetched_at, put.fetched_at);
  EXPECT_EQ(got->expires_at, put.expires_at);
  EXPECT_GE(tier->stats().policy_hits, 1u);
  EXPECT_EQ(tier->stats().errors, 0u);

  // A second tier (another replica, or this one after a restart) sees it.
  auto other = MakeTier(TierOptions(redis_.url()));
  std::optional<StoredPolicy> seen = GetPolicy(*other, "example.com");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->body, put.body);
}

// DESIGN.md "Caching" L2: decisions are shared so replicas answer alike.
TEST_F(RedisTierTest, DecisionRoundTripAndMiss) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  static constexpr char kResponse[] = "\x08\x02\x12\x00\xff response";
  const StoredDecision put{std::string(kResponse, sizeof kResponse - 1),
                           NowMs() + absl::Minutes(5)};
  std::optional<StoredDecision> got;
  ASSERT_TRUE(Eventually([&] {
    tier->PutDecision("example.org", put);
    got = GetDecision(*tier, "example.org");
    return got.has_value();
  }));
  EXPECT_EQ(got->response, put.response);
  EXPECT_EQ(got->expires_at, put.expires_at);

  const uint64_t misses = tier->stats().decision_misses;
  EXPECT_FALSE(GetDecision(*tier, "nothing-here.example").has_value());
  EXPECT_FALSE(GetPolicy(*tier, "example.org").has_value());  // other key
  EXPECT_EQ(tier->stats().decision_misses, misses + 1);
  EXPECT_EQ(tier->stats().policy_misses, 1u);
  EXPECT_EQ(tier->stats().errors, 0u);
}

// DESIGN.md "Caching" L2 + RFC 8461 §5.1 (a policy is used until max_age
// expires, not after): Redis drops the value at expires_at (SET ... PX).
TEST_F(RedisTierTest, ExpiryHonoured) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  RawRedis raw(redis_.port());
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("short.example", SamplePolicy(absl::Milliseconds(400)));
    return raw.Exists(l2::PolicyKey("short.example"));
  }));
  const long long pttl =
      raw.Command({"PTTL", l2::PolicyKey("short.example")}).integer;
  EXPECT_GT(pttl, 0);
  EXPECT_LE(pttl, 400);
  EXPECT_TRUE(GetPolicy(*tier, "short.example").has_value());
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_FALSE(raw.Exists(l2::PolicyKey("short.example")));
  EXPECT_FALSE(GetPolicy(*tier, "short.example").has_value());

  // Already expired: nothing is stored.
  tier->PutDecision("gone.example",
                    StoredDecision{"x", absl::Now() - absl::Seconds(1)});
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("marker.example", SamplePolicy());  // queued after it
    return raw.Exists(l2::PolicyKey("marker.example"));
  }));
  EXPECT_FALSE(raw.Exists(l2::DecisionKey("gone.example")));
}

// DESIGN.md "Caching" L2 / STYLE.md "Untrusted input": Redis content is
// untrusted; anything but a well-formed, unexpired version-1 value of the
// right kind reads as nullopt and counts as an error, and the tier goes on.
TEST_F(RedisTierTest, GarbageAtTheKeyIsAMissAndAnError) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  RawRedis raw(redis_.port());
  const int64_t future = absl::ToUnixMillis(absl::Now() + absl::Hours(1));
  const int64_t past = absl::ToUnixMillis(absl::Now() - absl::Hours(1));
  struct Case {
    std::string name;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"oversized", absl::StrCat("MXP1 P 0 ", future, " 2 ",
                                 l2::kMaxPolicyBodyBytes, "\nid",
                                 std::string(512 * 1024, 'x'))},
      {"no header line", "MXP1 P 1 2 3 4"},
      {"wrong version", absl::StrCat("MXP2 P 0 ", future, " 1 1\nab")},
      {"wrong kind", absl::StrCat("MXP1 D 0 ", future, " 0 2\nab")},
      {"truncated", absl::StrCat("MXP1 P 0 ", future, " 2 10\nidbody")},
      {"trailing bytes", absl::StrCat("MXP1 P 0 ", future, " 2 4\nidbodyXX")},
      {"huge length", absl::StrCat("MXP1 P 0 ", future,
                                   " 2 99999999999999\nidbody")},
      {"overflowing length", absl::StrCat("MXP1 P 0 ", future,
                                          " 2 184467440737095516160\nid")},
      {"negative length", absl::StrCat("MXP1 P 0 ", future, " -2 4\nidbody")},
      {"non-numeric", absl::StrCat("MXP1 P zero ", future, " 2 4\nidbody")},
      {"too many fields", absl::StrCat("MXP1 P 0 ", future, " 2 4 9\nidbody")},
      {"expired", absl::StrCat("MXP1 P 0 ", past, " 2 4\nidbody")},
      {"fetched after expiry",
       absl::StrCat("MXP1 P ", future + 1, " ", future, " 2 4\nidbody")},
      {"header line too long", std::string(200, '1') + "\n"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    raw.Command({"SET", l2::PolicyKey("bad.example"), c.value});
    const uint64_t errors = tier->stats().errors;
    EXPECT_FALSE(GetPolicy(*tier, "bad.example").has_value());
    EXPECT_EQ(tier->stats().errors, errors + 1);
    EXPECT_THAT(tier->last_error(), HasSubstr(l2::PolicyKey("bad.example")));
  }

  // An empty string is no value: a miss, not an error.
  raw.Command({"SET", l2::PolicyKey("bad.example"), ""});
  const uint64_t misses = tier->stats().policy_misses;
  EXPECT_FALSE(GetPolicy(*tier, "bad.example").has_value());
  EXPECT_EQ(tier->stats().policy_misses, misses + 1);

  // A LIST where a string should be: WRONGTYPE, and the connection stays.
  raw.Command({"DEL", l2::DecisionKey("bad.example")});
  raw.Command({"RPUSH", l2::DecisionKey("bad.example"), "a", "b"});
  const uint64_t errors = tier->stats().errors;
  EXPECT_FALSE(GetDecision(*tier, "bad.example").has_value());
  EXPECT_EQ(tier->stats().errors, errors + 1);
  EXPECT_THAT(tier->last_error(), HasSubstr("WRONGTYPE"));

  // The tier still serves good values afterwards, on the same connections.
  EXPECT_TRUE(Eventually([&] {
    tier->PutPolicy("good.example", SamplePolicy());
    return GetPolicy(*tier, "good.example").has_value();
  }));
  EXPECT_EQ(tier->stats().reconnects, 0u);
  EXPECT_EQ(tier->stats().connect_failures, 0u);
}

// Issue 7: keys are built from the caller's normalised domain; anything
// outside [a-z0-9.-] is refused before it reaches Redis (no key injection).
TEST_F(RedisTierTest, UnsafeDomainsAreRefused) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  const std::vector<std::string> domains = {
      "", "Example.com", "a b.example", "x\r\nFLUSHALL", "*",
      std::string(254, 'a')};
  for (const std::string& d : domains) {
    SCOPED_TRACE(d);
    const uint64_t errors = tier->stats().errors;
    auto p = StartGet<StoredPolicy>(*tier, d);
    ASSERT_TRUE(p->done.HasBeenNotified());  // inline, no I/O
    EXPECT_FALSE(p->value.has_value());
    EXPECT_EQ(tier->stats().errors, errors + 1);
  }
}

// ---- Authenticated values (Options::hmac_key, codec.h "Authenticated
// values"): whoever can write to Redis but lacks the key cannot set the
// fleet's policies or decisions.

constexpr absl::string_view kKeyA = "hmac-key-A-0123456789abcdef";
constexpr absl::string_view kKeyB = "hmac-key-B-0123456789abcdef";

RedisTier::Options KeyedOptions(const std::string& url, absl::string_view key) {
  RedisTier::Options o = TierOptions(url);
  o.hmac_key = std::string(key);
  return o;
}

// One get that must be refused: nullopt, exactly one more error, and the
// reason in last_error() — which never carries either HMAC key.
template <typename T>
void ExpectRefused(RedisTier& tier, const std::string& domain,
                   absl::string_view why) {
  const RedisTier::Stats before = tier.stats();
  std::shared_ptr<Pending<T>> p = StartGet<T>(tier, domain);
  ASSERT_TRUE(p->Wait());
  EXPECT_FALSE(p->value.has_value());
  const RedisTier::Stats after = tier.stats();
  EXPECT_EQ(after.errors, before.errors + 1) << tier.last_error();
  EXPECT_EQ(after.policy_hits + after.decision_hits,
            before.policy_hits + before.decision_hits);
  const std::string error = tier.last_error();
  EXPECT_THAT(error, HasSubstr(why));
  EXPECT_THAT(error, Not(HasSubstr(kKeyA)));
  EXPECT_THAT(error, Not(HasSubstr(kKeyB)));
  EXPECT_THAT(error, Not(HasSubstr("hmac-key")));
}

// Writes `value` at `key` through `tier` until Redis holds it, and returns
// the raw bytes stored.
std::string RawAfterPut(RawRedis& raw, const std::string& key,
                        absl::FunctionRef<void()> put) {
  EXPECT_TRUE(Eventually([&] {
    put();
    return raw.Exists(key);
  }));
  return raw.Command({"GET", key}).str;
}

// The stored value is the codec value followed by a 32-byte HMAC-SHA256 tag
// over the key name and the value; a tier with the same key (another
// replica) reads policies and decisions back unchanged, also at the size
// limits (the GETRANGE bound includes the tag).
TEST_F(RedisTierTest, HmacRoundTrip) {
  auto tier = MakeTier(KeyedOptions(redis_.url(), kKeyA));
  auto replica = MakeTier(KeyedOptions(redis_.url(), kKeyA));
  ASSERT_NE(tier, nullptr);
  ASSERT_NE(replica, nullptr);
  RawRedis raw(redis_.port());

  const StoredPolicy policy = SamplePolicy();
  const std::string stored =
      RawAfterPut(raw, l2::PolicyKey("mac.example"),
                  [&] { tier->PutPolicy("mac.example", policy); });
  absl::StatusOr<std::string> plain = l2::EncodePolicy(policy);
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(stored.size(), plain->size() + l2::kMacBytes);
  EXPECT_EQ(stored.substr(0, plain->size()), *plain);
  absl::StatusOr<std::string> sealed =
      l2::SealValue(kKeyA, l2::PolicyKey("mac.example"), *plain);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(stored, *sealed);

  std::optional<StoredPolicy> got = GetPolicy(*replica, "mac.example");
  ASSERT_TRUE(got.has_value()) << replica->last_error();
  EXPECT_EQ(got->id, policy.id);
  EXPECT_EQ(got->body, policy.body);
  EXPECT_EQ(got->fetched_at, policy.fetched_at);
  EXPECT_EQ(got->expires_at, policy.expires_at);

  static constexpr char kResponse[] = "\x08\x01 decision\0";
  const StoredDecision decision{std::string(kResponse, sizeof kResponse - 1),
                                NowMs() + absl::Minutes(5)};
  std::optional<StoredDecision> d;
  ASSERT_TRUE(Eventually([&] {
    tier->PutDecision("mac.example", decision);
    d = GetDecision(*replica, "mac.example");
    return d.has_value();
  })) << replica->last_error();
  EXPECT_EQ(d->response, decision.response);
  EXPECT_EQ(d->expires_at, decision.expires_at);

  // The largest values the codec accepts still fit the read bound.
  const StoredPolicy big{std::string(l2::kMaxIdBytes, 'i'),
                         std::string(l2::kMaxPolicyBodyBytes, 'b'), NowMs(),
                         NowMs() + absl::Hours(1)};
  const StoredDecision big_decision{std::string(l2::kMaxDecisionBytes, 'r'),
                                    NowMs() + absl::Hours(1)};
  std::optional<StoredPolicy> big_got;
  std::optional<StoredDecision> big_d;
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("big.example", big);
    tier->PutDecision("big.example", big_decision);
    big_got = GetPolicy(*replica, "big.example");
    big_d = GetDecision(*replica, "big.example");
    return big_got.has_value() && big_d.has_value();
  })) << replica->last_error();
  EXPECT_EQ(big_got->body, big.body);
  EXPECT_EQ(big_d->response, big_decision.response);
  EXPECT_EQ(tier->stats().errors, 0u) << tier->last_error();
  EXPECT_EQ(replica->stats().errors, 0u) << replica->last_error();
}

// A value written under key A is refused by a tier with key B (a miss and an
// error, "MAC mismatch"); a tier without a key fails to decode it (the tag
// makes the payload 32 bytes longer than its header says).
TEST_F(RedisTierTest, HmacValueOfAnotherKeyIsRefused) {
  auto a = MakeTier(KeyedOptions(redis_.url(), kKeyA));
  auto b = MakeTier(KeyedOptions(redis_.url(), kKeyB));
  auto plain = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(plain, nullptr);
  RawRedis raw(redis_.port());
  RawAfterPut(raw, l2::PolicyKey("a.example"),
              [&] { a->PutPolicy("a.example", SamplePolicy()); });
  RawAfterPut(raw, l2::DecisionKey("a.example"), [&] {
    a->PutDecision("a.example", StoredDecision{"r", NowMs() + absl::Hours(1)});
  });

  ExpectRefused<StoredPolicy>(*b, "a.example", "MAC mismatch");
  EXPECT_THAT(b->last_error(), HasSubstr(l2::PolicyKey("a.example")));
  ExpectRefused<StoredDecision>(*b, "a.example", "MAC mismatch");
  ExpectRefused<StoredPolicy>(*plain, "a.example", "header says");
  ExpectRefused<StoredDecision>(*plain, "a.example", "header says");
  EXPECT_TRUE(GetPolicy(*a, "a.example").has_value()) << a->last_error();
}

// Values without a tag — set directly (a Redis writer without the key) or
// written by a tier without a key — are refused by a keyed tier, even when
// they are otherwise well-formed and unexpired; so are values too short to
// hold a tag.
TEST_F(RedisTierTest, HmacUntaggedValueIsRefused) {
  auto keyed = MakeTier(KeyedOptions(redis_.url(), kKeyA));
  auto plain = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(keyed, nullptr);
  ASSERT_NE(plain, nullptr);
  RawRedis raw(redis_.port());

  absl::StatusOr<std::string> forged = l2::EncodePolicy(SamplePolicy());
  ASSERT_TRUE(forged.ok());
  raw.Command({"SET", l2::PolicyKey("raw.example"), *forged});
  ExpectRefused<StoredPolicy>(*keyed, "raw.example", "MAC mismatch");
  // The same bytes are a hit for a tier without a key: the tag is the only
  // thing that refused them.
  EXPECT_TRUE(GetPolicy(*plain, "raw.example").has_value());

  absl::StatusOr<std::string> decision =
      l2::EncodeDecision(StoredDecision{"forged", NowMs() + absl::Hours(1)});
  ASSERT_TRUE(decision.ok());
  raw.Command({"SET", l2::DecisionKey("raw.example"), *decision});
  ExpectRefused<StoredDecision>(*keyed, "raw.example", "MAC mismatch");

  // A forged tag of the right length, and values shorter than a tag.
  raw.Command({"SET", l2::PolicyKey("raw.example"),
               *forged + std::string(l2::kMacBytes, '\0')});
  ExpectRefused<StoredPolicy>(*keyed, "raw.example", "MAC mismatch");
  for (const std::string& value :
       {std::string("x"), std::string(l2::kMacBytes - 1, 'm'),
        std::string(l2::kMacBytes, 'm')}) {
    raw.Command({"SET", l2::PolicyKey("raw.example"), value});
    ExpectRefused<StoredPolicy>(*keyed, "raw.example", "MAC mismatch");
  }

  RawAfterPut(raw, l2::PolicyKey("plain.example"),
              [&] { plain->PutPolicy("plain.example", SamplePolicy()); });
  ExpectRefused<StoredPolicy>(*keyed, "plain.example", "MAC mismatch");
  EXPECT_EQ(keyed->stats().policy_hits + keyed->stats().decision_hits, 0u);
}

// The tag covers the key name: a valid tagged value copied byte for byte
// from domain X's key to domain Y's, or from X's policy key to X's decision
// key, is refused — a Redis writer cannot give one domain another's policy
// or decision, nor turn a policy into a decision.
TEST_F(RedisTierTest, HmacValueMovedToAnotherKeyIsRefused) {
  auto tier = MakeTier(KeyedOptions(redis_.url(), kKeyA));
  ASSERT_NE(tier, nullptr);
  RawRedis raw(redis_.port());
  const std::string policy = RawAfterPut(raw, l2::PolicyKey("x.example"), [&] {
    tier->PutPolicy("x.example", SamplePolicy());
  });
  const std::string decision =
      RawAfterPut(raw, l2::DecisionKey("x.example"), [&] {
        tier->PutDecision(
            "x.example",
            StoredDecision{"x's decision", NowMs() + absl::Hours(1)});
      });
  ASSERT_TRUE(GetPolicy(*tier, "x.example").has_value()) << tier->last_error();
  ASSERT_TRUE(GetDecision(*tier, "x.example").has_value())
      << tier->last_error();

  raw.Command({"SET", l2::PolicyKey("y.example"), policy});
  ExpectRefused<StoredPolicy>(*tier, "y.example", "MAC mismatch");
  raw.Command({"SET", l2::DecisionKey("y.example"), decision});
  ExpectRefused<StoredDecision>(*tier, "y.example", "MAC mismatch");
  // Across kinds under the same domain: X's decision at X's policy key.
  raw.Command({"SET", l2::PolicyKey("x.example"), decision});
  ExpectRefused<StoredPolicy>(*tier, "x.example", "MAC mismatch");
  // Domain names that share a prefix do not share tags either.
  raw.Command({"SET", l2::DecisionKey("x.example.evil"), decision});
  ExpectRefused<StoredDecision>(*tier, "x.example.evil", "MAC mismatch");
}

// The HMAC key is a secret: refused when too short without being quoted,
// and never in last_error() (checked in ExpectRefused above as well).
TEST(RedisTierHmacOptionTest, ShortKeyIsRefusedWithoutQuotingIt) {
  RedisTier::Options options = TierOptions("redis://127.0.0.1:1");
  options.hmac_key = "short-secret";  // 12 bytes
  absl::StatusOr<std::unique_ptr<RedisTier>> tier = RedisTier::Create(options);
  ASSERT_FALSE(tier.ok());
  EXPECT_EQ(tier.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tier.status().message(), HasSubstr("at least 16 bytes"));
  EXPECT_THAT(tier.status().message(), Not(HasSubstr("short-secret")));
  options.hmac_key = std::string(16, 'k');
  EXPECT_TRUE(RedisTier::Create(options).ok());
}

// Issue 7: redis://[:password@]host[:port][/db] and the Redis 6 ACL form;
// AUTH and SELECT on every connect.
TEST(RedisTierAuthTest, PasswordAndDatabaseFromTheUrl) {
  RedisServer redis("s3cr%t");
  ASSERT_TRUE(redis.Start());
  const std::string base = absl::StrCat("127.0.0.1:", redis.port());
  RawRedis raw(redis.port(), "s3cr%t");

  auto tier =
      MakeTier(TierOptions(absl::StrCat("redis://:s3cr%25t@", base, "/3")));
  ASSERT_NE(tier, nullptr);
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("auth.example", SamplePolicy());
    return GetPolicy(*tier, "auth.example").has_value();
  }));
  EXPECT_FALSE(raw.Exists(l2::PolicyKey("auth.example")));  // not in db 0
  raw.Command({"SELECT", "3"});
  EXPECT_TRUE(raw.Exists(l2::PolicyKey("auth.example")));

  auto acl = MakeTier(
      TierOptions(absl::StrCat("redis://default:s3cr%25t@", base, "/3")));
  ASSERT_NE(acl, nullptr);
  EXPECT_TRUE(GetPolicy(*acl, "auth.example").has_value());

  // A wrong password: misses, counted, and the reason kept.
  auto wrong =
      MakeTier(TierOptions(absl::StrCat("redis://:nope@", base, "/3")));
  ASSERT_NE(wrong, nullptr);
  EXPECT_FALSE(GetPolicy(*wrong, "auth.example").has_value());
  EXPECT_GE(wrong->stats().connect_failures, 1u);
  EXPECT_THAT(wrong->last_error(), HasSubstr("AUTH refused"));
}

// Issue 7 / review: the password can be kept out of the URL (a file read by
// the daemon): Options::password sets it, or replaces the URL's, also for
// the ACL form "user@".
TEST(RedisTierAuthTest, PasswordOptionSetsOrReplacesTheUrls) {
  RedisServer redis("opt-secret");
  ASSERT_TRUE(redis.Start());
  const std::string base = absl::StrCat("127.0.0.1:", redis.port());
  const std::vector<std::string> urls = {
      absl::StrCat("redis://", base), absl::StrCat("redis://:nope@", base),
      absl::StrCat("redis://default@", base, "/2")};
  for (const std::string& url : urls) {
    SCOPED_TRACE(url);
    RedisTier::Options options = TierOptions(url);
    options.password = "opt-secret";
    auto tier = MakeTier(options);
    ASSERT_NE(tier, nullptr);
    EXPECT_TRUE(Eventually([&] {
      tier->PutDecision("opt.example",
                        StoredDecision{"r", NowMs() + absl::Hours(1)});
      return GetDecision(*tier, "opt.example").has_value();
    })) << tier->last_error();
    EXPECT_EQ(tier->stats().connect_failures, 0u) << tier->last_error();
  }
  // "user@" with no password anywhere cannot AUTH: refused up front.
  absl::StatusOr<std::unique_ptr<RedisTier>> no_password =
      RedisTier::Create(TierOptions(absl::StrCat("redis://default@", base)));
  ASSERT_FALSE(no_password.ok());
  EXPECT_EQ(no_password.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_password.status().message(), HasSubstr("without a password"));
}

// Review: no error text names the URL's user or password — neither Create's
// for a mistyped URL (here the '@' is missing, so the password sits where a
// port, a database or a host would be) nor last_error() after AUTH fails.
TEST(RedisTierAuthTest, PasswordNeverInErrors) {
  constexpr absl::string_view kUser = "alice7";
  constexpr absl::string_view kPassword = "hunter2pw";
  for (const std::string& url : {
           absl::StrCat("redis://", kUser, ":", kPassword, "/cache.example"),
           absl::StrCat("redis://", kUser, ":", kPassword, "/0"),
           absl::StrCat("redis://", kUser, ":12345/", kPassword),
           absl::StrCat("redis://", kUser, ":", kPassword, "@ho st"),
           absl::StrCat("redis://", kUser, " x:", kPassword, "/0"),
           absl::StrCat("redis://", kUser, ":", kPassword, "%zz@host"),
           absl::StrCat("redis://", kUser, ":", kPassword, "@host:", kPassword),
           absl::StrCat("redis://", kUser, ":", kPassword, "@host/", kPassword),
           absl::StrCat("rediss://", kUser, ":", kPassword, "@host"),
           absl::StrCat("redis:/", kUser, ":", kPassword, "@host"),
       }) {
    SCOPED_TRACE(url);
    absl::StatusOr<std::unique_ptr<RedisTier>> tier =
        RedisTier::Create(TierOptions(url));
    ASSERT_FALSE(tier.ok());
    EXPECT_EQ(tier.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(tier.status().message(), HasSubstr("redis URL"));
    EXPECT_THAT(tier.status().message(), Not(HasSubstr(kPassword)));
    EXPECT_THAT(tier.status().message(), Not(HasSubstr(kUser)));
  }
  // The missing '@' gets a hint.
  EXPECT_THAT(RedisTier::Create(TierOptions(absl::StrCat(
                  "redis://", kUser, ":", kPassword, "/0")))
                  .status()
                  .message(),
              HasSubstr("'@'"));

  RedisServer redis("the-right-one");
  ASSERT_TRUE(redis.Start());
  const std::string base = absl::StrCat("127.0.0.1:", redis.port());
  RedisTier::Options from_option = TierOptions(absl::StrCat("redis://", base));
  from_option.password = std::string(kPassword);
  for (const RedisTier::Options& options :
       {TierOptions(absl::StrCat("redis://", kUser, ":", kPassword, "@", base)),
        TierOptions(absl::StrCat("redis://:", kPassword, "@", base)),
        from_option}) {
    SCOPED_TRACE(options.url);
    auto tier = MakeTier(options);
    ASSERT_NE(tier, nullptr);
    EXPECT_FALSE(GetPolicy(*tier, "auth.example").has_value());
    ASSERT_TRUE(Eventually([&] { return tier->stats().connect_failures > 0; }));
    const std::string error = tier->last_error();
    EXPECT_THAT(error, HasSubstr("AUTH refused"));
    EXPECT_THAT(error, Not(HasSubstr(kPassword)));
    EXPECT_THAT(error, Not(HasSubstr(kUser)));
  }
}

// Issue 7: bad URLs are INVALID_ARGUMENT with a clear message; rediss:// is
// refused because hiredis 0.14 (Debian 12) has no TLS.
TEST(RedisUrlTest, BadUrlsAreRejected) {
  for (const char* url :
       {"", "localhost:6379", "http://localhost", "redis://", "redis:///0",
        "redis://host:", "redis://host:0", "redis://host:65536",
        "redis://host:63x9", "redis://host/db", "redis://host/-1",
        "redis://user@host", "redis://:@host", "redis://:p%zz@host",
        "redis://:p%2@host", "redis://[::1", "redis://[::1]x",
        "redis://host?timeout=1", "redis://ho st", "unix:///tmp/redis.sock"}) {
    SCOPED_TRACE(url);
    absl::StatusOr<std::unique_ptr<RedisTier>> tier =
        RedisTier::Create(TierOptions(url));
    ASSERT_FALSE(tier.ok());
    EXPECT_EQ(tier.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(tier.status().message(), HasSubstr("redis URL"));
  }
  absl::StatusOr<std::unique_ptr<RedisTier>> tls =
      RedisTier::Create(TierOptions("rediss://cache.example:6380"));
  ASSERT_FALSE(tls.ok());
  EXPECT_THAT(tls.status().message(), HasSubstr("TLS"));

  RedisTier::Options zero = TierOptions("redis://127.0.0.1");
  zero.timeout = absl::ZeroDuration();
  EXPECT_EQ(RedisTier::Create(zero).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RedisUrlTest, GoodUrlsParse) {
  absl::StatusOr<RedisEndpoint> e = ParseRedisUrl("redis://cache.internal");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->host, "cache.internal");
  EXPECT_EQ(e->port, 6379);
  EXPECT_EQ(e->db, 0);
  EXPECT_EQ(e->password, "");

  e = ParseRedisUrl("redis://app:p%40ss%3Aw%2Frd@[::1]:7000/12");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 7000);
  EXPECT_EQ(e->user, "app");
  EXPECT_EQ(e->password, "p@ss:w/rd");
  EXPECT_EQ(e->db, 12);

  e = ParseRedisUrl("redis://app@cache.internal");  // password given apart
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->user, "app");
  EXPECT_EQ(e->password, "");

  e = ParseRedisUrl("redis://:secret@10.0.0.5:6380/");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->user, "");
  EXPECT_EQ(e->password, "secret");
  EXPECT_EQ(e->db, 0);
}

// DESIGN.md "Caching" L2: "The service keeps working (L1 only) when Redis is
// down" — Create succeeds, and gets complete fast with nullopt.
TEST(RedisTierDownTest, CreateSucceedsWithRedisDown) {
  RedisServer redis;  // never started: nothing listens on its port
  auto tier = MakeTier(TierOptions(redis.url()));
  ASSERT_NE(tier, nullptr);
  for (int i = 0; i < 5; ++i) {
    auto p = StartGet<StoredPolicy>(*tier, "down.example");
    ASSERT_TRUE(p->Wait());
    EXPECT_FALSE(p->value.has_value());
    EXPECT_LT(p->call_took, kCallBound);
    EXPECT_LT(p->took, GetBound(kTimeout));
  }
  tier->PutPolicy("down.example", SamplePolicy());  // dropped quietly
  EXPECT_EQ(tier->stats().policy_hits + tier->stats().policy_misses, 0u);
  EXPECT_GE(tier->stats().connect_failures, 1u);
  EXPECT_THAT(tier->last_error(), HasSubstr("connect"));
}

// DESIGN.md "Caching" L2 (works without Redis) and RFC 8461 §10.2 (policies
// kept across restarts come back): Redis killed → gets fail fast; Redis
// restarted → the tier reconnects by itself and hits again.
TEST_F(RedisTierTest, KilledThenRestartedReconnectsByItself) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("restart.example", SamplePolicy());
    return GetPolicy(*tier, "restart.example").has_value();
  }));

  redis_.Stop();
  for (int i = 0; i < 10; ++i) {
    auto p = StartGet<StoredPolicy>(*tier, "restart.example");
    ASSERT_TRUE(p->Wait());
    EXPECT_FALSE(p->value.has_value());
    EXPECT_LT(p->call_took, kCallBound);
    EXPECT_LT(p->took, GetBound(kTimeout)) << "get " << i;
  }
  const RedisTier::Stats down = tier->stats();
  EXPECT_GT(down.errors + down.unavailable + down.timeouts, 0u);

  ASSERT_TRUE(redis_.Restart());  // same port, empty (no persistence)
  // The workers reconnect on their own (back-off ≤ 200 ms here), without
  // traffic; then puts and gets work again.
  ASSERT_TRUE(Eventually([&] { return tier->stats().reconnects >= 1; }))
      << tier->last_error();
  // The other worker may still be backing off and drop a put (fire and
  // forget), so the put is repeated until a get sees it.
  EXPECT_TRUE(Eventually([&] {
    tier->PutPolicy("restart.example", SamplePolicy());
    return GetPolicy(*tier, "restart.example").has_value();
  }));
}

// DESIGN.md "Caching" L2: a hung Redis (SIGSTOP: the kernel still accepts
// connections, nothing answers) costs a get at most about the timeout.
TEST_F(RedisTierTest, PausedRedisGetsCompleteWithinTheTimeout) {
  RedisTier::Options options = TierOptions(redis_.url());
  options.timeout = kHungTimeout;
  auto tier = MakeTier(options);
  ASSERT_NE(tier, nullptr);
  ASSERT_TRUE(Eventually([&] {
    tier->PutDecision("hang.example",
                      StoredDecision{"r", NowMs() + absl::Hours(1)});
    return GetDecision(*tier, "hang.example").has_value();
  }));

  redis_.Pause();
  // Concurrent gets: more than there are workers, so some wait in the queue.
  std::vector<std::shared_ptr<Pending<StoredDecision>>> pending;
  for (int i = 0; i < 8; ++i) {
    pending.push_back(StartGet<StoredDecision>(*tier, "hang.example"));
  }
  for (auto& p : pending) {
    ASSERT_TRUE(p->Wait());
    EXPECT_FALSE(p->value.has_value());
    EXPECT_LT(p->call_took, kCallBound);
    EXPECT_LT(p->took, GetBound(kHungTimeout));
  }
  // And one at a time, while workers time out, back off and reconnect.
  for (int i = 0; i < 4; ++i) {
    auto p = StartGet<StoredDecision>(*tier, "hang.example");
    ASSERT_TRUE(p->Wait());
    EXPECT_FALSE(p->value.has_value());
    EXPECT_LT(p->call_took, kCallBound) << "get " << i;
    EXPECT_LT(p->took, GetBound(kHungTimeout)) << "get " << i;
    absl::SleepFor(absl::Milliseconds(30));
  }
  EXPECT_GE(tier->stats().timeouts, 1u);
  EXPECT_THAT(tier->last_error(), HasSubstr("timed out"));

  redis_.Resume();
  EXPECT_TRUE(Eventually(
      [&] { return GetDecision(*tier, "hang.example").has_value(); }));
}

// DESIGN.md "Caching" (operator invalidation): Forget drops both keys.
TEST_F(RedisTierTest, ForgetDropsBothKeys) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  RawRedis raw(redis_.port());
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("forget.example", SamplePolicy());
    tier->PutDecision("forget.example",
                      StoredDecision{"r", NowMs() + absl::Hours(1)});
    tier->PutPolicy("keep.example", SamplePolicy());
    return raw.Exists(l2::PolicyKey("forget.example")) &&
           raw.Exists(l2::DecisionKey("forget.example")) &&
           raw.Exists(l2::PolicyKey("keep.example"));
  }));
  tier->Forget("forget.example");
  EXPECT_TRUE(Eventually([&] {
    return !raw.Exists(l2::PolicyKey("forget.example")) &&
           !raw.Exists(l2::DecisionKey("forget.example"));
  }));
  EXPECT_FALSE(GetPolicy(*tier, "forget.example").has_value());
  EXPECT_FALSE(GetDecision(*tier, "forget.example").has_value());
  EXPECT_TRUE(GetPolicy(*tier, "keep.example").has_value());
}

// Issue 7: nothing blocks and every get completes, also under a burst from
// many threads while Redis is down (bounded queue, fail fast, drops).
TEST_F(RedisTierTest, BurstWhileDownAllComplete) {
  RedisTier::Options options = TierOptions(redis_.url());
  options.max_queue = 256;
  auto tier = MakeTier(options);
  ASSERT_NE(tier, nullptr);
  redis_.Stop();

  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  std::atomic<int> completed{0};
  std::atomic<int> hits{0};
  absl::Notification all_done;
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto done = [&](bool hit) {
          if (hit) hits.fetch_add(1);
          if (completed.fetch_add(1) + 1 == kThreads * kPerThread) {
            all_done.Notify();
          }
        };
        const std::string domain = absl::StrCat("d", t, "-", i, ".example");
        if (i % 2 == 0) {
          tier->GetPolicy(domain, [done](std::optional<StoredPolicy> p) {
            done(p.has_value());
          });
        } else {
          tier->GetDecision(domain, [done](std::optional<StoredDecision> d) {
            done(d.has_value());
          });
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const absl::Duration calls_took = absl::Now() - start;
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(5)))
      << completed.load() << " of " << kThreads * kPerThread;
  EXPECT_EQ(hits.load(), 0);
  // Every get completes within its own bound after the last call...
  EXPECT_LT(absl::Now() - start, calls_took + GetBound(kTimeout));
  // ...and no call waits for a timeout: 1000 calls per thread each waiting
  // even once for kTimeout would take 1000 s.
  EXPECT_LT(calls_took, absl::Seconds(5));
  const RedisTier::Stats s = tier->stats();
  EXPECT_EQ(s.errors + s.timeouts + s.dropped + s.unavailable +
                s.policy_misses + s.decision_misses,
            static_cast<uint64_t>(kThreads * kPerThread));
}

// Issue 7 (callbacks run exactly once): destroying the tier while Redis
// hangs completes the queued gets and returns within about the timeout.
TEST_F(RedisTierTest, DestructionCompletesQueuedGets) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  ASSERT_FALSE(GetPolicy(*tier, "warm.example").has_value());  // connected
  redis_.Pause();
  std::vector<std::shared_ptr<Pending<StoredPolicy>>> pending;
  for (int i = 0; i < 20; ++i) {
    pending.push_back(StartGet<StoredPolicy>(*tier, "queued.example"));
  }
  const absl::Time start = absl::Now();
  tier.reset();
  // Waits for the command in flight only, bounded by its timeout.
  EXPECT_LT(absl::Now() - start, GetBound(kTimeout));
  for (auto& p : pending) {
    EXPECT_TRUE(p->done.HasBeenNotified());
    EXPECT_FALSE(p->value.has_value());
  }
  redis_.Resume();
}

// Review (shutdown safety): the daemon stops the tier before destroying the
// DNS/HTTPS adapters whose completions still hold a raw SharedTier*. After
// Stop() gets complete inline with nullopt and puts and Forget are ignored:
// no I/O, nothing reaches Redis; Stop() again returns at once.
TEST_F(RedisTierTest, AfterStopGetsCompleteInlineAndPutsAreIgnored) {
  auto tier = MakeTier(TierOptions(redis_.url()));
  ASSERT_NE(tier, nullptr);
  RawRedis raw(redis_.port());
  ASSERT_TRUE(Eventually([&] {
    tier->PutPolicy("kept.example", SamplePolicy());
    return GetPolicy(*tier, "kept.example").has_value();  // stored, served
  }));
  tier->Stop();
  const RedisTier::Stats before = tier->stats();

  auto policy = StartGet<StoredPolicy>(*tier, "kept.example");
  ASSERT_TRUE(policy->done.HasBeenNotified());  // inline, not a tier thread
  EXPECT_FALSE(policy->value.has_value());
  auto decision = StartGet<StoredDecision>(*tier, "kept.example");
  ASSERT_TRUE(decision->done.HasBeenNotified());
  EXPECT_FALSE(decision->value.has_value());

  tier->PutPolicy("after-stop.example", SamplePolicy());
  tier->PutDecision("after-stop.example",
                    StoredDecision{"r", NowMs() + absl::Hours(1)});
  tier->Forget("kept.example");
  tier->PutPolicy("Not Safe", SamplePolicy());  // not even noted as an error
  const absl::Time start = absl::Now();
  tier->Stop();
  EXPECT_LT(absl::Now() - start, kCallBound);

  // The tier has no thread left: had anything been queued, it would never
  // run, and nothing ran inline.
  EXPECT_FALSE(raw.Exists(l2::PolicyKey("after-stop.example")));
  EXPECT_FALSE(raw.Exists(l2::DecisionKey("after-stop.example")));
  EXPECT_TRUE(raw.Exists(l2::PolicyKey("kept.example")));  // not forgotten
  const RedisTier::Stats after = tier->stats();
  EXPECT_EQ(after.policy_hits, before.policy_hits);
  EXPECT_EQ(after.policy_misses, before.policy_misses);
  EXPECT_EQ(after.errors, before.errors);
  EXPECT_EQ(after.dropped, before.dropped + 2);  // the two gets
}

// Review (shutdown safety): callbacks that Stop() runs may call the tier —
// GetPolicy completes inline with nullopt, PutPolicy is ignored, Stop() again
// returns — and none of it deadlocks. A paused Redis holds the one worker in
// a command, so the other gets are still queued when Stop() runs.
TEST_F(RedisTierTest, CallbacksRunByStopMayCallTheTier) {
  RedisTier::Options options = TierOptions(redis_.url());
  options.timeout = kHungTimeout;
  options.workers = 1;
  std::unique_ptr<RedisTier> tier = MakeTier(options);
  ASSERT_NE(tier, nullptr);
  ASSERT_FALSE(GetPolicy(*tier, "warm.example").has_value());  // connected
  redis_.Pause();

  struct Outcome {
    std::atomic<int> outer{0};        // outer gets completed
    std::atomic<int> inner_inline{0};  // nested gets completed inline, nullopt
    std::atomic<int> on_stopper{0};   // outer gets completed by Stop()
  };
  auto outcome = std::make_shared<Outcome>();
  std::atomic<std::thread::id> stopper{};
  constexpr int kGets = 10;
  for (int i = 0; i < kGets; ++i) {
    RedisTier* t = tier.get();
    tier->GetPolicy("queued.example", [t, outcome, &stopper](
                                          std::optional<StoredPolicy> v) {
      EXPECT_FALSE(v.has_value());
      bool inner_done = false;
      t->GetPolicy("nested.example", [&](std::optional<StoredPolicy> w) {
        inner_done = !w.has_value();
      });
      if (inner_done) outcome->inner_inline.fetch_add(1);
      t->PutPolicy("nested.example", SamplePolicy());
      if (std::this_thread::get_id() == stopper.load()) {
        outcome->on_stopper.fetch_add(1);
        t->Stop();  // re-entered from its own callback: returns at once
      }
      outcome->outer.fetch_add(1);
    });
  }
  // Stop() on its own thread, so a deadlock fails the test, not stalls it.
  absl::Notification stopped;
  std::thread stopping([&] {
    stopper.store(std::this_thread::get_id());
    tier->Stop();
    stopped.Notify();
  });
  const bool returned =
      stopped.WaitForNotificationWithTimeout(GetBound(kHungTimeout));
  if (!returned) {
    // Deadlocked: leak both rather than hang the binary on the way out.
    stopping.detach();
    tier.release();
    FAIL() << "Stop() deadlocked";
  }
  stopping.join();
  EXPECT_EQ(outcome->outer.load(), kGets);
  EXPECT_EQ(outcome->inner_inline.load(), kGets);
  EXPECT_GE(outcome->on_stopper.load(), kGets - 1);  // all but the in-flight
  redis_.Resume();
  RawRedis raw(redis_.port());
  EXPECT_FALSE(raw.Exists(l2::PolicyKey("nested.example")));
}

// Review (shutdown safety): Stop() during a burst of gets from several
// threads, with Redis hung, returns within the bound (it waits only for the
// commands in flight, each limited by the timeout; without that it would
// wait forever), and every get — queued, in flight, or called after Stop()
// — completes exactly once with nullopt.
TEST_F(RedisTierTest, StopDuringBurstWithRedisPausedIsBounded) {
  RedisTier::Options options = TierOptions(redis_.url());
  options.timeout = kHungTimeout;
  auto tier = MakeTier(options);
  ASSERT_NE(tier, nullptr);
  ASSERT_FALSE(GetPolicy(*tier, "warm.example").has_value());  // connected
  redis_.Pause();

  constexpr int kThreads = 3;
  constexpr int kPerThread = 300;
  std::atomic<int> completed{0};
  std::atomic<int> hits{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        tier->GetDecision(absl::StrCat("b", t, "-", i, ".example"),
                          [&](std::optional<StoredDecision> d) {
                            if (d.has_value()) hits.fetch_add(1);
                            completed.fetch_add(1);
                          });
        // Spread over some 30+ ms, so Stop() lands in the middle.
        if (i % 10 == 0) absl::SleepFor(absl::Milliseconds(1));
      }
    });
  }
  go.store(true);
  absl::SleepFor(absl::Milliseconds(20));  // workers now in a command
  const absl::Time start = absl::Now();
  tier->Stop();
  const absl::Duration stop_took = absl::Now() - start;
  for (std::thread& t : threads) t.join();
  EXPECT_LT(stop_took, GetBound(kHungTimeout));
  EXPECT_EQ(completed.load(), kThreads * kPerThread);  // none outstanding
  EXPECT_EQ(hits.load(), 0);
  const RedisTier::Stats s = tier->stats();
  EXPECT_EQ(s.errors + s.timeouts + s.dropped + s.unavailable +
                s.decision_misses + s.decision_hits,
            static_cast<uint64_t>(kThreads * kPerThread));
  redis_.Resume();
}

}  // namespace
}  // namespace mxpolicy
