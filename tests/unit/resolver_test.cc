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
#include "tests/support/fake_clock.h"
#include "tests/support/fake_shared_tier.h"
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

// Serves policy bodies by host; counts fetches. Unknown hosts: connect error.
class FakeHttps : public HttpsFetcher {
 public:
  void Serve(const std::string& host, std::string body, int status = 200,
             std::string media_type = "text/plain") {
    FetchResult r;
    r.error = FetchError::kOk;
    r.http_status = status;
    r.media_type = std::move(media_type);
    r.body = std::move(body);
    responses_[host] = std::move(r);
  }
  void Fetch(HttpsRequest request, Callback done) override {
    ++fetches_;
    last_ = request;
    auto it = responses_.find(request.host);
    if (it == responses_.end()) {
      FetchResult r;
      r.error = FetchError::kConnect;
      r.error_detail = "connection refused";
      std::move(done)(r);
      return;
    }
    std::move(done)(it->second);
  }
  int fetches() const { return fetches_; }
  const HttpsRequest& last() const { return last_; }

 private:
  std::map<std::string, FetchResult> responses_;
  int fetches_ = 0;
  HttpsRequest last_;
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

  // Publishes an MTA-STS policy for `domain` (TXT id, policy host, body).
  void StsPolicy(const std::string& domain, const std::string& id,
                 const std::string& body) {
    DnsAnswer txt = Answer(DnsOutcome::kData, DnssecState::kInsecure);
    txt.txt = {TxtRecord{{"v=STSv1; id=" + id + ";"}}};
    dns_.Set("_mta-sts." + domain, RrType::kTxt, txt);
    dns_.Set("mta-sts." + domain, RrType::kA,
             Addr("192.0.2.80", DnssecState::kInsecure));
    dns_.Set("mta-sts." + domain, RrType::kAaaa,
             Answer(DnsOutcome::kNoData, DnssecState::kInsecure));
    https_.Serve("mta-sts." + domain, body);
  }

  FakeDnsClient dns_;
  FakeHttps https_;
  RealClock clock_;
  sts::PolicyStore store_{clock_};
  PolicyResolver resolver_{dns_, https_, store_,
                           PolicyResolver::Options{.sts_https_port = 8443}};
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

constexpr char kEnforce[] =
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.s.example\r\n"
    "max_age: 86400\r\n";

TEST_F(ResolverTest, StsEnforceWithoutDane) {  // SPEC E1, E8, B1
  dns_.Set("s.example", RrType::kMx,
           Mx({{10, "mx1.s.example"}, {20, "mx2.s.example"}},
              DnssecState::kInsecure));
  for (const char* h : {"mx1.s.example", "mx2.s.example"}) {
    dns_.Set(h, RrType::kA, Addr("192.0.2.1", DnssecState::kInsecure));
    dns_.Set(h, RrType::kAaaa,
             Answer(DnsOutcome::kNoData, DnssecState::kInsecure));
  }
  StsPolicy("s.example", "20240101", kEnforce);
  absl::StatusOr<v1::ResolveResponse> r = Resolve("s.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->decision(), v1::DECISION_STS_ENFORCE) << r->reason();
  EXPECT_EQ(https_.last().host, "mta-sts.s.example");
  EXPECT_EQ(https_.last().connect_address, "192.0.2.80");  // pinned (B2)
  EXPECT_EQ(https_.last().port, 8443);
  EXPECT_EQ(r->sts_policy().id(), "20240101");
  EXPECT_EQ(r->sts_policy().mode(), v1::STS_MODE_ENFORCE);
  EXPECT_THAT(r->sts_policy().mx_patterns(),
              ::testing::ElementsAre("mx1.s.example"));
  EXPECT_EQ(r->sts_policy().max_age().seconds(), 86400);
  EXPECT_EQ(r->sts_policy().raw_lines_size(), 4);
  EXPECT_TRUE(r->mx_hosts(0).sts_allowed());
  EXPECT_EQ(r->mx_hosts(0).tls_requirement(), v1::TLS_REQUIREMENT_PKIX);
  EXPECT_FALSE(r->mx_hosts(1).sts_allowed());  // E6: not filtered out
  EXPECT_EQ(r->mx_hosts(1).tls_requirement(), v1::TLS_REQUIREMENT_UNUSABLE);
  EXPECT_THAT(r->mx_hosts(1).reason(), HasSubstr("matches no mx pattern"));
}

TEST_F(ResolverTest, J13_DaneUsableBeatsStsEnforce) {  // SPEC F1, F3
  dns_.Set("p.example", RrType::kMx, Mx({{10, "mx.p.example"}}));
  SecureHost("mx.p.example", Tlsa({kDaneEe}));
  StsPolicy("p.example", "1",
            "version: STSv1\nmode: enforce\nmx: other.example\nmax_age: 60\n");
  absl::StatusOr<v1::ResolveResponse> r = Resolve("p.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->decision(), v1::DECISION_DANE_REQUIRED);
  EXPECT_EQ(r->mx_hosts(0).tls_requirement(), v1::TLS_REQUIREMENT_DANE);
  EXPECT_FALSE(r->mx_hosts(0).sts_allowed());  // informational only
}

TEST_F(ResolverTest, J13_DaneErrorIsTempfailNotSts) {  // SPEC F1, F4
  dns_.Set("q.example", RrType::kMx, Mx({{10, "mx.q.example"}}));
  SecureHost("mx.q.example", Bogus("signature expired"));
  StsPolicy("q.example", "1",
            "version: STSv1\nmode: enforce\nmx: mx.q.example\nmax_age: 60\n");
  absl::StatusOr<v1::ResolveResponse> r = Resolve("q.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->decision(), v1::DECISION_TEMPFAIL);
}

TEST_F(ResolverTest, J13_NoDaneStsTestingIsTesting) {
  dns_.Set("t.example", RrType::kMx, Mx({{10, "mx.t.example"}}));
  SecureHost("mx.t.example",
             Answer(DnsOutcome::kNxDomain, DnssecState::kSecure));
  StsPolicy("t.example", "1",
            "version: STSv1\nmode: testing\nmx: mx.t.example\nmax_age: 60\n");
  absl::StatusOr<v1::ResolveResponse> r = Resolve("t.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->decision(), v1::DECISION_STS_TESTING);
  EXPECT_EQ(r->mx_hosts(0).tls_requirement(),
            v1::TLS_REQUIREMENT_OPPORTUNISTIC);
  EXPECT_TRUE(r->mx_hosts(0).sts_allowed());
}

TEST_F(ResolverTest, B5_B7_BadResponsesMeanNoPolicy) {  // SPEC B10
  dns_.Set("b.example", RrType::kMx, Mx({{10, "mx.b.example"}}));
  SecureHost("mx.b.example", Answer(DnsOutcome::kNoData, DnssecState::kSecure));
  StsPolicy("b.example", "1", kEnforce);
  https_.Serve("mta-sts.b.example", kEnforce, 301);
  absl::StatusOr<v1::ResolveResponse> r = Resolve("b.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->decision(), v1::DECISION_NONE);
  EXPECT_THAT(r->reason(), HasSubstr("redirects are not followed"));
  EXPECT_FALSE(r->has_sts_policy());
}

TEST_F(ResolverTest, D3_CachedPolicyOutlivesTxtRecord) {
  dns_.Set("c.example", RrType::kMx,
           Mx({{10, "mx1.s.example"}}, DnssecState::kInsecure));
  dns_.Set("mx1.s.example", RrType::kA,
           Addr("192.0.2.1", DnssecState::kInsecure));
  dns_.Set("mx1.s.example", RrType::kAaaa,
           Answer(DnsOutcome::kNoData, DnssecState::kInsecure));
  StsPolicy("c.example", "7", kEnforce);
  ASSERT_EQ(Resolve("c.example")->decision(), v1::DECISION_STS_ENFORCE);
  dns_.Set("_mta-sts.c.example", RrType::kTxt,
           Answer(DnsOutcome::kNxDomain, DnssecState::kInsecure));
  absl::StatusOr<v1::ResolveResponse> r = Resolve("c.example");
  EXPECT_EQ(r->decision(), v1::DECISION_STS_ENFORCE);
  EXPECT_THAT(r->reason(), HasSubstr("until it expires"));
  EXPECT_EQ(https_.fetches(), 1);  // D1/D2: no second fetch
}

TEST_F(ResolverTest, A9_DiscoveryFailureFlag) {
  dns_.Set("f9.example", RrType::kMx, Mx({{10, "mx.f9.example"}}));
  SecureHost("mx.f9.example", Answer(DnsOutcome::kNoData, DnssecState::kSecure));
  DnsAnswer servfail = Answer(DnsOutcome::kError, DnssecState::kIndeterminate);
  servfail.error = "SERVFAIL";
  dns_.Set("_mta-sts.f9.example", RrType::kTxt, servfail);
  EXPECT_EQ(Resolve("f9.example")->decision(), v1::DECISION_NONE);
  // NONE because discovery failed, not because there is no policy.
  EXPECT_TRUE(Resolve("f9.example")->provisional());
  PolicyResolver strict(
      dns_, https_, store_,
      PolicyResolver::Options{.sts_discovery_failure_tempfail = true});
  std::optional<absl::StatusOr<v1::ResolveResponse>> r;
  strict.Resolve("f9.example", [&](auto x) { r = std::move(x); });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)->decision(), v1::DECISION_TEMPFAIL);
}

TEST_F(ResolverTest, D5_DailyRefreshWithoutTraffic) {
  testing::FakeClock clock;
  sts::PolicyStore store(clock);
  PolicyResolver resolver(dns_, https_, store, PolicyResolver::Options());
  dns_.Set("z.example", RrType::kMx,
           Mx({{10, "mx1.s.example"}}, DnssecState::kInsecure));
  dns_.Set("mx1.s.example", RrType::kA,
           Addr("192.0.2.1", DnssecState::kInsecure));
  dns_.Set("mx1.s.example", RrType::kAaaa,
           Answer(DnsOutcome::kNoData, DnssecState::kInsecure));
  StsPolicy("z.example", "1", kEnforce);
  resolver.Resolve("z.example", [](auto) {});
  ASSERT_EQ(https_.fetches(), 1);
  EXPECT_EQ(resolver.RefreshDuePolicies(10), 0u);
  clock.Advance(absl::Hours(13) + absl::Minutes(1));  // max_age/2 + jitter
  EXPECT_EQ(resolver.RefreshDuePolicies(10), 1u);
  EXPECT_EQ(https_.fetches(), 2);  // same id, fetched again (RFC 8461 §10.2)
  EXPECT_EQ(resolver.RefreshDuePolicies(10), 0u);
}

TEST_F(ResolverTest, TlsRptRuaIsReported) {  // SPEC H1
  dns_.Set("r.example", RrType::kMx, Mx({{10, "mx.r.example"}}));
  SecureHost("mx.r.example", Answer(DnsOutcome::kNoData, DnssecState::kSecure));
  DnsAnswer txt = Answer(DnsOutcome::kData, DnssecState::kInsecure);
  txt.txt = {TxtRecord{{"v=TLSRPTv1; rua=mailto:tls@r.example"}}};
  dns_.Set("_smtp._tls.r.example", RrType::kTxt, txt);
  absl::StatusOr<v1::ResolveResponse> r = Resolve("r.example");
  EXPECT_THAT(r->tlsrpt_rua(), ::testing::ElementsAre("mailto:tls@r.example"));
}

// A policy whose fetch fails (no policy cached) gives a provisional NONE;
// a domain without MTA-STS gives a plain one.
TEST_F(ResolverTest, FailedFetchWithoutCachedPolicyIsProvisional) {  // SPEC D4
  dns_.Set("q.example", RrType::kMx,
           Mx({{10, "mx1.s.example"}}, DnssecState::kInsecure));
  dns_.Set("mx1.s.example", RrType::kA,
           Addr("192.0.2.1", DnssecState::kInsecure));
  dns_.Set("mx1.s.example", RrType::kAaaa,
           Answer(DnsOutcome::kNoData, DnssecState::kInsecure));
  EXPECT_FALSE(Resolve("q.example")->provisional()) << "no TXT: no MTA-STS";
  StsPolicy("q.example", "1", kEnforce);
  https_.Serve("mta-sts.q.example", "", 500);
  absl::StatusOr<v1::ResolveResponse> r = Resolve("q.example");
  EXPECT_EQ(r->decision(), v1::DECISION_NONE);
  EXPECT_TRUE(r->provisional()) << r->reason();
}

// ---- the shared L2 tier (DESIGN.md "Caching" L2; RFC 8461 §10.2) ----

class ResolverTierTest : public ResolverTest {
 protected:
  ResolverTierTest() {
    dns_.Set("t.example", RrType::kMx,
             Mx({{10, "mx1.s.example"}}, DnssecState::kInsecure));
    dns_.Set("mx1.s.example", RrType::kA,
             Addr("192.0.2.1", DnssecState::kInsecure));
    dns_.Set("mx1.s.example", RrType::kAaaa,
             Answer(DnsOutcome::kNoData, DnssecState::kInsecure));
  }
  // The policy as another replica fetched it an hour ago.
  StoredPolicy Shared(std::string id = "5", std::string body = kEnforce) {
    const absl::Time fetched = clock_.Now() - absl::Hours(1);
    return StoredPolicy{std::move(id), std::move(body), fetched,
                        fetched + absl::Seconds(86400)};
  }
  absl::StatusOr<v1::ResolveResponse> ResolveWithTier(absl::string_view d) {
    std::optional<absl::StatusOr<v1::ResolveResponse>> result;
    tiered_.Resolve(d, [&](absl::StatusOr<v1::ResolveResponse> r) {
      result = std::move(r);
    });
    if (!result) return absl::InternalError("did not complete");
    return *std::move(result);
  }

  testing::FakeSharedTier tier_;
  PolicyResolver tiered_{dns_, https_, store_,
                         PolicyResolver::Options{.sts_https_port = 8443},
                         &tier_};
};

TEST_F(ResolverTierTest, SharedPolicySparesTheFetch) {
  StsPolicy("t.example", "5", kEnforce);
  tier_.policies["t.example"] = Shared();
  absl::StatusOr<v1::ResolveResponse> r = ResolveWithTier("t.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->decision(), v1::DECISION_STS_ENFORCE) << r->reason();
  EXPECT_EQ(https_.fetches(), 0);
  ASSERT_TRUE(store_.Get("t.example").has_value());
  EXPECT_EQ(store_.Get("t.example")->id, "5");
  // Held now: the next resolution does not ask the tier again.
  EXPECT_TRUE(ResolveWithTier("t.example").ok());
  EXPECT_EQ(tier_.policy_gets, 1);
}

// A replica restarted after the domain withdrew its TXT record still
// enforces the policy the fleet had cached (RFC 8461 §10.2; SPEC D3).
TEST_F(ResolverTierTest, SharedPolicyOutlivesTheTxtRecord) {
  tier_.policies["t.example"] = Shared();  // no TXT record published
  absl::StatusOr<v1::ResolveResponse> r = ResolveWithTier("t.example");
  EXPECT_EQ(r->decision(), v1::DECISION_STS_ENFORCE) << r->reason();
  EXPECT_THAT(r->reason(), HasSubstr("until it expires"));
}

// Redis content is re-checked like HTTPS and DNS content: the policy
// grammar (SPEC C), the id grammar (SPEC A5), a lifetime within max_age.
TEST_F(ResolverTierTest, UnfitSharedPoliciesAreIgnored) {
  StsPolicy("t.example", "5", kEnforce);
  StoredPolicy too_long = Shared();
  too_long.expires_at = too_long.fetched_at + absl::Hours(48);
  StoredPolicy future = Shared();
  future.fetched_at = clock_.Now() + absl::Hours(1);
  future.expires_at = future.fetched_at + absl::Hours(24);
  const std::vector<StoredPolicy> unfit = {
      Shared("5", "version: STSv1\r\nmode: enforce\r\n"),  // no mx, max_age
      Shared("5!", kEnforce), Shared("", kEnforce),
      Shared(std::string(33, 'a'), kEnforce), too_long, future};
  int fetches = 0;
  for (const StoredPolicy& p : unfit) {
    store_.Forget("t.example");
    tier_.policies["t.example"] = p;
    absl::StatusOr<v1::ResolveResponse> r = ResolveWithTier("t.example");
    EXPECT_EQ(r->decision(), v1::DECISION_STS_ENFORCE);
    EXPECT_EQ(https_.fetches(), ++fetches) << "id " << p.id << ": fetched";
  }
}

TEST_F(ResolverTierTest, FetchedPoliciesAreShared) {
  StsPolicy("t.example", "5", kEnforce);
  ASSERT_EQ(ResolveWithTier("t.example")->decision(),
            v1::DECISION_STS_ENFORCE);
  ASSERT_EQ(tier_.put_policies.size(), 1u);
  const StoredPolicy& p = tier_.put_policies[0].second;
  EXPECT_EQ(tier_.put_policies[0].first, "t.example");
  EXPECT_EQ(p.id, "5");
  EXPECT_EQ(p.body, kEnforce);  // the raw body: readers parse it again
  EXPECT_EQ(p.expires_at - p.fetched_at, absl::Seconds(86400));
}

}  // namespace
}  // namespace mxpolicy
