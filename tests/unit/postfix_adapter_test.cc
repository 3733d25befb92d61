// The Postfix adapter's pure logic: netstrings (SPEC I5), lookup keys (I1),
// replies per decision and Postfix version (I2–I4, DESIGN.md's table), the
// reply cap (I6) and the injection defence (Decisions: nothing from remote
// data reaches a reply unvalidated).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/postfix/netstring.h"
#include "client/postfix/policy_reply.h"
#include "client/postfix/reply_memo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxpolicy::postfix {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> Payloads(const std::vector<NetstringDecoder::Item>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.oversized ? "<oversized>" : i.payload);
  return out;
}

// SPEC I5: pipelined requests, split anywhere, each yields one item.
TEST(NetstringTest, PipelinedAndSplitAnywhere) {
  const std::string stream = "19:postfix example.com,11:postfix a.b,0:,";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    NetstringDecoder d(10000);
    std::vector<NetstringDecoder::Item> items;
    ASSERT_TRUE(d.Feed(stream.substr(0, cut), items).ok());
    ASSERT_TRUE(d.Feed(stream.substr(cut), items).ok());
    EXPECT_THAT(Payloads(items), ElementsAre("postfix example.com", "postfix a.b", ""));
    EXPECT_TRUE(d.idle());
  }
  EXPECT_EQ(EncodeNetstring("NOTFOUND "), "9:NOTFOUND ,");
}

// SPEC I5: malformed input fails (the server closes that connection only).
TEST(NetstringTest, MalformedIsAnError) {
  for (const char* bad : {"x:abc,", ":abc,", "3:abcX", "3;abc,", "1234567890:",
                          "-1:a,", " 3:abc,"}) {
    NetstringDecoder d(10000);
    std::vector<NetstringDecoder::Item> items;
    absl::Status s = d.Feed(bad, items);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("malformed netstring")) << bad;
    EXPECT_FALSE(d.Feed("3:abc,", items).ok()) << "stays failed: " << bad;
  }
}

// SPEC I6: a query over the limit is skipped unbuffered and reported, and
// the stream goes on.
TEST(NetstringTest, OversizedQueryIsSkipped) {
  NetstringDecoder d(10000);
  std::vector<NetstringDecoder::Item> items;
  const std::string big(10001, 'a');
  ASSERT_TRUE(d.Feed(absl::StrCat("10001:", big, ",5:p a.b,"), items).ok());
  EXPECT_THAT(Payloads(items), ElementsAre("<oversized>", "p a.b"));
  items.clear();
  ASSERT_TRUE(d.Feed(absl::StrCat("10000:", std::string(10000, 'b'), ","), items).ok());
  ASSERT_EQ(items.size(), 1u);
  EXPECT_FALSE(items[0].oversized);
}

TEST(RequestTest, MapNameAndKey) {
  absl::StatusOr<Request> r = ParseRequest("anyname example.com");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->map, "anyname");
  EXPECT_EQ(r->key, "example.com");
  for (const char* bad : {"nospace", " key", "name ", ""}) {
    EXPECT_FALSE(ParseRequest(bad).ok()) << bad;
  }
}

// SPEC I1: parent lookups, next-hops and IP literals are NOTFOUND (no
// domain); case, trailing dot and UTF-8 are normalised.
TEST(KeyTest, DomainForKey) {
  EXPECT_EQ(DomainForKey("Example.COM."), "example.com");
  EXPECT_EQ(DomainForKey("bücher.example"), "xn--bcher-kva.example");
  for (const char* none : {".example.com", "[relay.example]:587", "[192.0.2.1]",
                           "192.0.2.1", "relay.example:25", "[ipv6:2001:db8::1]",
                           "a b.example", "x=y.example", "{a}.example", ""}) {
    EXPECT_EQ(DomainForKey(none), std::nullopt) << none;
  }
}

TEST(VersionTest, Parse) {
  EXPECT_TRUE(ParsePostfixVersion("3.10.5")->AtLeast(3, 10, 5));
  EXPECT_FALSE(ParsePostfixVersion("3.10")->AtLeast(3, 10, 5));
  EXPECT_TRUE(ParsePostfixVersion("3.7")->AtLeast(3, 4));
  EXPECT_FALSE(ParsePostfixVersion("3.3")->AtLeast(3, 4));
  EXPECT_TRUE(ParsePostfixVersion("4.0")->AtLeast(3, 10, 5));
  for (const char* bad : {"3", "3.x", "three", "3.7.1.2", "1.1", "", "3..1"}) {
    EXPECT_FALSE(ParsePostfixVersion(bad).ok()) << bad;
  }
}

v1::ResolveResponse Sts(std::vector<std::string> patterns,
                        v1::Decision decision = v1::DECISION_STS_ENFORCE) {
  v1::ResolveResponse r;
  r.set_domain("example.com");
  r.set_decision(decision);
  v1::StsPolicy& p = *r.mutable_sts_policy();
  p.set_mode(decision == v1::DECISION_STS_TESTING ? v1::STS_MODE_TESTING
                                                  : v1::STS_MODE_ENFORCE);
  for (auto& pat : patterns) p.add_mx_patterns(pat);
  p.add_raw_lines("version: STSv1");
  p.add_raw_lines("mode: enforce");
  for (auto& pat : patterns) p.add_raw_lines(absl::StrCat("mx: ", pat));
  p.add_raw_lines("max_age: 86400");
  return r;
}

ReplyOptions Version(const char* v) {
  ReplyOptions o;
  o.version = *ParsePostfixVersion(v);
  return o;
}

// DESIGN.md's table; SPEC I2/I4 version gating of the MTA-STS answer.
TEST(ReplyTest, DecisionTableAndVersionGates) {
  v1::ResolveResponse r;
  r.set_decision(v1::DECISION_DANE_REQUIRED);
  EXPECT_EQ(PolicyReply(r, Version("3.3")), "OK dane-only");
  r.set_decision(v1::DECISION_DANE);
  EXPECT_EQ(PolicyReply(r, Version("3.3")), "OK dane");
  for (v1::Decision d : {v1::DECISION_NONE, v1::DECISION_NO_MAIL}) {
    r.set_decision(d);
    EXPECT_EQ(PolicyReply(r, Version("3.10.5")), "NOTFOUND ");
  }
  r.set_decision(v1::DECISION_TEMPFAIL);
  r.set_reason("MX lookup failed\n(SERVFAIL)");
  EXPECT_EQ(PolicyReply(r, Version("3.7")), "TEMP mxpolicy: MX lookup failed?(SERVFAIL)");

  const v1::ResolveResponse sts = Sts({"mx1.example.com", "*.example.net"});
  EXPECT_EQ(PolicyReply(sts, Version("3.3")),
            "OK secure match=mx1.example.com:.example.net");
  EXPECT_EQ(PolicyReply(sts, Version("3.7")),
            "OK secure match=mx1.example.com:.example.net servername=hostname");
  const std::string tlsrpt =
      " policy_type=sts policy_domain=example.com";
  const std::string lines =
      " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
      " { policy_string = mx: mx1.example.com } { policy_string = mx: *.example.net }"
      " { policy_string = max_age: 86400 }";
  EXPECT_EQ(PolicyReply(sts, Version("3.10")),
            "OK secure match=mx1.example.com:.example.net servername=hostname" +
                tlsrpt + lines);
  EXPECT_EQ(PolicyReply(sts, Version("3.10.5")),
            "OK secure match=mx1.example.com:.example.net servername=hostname" +
                tlsrpt + " mx_host_pattern=mx1.example.com mx_host_pattern=*.example.net" +
                lines);
}

// RFC 8461 §5: testing is not enforced unless the operator asks.
TEST(ReplyTest, TestingIsNotFoundUnlessStrict) {
  const v1::ResolveResponse t = Sts({"mx.example.com"}, v1::DECISION_STS_TESTING);
  EXPECT_EQ(PolicyReply(t, Version("3.7")), "NOTFOUND ");
  ReplyOptions strict = Version("3.7");
  strict.testing_as_enforce = true;
  EXPECT_EQ(PolicyReply(t, strict),
            "OK secure match=mx.example.com servername=hostname");
}

// Decisions (injection defence): a hostile answer never adds attributes.
TEST(ReplyTest, UnsafePatternsNeverReachTheReply) {
  for (const char* evil :
       {"mx.example.com servername=nexthop", "mx.example.com,match=evil.test",
        "mx{.example.com", "mx}.example.com", "mx:evil.example", "mx=x.example",
        "MX.EXAMPLE.COM", "mx.example.com\tx", "*.*.example.com", "", "*."}) {
    const std::string reply = PolicyReply(Sts({"good.example.com", evil}), Version("3.10.5"));
    EXPECT_THAT(reply, StartsWith("TEMP ")) << evil;
    EXPECT_THAT(reply, ::testing::Not(HasSubstr("evil"))) << evil;
  }
  v1::ResolveResponse bad_domain = Sts({"mx.example.com"});
  bad_domain.set_domain("example.com policy_type=evil");
  EXPECT_THAT(PolicyReply(bad_domain, Version("3.10")), StartsWith("TEMP "));
  // An unsafe policy line only drops the (optional) policy_string list.
  v1::ResolveResponse bad_line = Sts({"mx.example.com"});
  bad_line.mutable_sts_policy()->add_raw_lines("x: } policy_type=evil {");
  EXPECT_EQ(PolicyReply(bad_line, Version("3.10.5")),
            "OK secure match=mx.example.com servername=hostname policy_type=sts "
            "policy_domain=example.com mx_host_pattern=mx.example.com");
}

// SPEC I6: policy_string lines go first; patterns alone over the cap → TEMP.
TEST(ReplyTest, ReplyCap) {
  std::vector<std::string> many;
  for (int i = 0; i < 800; ++i) many.push_back(absl::StrCat("mx", i, ".example.com"));
  const v1::ResolveResponse r = Sts(many);
  ReplyOptions o = Version("3.10.5");
  const std::string full = PolicyReply(r, o);
  ASSERT_THAT(full, HasSubstr("policy_string"));
  o.max_reply_bytes = full.size();  // one byte short of the full reply
  const std::string trimmed = PolicyReply(r, o);
  EXPECT_THAT(trimmed, StartsWith("OK secure match=mx0.example.com:"));
  EXPECT_THAT(trimmed, ::testing::Not(HasSubstr("policy_string")));
  EXPECT_LT(trimmed.size(), o.max_reply_bytes);
  o.max_reply_bytes = 1000;
  EXPECT_THAT(PolicyReply(r, o), StartsWith("TEMP mxpolicy: MTA-STS policy too large"));
  // The default cap with a realistic worst case stays an OK.
  EXPECT_LT(full.size(), 100000u);
}

TEST(ReplyTest, TempReasonIsPrintableAndBounded) {
  const std::string r = TempReply(std::string(500, '\x01'));
  EXPECT_EQ(r.size(), 5u + 200u);
  EXPECT_EQ(r.find('\x01'), std::string::npos);
}

// SPEC I8 (answers fast and cached) within D7 (never past the answer's
// TTL): a memoised reply is served exactly until its answer's fresh_until.
TEST(ReplyMemoTest, FreshUntilItsAnswerExpires) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ReplyMemo memo(10, 1 << 20);
  memo.Put("postfix a.example", "12:OK dane-only,", t0 + absl::Seconds(60), t0);
  const std::string* hit = memo.Find("postfix a.example", t0 + absl::Seconds(59));
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(*hit, "12:OK dane-only,");
  EXPECT_EQ(memo.Find("postfix a.example", t0 + absl::Seconds(60)), nullptr);
  // Keyed by the request's exact bytes: another map name or spelling is
  // another entry (answered the long way, then memoised on its own).
  EXPECT_EQ(memo.Find("postfix A.example", t0), nullptr);
  EXPECT_EQ(memo.Find("other a.example", t0), nullptr);
}

// Stale answers (fresh_until in the past), overlong requests and a memo of
// size 0 store nothing.
TEST(ReplyMemoTest, StoresOnlyFreshShortRequests) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ReplyMemo memo(10, 1 << 20);
  memo.Put("postfix stale.example", "9:NOTFOUND ,", absl::InfinitePast(), t0);
  memo.Put("postfix now.example", "9:NOTFOUND ,", t0, t0);
  const std::string long_request =
      "postfix " + std::string(ReplyMemo::kMaxRequestBytes, 'a');
  memo.Put(long_request, "9:NOTFOUND ,", t0 + absl::Hours(1), t0);
  EXPECT_EQ(memo.size(), 0u);
  ReplyMemo off(0, 1 << 20);
  off.Put("postfix a.example", "9:NOTFOUND ,", t0 + absl::Hours(1), t0);
  EXPECT_EQ(off.size(), 0u);
  EXPECT_EQ(off.Find("postfix a.example", t0), nullptr);
}

// Bounded in entries and bytes: a full memo takes nothing new until an
// entry expires (then the expired ones are swept); a newer answer for the
// same request replaces the old one.
TEST(ReplyMemoTest, BoundedAndReplaced) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ReplyMemo memo(2, 1 << 20);
  memo.Put("postfix a", "3:one,", t0 + absl::Seconds(10), t0);
  memo.Put("postfix b", "3:two,", t0 + absl::Seconds(20), t0);
  memo.Put("postfix c", "5:three,", t0 + absl::Seconds(30), t0);
  EXPECT_EQ(memo.Find("postfix c", t0), nullptr);
  EXPECT_EQ(memo.size(), 2u);
  const absl::Time t1 = t0 + absl::Seconds(10);  // a expired
  memo.Put("postfix c", "5:three,", t1 + absl::Seconds(30), t1);
  EXPECT_EQ(memo.size(), 2u);
  ASSERT_NE(memo.Find("postfix c", t1), nullptr);
  EXPECT_EQ(memo.Find("postfix a", t1), nullptr);
  memo.Put("postfix b", "4:two2,", t1 + absl::Seconds(60), t1);
  ASSERT_NE(memo.Find("postfix b", t1 + absl::Seconds(30)), nullptr);
  EXPECT_EQ(*memo.Find("postfix b", t1 + absl::Seconds(30)), "4:two2,");
  EXPECT_EQ(memo.bytes(), std::string("postfix c5:three,postfix b4:two2,").size());

  ReplyMemo small(100, 20);  // bytes: room for one entry of 15
  small.Put("postfix a", "3:one,", t0 + absl::Hours(1), t0);
  small.Put("postfix b", "3:two,", t0 + absl::Hours(1), t0);
  EXPECT_EQ(small.size(), 1u);
  EXPECT_EQ(small.bytes(), 15u);
}

// A full memo keeps taking new requests as its entries expire, however
// often that happens (it sweeps at most once a second).
TEST(ReplyMemoTest, KeepsTakingNewRequestsAfterEachExpiry) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  ReplyMemo memo(2, 1 << 20);
  memo.Put("postfix a", "3:one,", t0 + absl::Seconds(10), t0);
  memo.Put("postfix b", "3:two,", t0 + absl::Seconds(10), t0);
  const absl::Time t1 = t0 + absl::Seconds(10);  // both expired
  memo.Put("postfix c", "5:three,", t1 + absl::Seconds(10), t1);
  memo.Put("postfix d", "4:four,", t1 + absl::Milliseconds(10500), t1);
  EXPECT_EQ(memo.size(), 2u);
  ASSERT_NE(memo.Find("postfix d", t1), nullptr);
  const absl::Time t2 = t1 + absl::Seconds(10);  // c expired, d not yet
  memo.Put("postfix e", "4:five,", t2 + absl::Seconds(10), t2);
  ASSERT_NE(memo.Find("postfix e", t2), nullptr);
  EXPECT_EQ(memo.Find("postfix c", t2), nullptr);
  // d expires half a second after that sweep: the next one waits for the
  // second to pass.
  memo.Put("postfix f", "3:six,", t2 + absl::Seconds(10), t2 + absl::Milliseconds(600));
  EXPECT_EQ(memo.Find("postfix f", t2 + absl::Milliseconds(600)), nullptr);
  memo.Put("postfix f", "3:six,", t2 + absl::Seconds(10), t2 + absl::Seconds(1));
  ASSERT_NE(memo.Find("postfix f", t2 + absl::Seconds(1)), nullptr);
  EXPECT_EQ(memo.size(), 2u);
}

}  // namespace
}  // namespace mxpolicy::postfix
