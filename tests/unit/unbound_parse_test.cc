// ParseUnboundResult: libunbound results → DnsAnswer values, including hostile
// RDATA (STYLE.md: untrusted data gets a clear error, never a crash) and the
// bogus-before-anything rule (TESTING.md; SPEC G1).
#include <unbound.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/src/dns/unbound_dns_client.h"

namespace mxpolicy {
namespace {

// Owns the arrays a ub_result points into.
struct FakeResult {
  std::vector<std::string> rdata;
  std::vector<char*> data;
  std::vector<int> len;
  ub_result result{};

  explicit FakeResult(std::vector<std::string> records, int rcode = 0)
      : rdata(std::move(records)) {
    for (std::string& r : rdata) {
      data.push_back(r.data());
      len.push_back(static_cast<int>(r.size()));
    }
    data.push_back(nullptr);
    len.push_back(0);
    result.data = data.data();
    result.len = len.data();
    result.rcode = rcode;
    result.havedata = !rdata.empty();
    result.ttl = 300;
  }
};

std::string Wire(std::initializer_list<std::string> labels) {
  std::string out;
  for (const std::string& l : labels) {
    out.push_back(static_cast<char>(l.size()));
    out += l;
  }
  out.push_back('\0');
  return out;
}

TEST(UnboundParseTest, BogusIsCheckedBeforeData) {  // SPEC G1
  FakeResult f({std::string("\x7f\0\0\1", 4)});
  f.result.bogus = 1;
  f.result.secure = 0;
  char why[] = "signature expired";
  f.result.why_bogus = why;
  DnsAnswer a = ParseUnboundResult("x.test", RrType::kA, f.result);
  EXPECT_EQ(a.outcome, DnsOutcome::kError);
  EXPECT_EQ(a.dnssec, DnssecState::kBogus);
  EXPECT_EQ(a.error, "signature expired");
  EXPECT_TRUE(a.addresses.empty());
}

TEST(UnboundParseTest, ServfailIsIndeterminateError) {  // SPEC G3
  FakeResult f({}, /*rcode=*/2);
  DnsAnswer a = ParseUnboundResult("x.test", RrType::kMx, f.result);
  EXPECT_EQ(a.outcome, DnsOutcome::kError);
  EXPECT_EQ(a.dnssec, DnssecState::kIndeterminate);
  EXPECT_EQ(a.error, "SERVFAIL");
}

TEST(UnboundParseTest, SecureNxDomainAndNoData) {  // SPEC G7 secure denial
  FakeResult nx({}, 3);
  nx.result.nxdomain = 1;
  nx.result.secure = 1;
  DnsAnswer a = ParseUnboundResult("X.Test.", RrType::kTlsa, nx.result);
  EXPECT_EQ(a.outcome, DnsOutcome::kNxDomain);
  EXPECT_EQ(a.dnssec, DnssecState::kSecure);
  EXPECT_EQ(a.qname, "x.test");

  FakeResult nodata({});
  DnsAnswer b = ParseUnboundResult("x.test", RrType::kAaaa, nodata.result);
  EXPECT_EQ(b.outcome, DnsOutcome::kNoData);
  EXPECT_EQ(b.dnssec, DnssecState::kInsecure);
}

TEST(UnboundParseTest, ParsesMxLowercasedWithoutTrailingDot) {
  FakeResult f({std::string("\0\x0a", 2) + Wire({"MX1", "Example", "test"}),
                std::string("\0\0", 2) + Wire({})});
  f.result.secure = 1;
  DnsAnswer a = ParseUnboundResult("example.test", RrType::kMx, f.result);
  ASSERT_EQ(a.outcome, DnsOutcome::kData);
  ASSERT_EQ(a.mx.size(), 2u);
  EXPECT_EQ(a.mx[0].preference, 10);
  EXPECT_EQ(a.mx[0].exchange, "mx1.example.test");
  EXPECT_EQ(a.mx[1].exchange, "");  // null MX target (RFC 7505)
  EXPECT_EQ(a.ttl, absl::Seconds(300));
}

TEST(UnboundParseTest, HostileLabelBytesAreEscaped) {
  FakeResult f({std::string("\0\x0a", 2) + Wire({"a b", "x.y", "test"})});
  DnsAnswer a = ParseUnboundResult("example.test", RrType::kMx, f.result);
  ASSERT_EQ(a.outcome, DnsOutcome::kData);
  EXPECT_EQ(a.mx[0].exchange, "a\\032b.x\\046y.test");
}

TEST(UnboundParseTest, MalformedRdataIsAnErrorNotPartialData) {
  // Second MX has a label length running past the end.
  FakeResult f({std::string("\0\x0a", 2) + Wire({"ok", "test"}),
                std::string("\0\x0a\x09short", 8)});
  DnsAnswer a = ParseUnboundResult("example.test", RrType::kMx, f.result);
  EXPECT_EQ(a.outcome, DnsOutcome::kError);
  EXPECT_EQ(a.error, "malformed MX record");
  EXPECT_TRUE(a.mx.empty());

  FakeResult short_a({std::string("\x7f\0\1", 3)});
  EXPECT_EQ(ParseUnboundResult("x.test", RrType::kA, short_a.result).outcome,
            DnsOutcome::kError);
}

TEST(UnboundParseTest, TxtKeepsStringsApartAndJoins) {  // SPEC A3
  FakeResult f(
      {std::string("\x0ev=STSv1; id=ab\x03"
                   "cd;")});
  DnsAnswer a = ParseUnboundResult("_mta-sts.x.test", RrType::kTxt, f.result);
  ASSERT_EQ(a.txt.size(), 1u);
  ASSERT_EQ(a.txt[0].strings.size(), 2u);
  EXPECT_EQ(a.txt[0].strings[0], "v=STSv1; id=ab");
  EXPECT_EQ(a.txt[0].Joined(), "v=STSv1; id=abcd;");
}

TEST(UnboundParseTest, ParsesTlsaAndAaaa) {
  FakeResult t({std::string("\x03\x01\x01") + std::string(32, '\xab')});
  DnsAnswer a = ParseUnboundResult("_25._tcp.mx.test", RrType::kTlsa, t.result);
  ASSERT_EQ(a.tlsa.size(), 1u);
  EXPECT_EQ(a.tlsa[0].usage, 3);
  EXPECT_EQ(a.tlsa[0].data.size(), 32u);

  FakeResult six({std::string(15, '\0') + "\x01"});
  DnsAnswer b = ParseUnboundResult("mx.test", RrType::kAaaa, six.result);
  ASSERT_EQ(b.addresses.size(), 1u);
  EXPECT_EQ(b.addresses[0], "::1");
}

}  // namespace
}  // namespace mxpolicy
