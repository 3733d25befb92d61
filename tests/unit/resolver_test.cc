// PolicyResolver over a fake DnsClient (the I/O seam): the first slice of
// Resolve — MX, per-host addresses and TLSA, DNSSEC states (SPEC G3, G5, G7,
// J4, J5, J7).
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/src/resolver/policy_resolver.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

// Answers from a table, synchronously; unknown queries are held forever
// (so a test can prove that the resolver does not wait for them).
class FakeDnsClient : public DnsClient {
 public:
  void Set(std::string name, RrType type, absl::StatusOr<DnsAnswer> answer) {
    table_[{std::move(name), type}] = std::move(answer);
  }
  void Lookup(absl::string_view name, RrType type, Callback done) override {
    asked_.push_back({std::string(name), type});
    auto it = table_.find({std::string(name), type});
    if (it == table_.end() && type == RrType::kTxt) {
      // No MTA-STS / TLSRPT unless a test configures it.
      DnsAnswer nx;
      nx.outcome = DnsOutcome::kNxDomain;
      nx.dnssec = DnssecState::kSecure;
      nx.ttl = absl::Seconds(3600);
      std::move(done)(nx);
      return;
    }
    if (it == table_.end()) {
      held_.push_back(std::move(done));
      return;
    }
    std::move(done)(it->second);
  }
  size_t held() const { return held_.size(); }
  bool Asked(const std::string& name, RrType type) const {
    for (const auto& q : asked_) {
      if (q.first == name && q.second == type) return true;
    }
    return false;
  }

 private:
  std::map<std::pair<std::string, RrType>, absl::StatusOr<DnsAnswer>> table_;
  std::vector<std::pair<std::string, RrType>> asked_;
  std::vector<Callback> held_;
};

class NoHttps : public HttpsFetcher {
 public:
  void Fetch(HttpsRequest, Callback done) override {
    std::move(done)(FetchResult{});
  }
};

DnsAnswer Answer(DnsOutcome outcome, DnssecState state) {
  DnsAnswer a;
  a.outcome = outcome;
  a.dnssec = state;
  a.ttl = absl::Seconds(300);
  return a;
}

DnsAnswer Mx(std::vector<MxRecord> records,
             DnssecState state = DnssecState::kSecure) {
  DnsAnswer a = Answer(DnsOutcome::kData, state);
  a.mx = std::move(records);
  return a;
}

DnsAnswer Addr(std::string ip, DnssecState state = DnssecState::kSecure) {
  DnsAnswer a = Answer(DnsOutcome::kData, state);
  a.addresses = {std::move(ip)};
  return a;
}

DnsAnswer Tlsa(std::vector<TlsaRecord> records) {
  DnsAnswer a = Answer(DnsOutcome::kData, DnssecState::kSecure);
  a.tlsa = std::move(records);
  return a;
}

DnsAnswer Bogus(std::string why) {
  DnsAnswer a = Answer(DnsOutcome::kError, DnssecState::kBogus);
  a.error = std::move(why);
  return a;
}

const TlsaRecord kDaneEe{3, 1, 1, std::string(32, '\x11')};

class ResolverTest : public ::testing::Test {
 protected:
  // A secure host with A, AAAA NODATA and the given TLSA answer.
  void SecureHost(const std::string& host, absl::StatusOr<DnsAnswer> tlsa) {
    dns_.Set(host, RrType::kA, Addr("192.0.2.1"));
    dns_.Set(host, RrType::kAaaa,
             Answer(DnsOutcome::kNoData, DnssecState::kSecure));
    dns_.Set("_25._tcp." + host, RrType::kTlsa, std::move(tlsa));
  }

  absl::StatusOr<v1::ResolveResponse> Resolve(absl::string_view domain) {
    std::optional<absl::StatusOr<v1::ResolveResponse>> result;
    resolver_.Resolve(domain, [&](absl::StatusOr<v1::ResolveResponse> r) {
      result = std::move(r);
    });
    EXPECT_TRUE(result.has_value()) << "resolution did not complete";
    if (!result) return absl::InternalError("did not complete");
    return *std::move(result);
  }

  FakeDnsClient dns_;
  NoHttps https_;
  RealClock clock_;
  sts::PolicyStore store_{clock_};
  PolicyResolver resolver_{dns_, https_, store_, PolicyResolver::Options()};
};

TEST_F(ResolverTest, InvalidDomainIsInvalidArgumentWithoutLookups) {
  absl::StatusOr<v1::ResolveResponse> r = Resolve("[192.0.2.1]");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(dns_.Asked("[192.0.2.1]", RrType::kMx));
}

TEST_F(ResolverTest, SecureMxWithUsableTlsaReportsDaneHost) {  // SPEC G7
  dns_.Set("dane.example", RrType::kMx, Mx({{10, "mx.dane.example"}}));
  SecureHost("mx.dane.example", Tlsa({kDaneEe}));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("DANE.example.");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->domain(), "dane.example");
  EXPECT_EQ(r->decision(), v1::DECISION_DANE_REQUIRED);
  EXPECT_THAT(r->reason(), HasSubstr("1 of 1 MX host(s) with usable TLSA"));
  EXPECT_EQ(r->mx_dnssec(), v1::DNSSEC_STATE_SECURE);
  EXPECT_EQ(r->source(), v1::SOURCE_FRESH);
  EXPECT_EQ(r->ttl().seconds(), 300);
  ASSERT_EQ(r->mx_hosts_size(), 1);
  const v1::MxHost& h = r->mx_hosts(0);
  EXPECT_EQ(h.hostname(), "mx.dane.example");
  EXPECT_EQ(h.preference(), 10u);
  EXPECT_EQ(h.address_dnssec(), v1::DNSSEC_STATE_SECURE);
  EXPECT_THAT(h.addresses(), ::testing::ElementsAre("192.0.2.1"));
  EXPECT_EQ(h.tlsa_state(), v1::TLSA_STATE_USABLE);
  EXPECT_EQ(h.tls_requirement(), v1::TLS_REQUIREMENT_DANE);
  EXPECT_EQ(h.tlsa_base_domain(), "mx.dane.example");
  ASSERT_EQ(h.tlsa_records_size(), 1);
  EXPECT_EQ(h.tlsa_records(0).usage(), 3u);
  EXPECT_EQ(h.tlsa_records(0).data(), kDaneEe.data);
}

TEST_F(ResolverTest, InsecureHostDoesNotWaitForTlsa) {  // SPEC G5
  dns_.Set("d.example", RrType::kMx, Mx({{10, "mx.insecure.example"}}));
  dns_.Set("mx.insecure.example", RrType::kA,
           Addr("192.0.2.2", DnssecState::kInsecure));
  dns_.Set("mx.insecure.example", RrType::kAaaa,
           Answer(DnsOutcome::kNoData, DnssecState::kInsecure));
  // No TLSA answer configured: the fake holds it forever.
  absl::StatusOr<v1::ResolveResponse> r = Resolve("d.example");
  ASSERT_TRUE(r.ok());
  const v1::MxHost& h = r->mx_hosts(0);
  EXPECT_EQ(h.address_dnssec(), v1::DNSSEC_STATE_INSECURE);
  EXPECT_EQ(h.tlsa_state(), v1::TLSA_STATE_INSECURE);
  EXPECT_EQ(h.tls_requirement(), v1::TLS_REQUIREMENT_OPPORTUNISTIC);
  EXPECT_EQ(r->decision(), v1::DECISION_NONE);
}

TEST_F(ResolverTest, MxAnswerFansOutToEveryHostAtOnce) {  // issue: parallelism
  // Only the MX answer is configured: every host lookup is held in flight.
  dns_.Set("f.example", RrType::kMx,
           Mx({{10, "a.f.example"}, {20, "b.f.example"}, {30, "c.f.example"}}));
  bool done = false;
  resolver_.Resolve("f.example", [&](auto) { done = true; });
  EXPECT_FALSE(done);
  for (const char* h : {"a.f.example", "b.f.example", "c.f.example"}) {
    EXPECT_TRUE(dns_.Asked(h, RrType::kA)) << h;
    EXPECT_TRUE(dns_.Asked(h, RrType::kAaaa)) << h;
    EXPECT_TRUE(dns_.Asked(std::string("_25._tcp.") + h, RrType::kTlsa)) << h;
  }
  EXPECT_EQ(dns_.held(), 9u);
}

TEST_F(ResolverTest, BogusMxIsReportedWithWhy) {  // SPEC G3
  dns_.Set("b.example", RrType::kMx, Bogus("signature expired"));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("b.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mx_dnssec(), v1::DNSSEC_STATE_BOGUS);
  EXPECT_EQ(r->mx_hosts_size(), 0);
  EXPECT_EQ(r->decision(), v1::DECISION_TEMPFAIL);
  EXPECT_THAT(r->reason(),
              HasSubstr("MX lookup for b.example bogus: signature expired"));
}

TEST_F(ResolverTest,
       MxTimeoutIsIndeterminate) {  // SPEC J7: MX SERVFAIL/timeout
  dns_.Set("t.example", RrType::kMx,
           absl::DeadlineExceededError("DNS lookup t.example/MX timed out"));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("t.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mx_dnssec(), v1::DNSSEC_STATE_INDETERMINATE);
  EXPECT_THAT(r->reason(), HasSubstr("timed out"));
}

TEST_F(ResolverTest, NxDomainAndNullMxHaveNoHosts) {  // SPEC J4, J7
  dns_.Set("nx.example", RrType::kMx,
           Answer(DnsOutcome::kNxDomain, DnssecState::kSecure));
  absl::StatusOr<v1::ResolveResponse> nx = Resolve("nx.example");
  ASSERT_TRUE(nx.ok());
  EXPECT_EQ(nx->decision(), v1::DECISION_NO_MAIL);
  EXPECT_THAT(nx->reason(), HasSubstr("NXDOMAIN"));
  EXPECT_EQ(nx->mx_hosts_size(), 0);

  dns_.Set("null.example", RrType::kMx, Mx({{0, ""}}));
  absl::StatusOr<v1::ResolveResponse> null_mx = Resolve("null.example");
  ASSERT_TRUE(null_mx.ok());
  EXPECT_EQ(null_mx->decision(), v1::DECISION_NO_MAIL);
  EXPECT_THAT(null_mx->reason(), HasSubstr("null MX"));
  EXPECT_EQ(null_mx->mx_hosts_size(), 0);
}

TEST_F(ResolverTest,
       NullMxMixedWithOthersIsIgnoredAndOrderKept) {  // SPEC J4, G3
  dns_.Set("m.example", RrType::kMx,
           Mx({{20, "b.m.example"},
               {0, ""},
               {10, "a.m.example"},
               {20, "c.m.example"},
               {30, "a.m.example"}}));
  for (const char* h : {"a.m.example", "b.m.example", "c.m.example"}) {
    SecureHost(h, Answer(DnsOutcome::kNxDomain, DnssecState::kSecure));
  }
  absl::StatusOr<v1::ResolveResponse> r = Resolve("m.example");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->mx_hosts_size(), 3);  // "." dropped, duplicate a.m dropped
  EXPECT_EQ(r->mx_hosts(0).hostname(), "a.m.example");
  EXPECT_EQ(r->mx_hosts(1).hostname(), "b.m.example");
  EXPECT_EQ(r->mx_hosts(2).hostname(), "c.m.example");
  EXPECT_EQ(r->mx_hosts(1).tlsa_state(), v1::TLSA_STATE_NONE);
}

TEST_F(ResolverTest, NoMxMeansImplicitMx) {  // SPEC J7 / G14
  dns_.Set("i.example", RrType::kMx,
           Answer(DnsOutcome::kNoData, DnssecState::kSecure));
  SecureHost("i.example", Tlsa({kDaneEe}));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("i.example");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->implicit_mx());
  ASSERT_EQ(r->mx_hosts_size(), 1);
  EXPECT_EQ(r->mx_hosts(0).hostname(), "i.example");
  EXPECT_EQ(r->mx_hosts(0).tlsa_state(), v1::TLSA_STATE_USABLE);
}

TEST_F(ResolverTest, UnusableTlsaMeansEncrypt) {  // SPEC G7, J12
  dns_.Set("u.example", RrType::kMx, Mx({{10, "mx.u.example"}}));
  SecureHost("mx.u.example", Tlsa({{1, 1, 1, std::string(32, 'x')},
                                   {3, 1, 1, std::string(31, 'x')}}));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("u.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mx_hosts(0).tlsa_state(), v1::TLSA_STATE_UNUSABLE);
  EXPECT_EQ(r->mx_hosts(0).tls_requirement(), v1::TLS_REQUIREMENT_ENCRYPT);
  EXPECT_EQ(r->mx_hosts(0).tlsa_records_size(), 0);
}

TEST_F(ResolverTest, BogusTlsaMakesHostUnusable) {  // SPEC G7, J12
  dns_.Set("e.example", RrType::kMx, Mx({{10, "mx.e.example"}}));
  SecureHost("mx.e.example", Bogus("no signatures"));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("e.example");
  ASSERT_TRUE(r.ok());
  const v1::MxHost& h = r->mx_hosts(0);
  EXPECT_EQ(h.tlsa_state(), v1::TLSA_STATE_ERROR);
  EXPECT_EQ(h.tls_requirement(), v1::TLS_REQUIREMENT_UNUSABLE);
  EXPECT_EQ(r->decision(), v1::DECISION_TEMPFAIL);
  EXPECT_THAT(h.reason(), HasSubstr("TLSA lookup for _25._tcp.mx.e.example "
                                    "bogus: no signatures"));
}

TEST_F(ResolverTest, IpLiteralMxTargetIsNeverLookedUp) {  // SPEC J5
  dns_.Set("ip.example", RrType::kMx, Mx({{10, "192.0.2.1"}}));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("ip.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mx_hosts(0).tls_requirement(), v1::TLS_REQUIREMENT_UNUSABLE);
  EXPECT_THAT(r->mx_hosts(0).reason(), HasSubstr("not a host name"));
  EXPECT_FALSE(dns_.Asked("192.0.2.1", RrType::kA));
}

}  // namespace
}  // namespace mxpolicy
