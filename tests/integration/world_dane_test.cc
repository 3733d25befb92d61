// Resolve over the real adapters against the real world, one case per world
// domain: the decision, each host's requirement, DNSSEC state and TLSA
// records (issue "DANE engine"; SPEC F, G, J4–J7, J12, J13). The daemon runs
// in-process; answers travel over a real gRPC channel.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/app/daemon.h"
#include "tests/support/world_daemon.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

struct HostWant {
  std::string name;
  v1::TlsRequirement requirement;
  v1::TlsaState tlsa_state;
  // "u s m" of each usable record, e.g. "3 1 1"; data length checked apart.
  std::vector<std::string> records = {};
  std::string base = "";  // expected tlsa_base_domain when records exist
};

struct DomainWant {
  std::string domain;
  v1::Decision decision;
  v1::DnssecState mx;
  std::vector<HostWant> hosts;
  std::string reason = "";  // substring
};

class WorldDaneTest : public ::testing::TestWithParam<DomainWant> {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    ServerConfig config = testing::WorldServerConfig(*env);
    // mx-100.test: unbound validates its 100 additional A records in
    // batches (~3.5 s); lame.test fails fast.
    config.dns_timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> world =
        testing::WorldDaemon::Start(config);
    ASSERT_TRUE(world.ok()) << world.status();
    world_ = world->release();
  }
  static void TearDownTestSuite() { delete world_; }
  static testing::WorldDaemon* world_;
};

testing::WorldDaemon* WorldDaneTest::world_ = nullptr;

TEST_P(WorldDaneTest, Resolve) {
  const DomainWant& want = GetParam();
  v1::ResolveResponse r;
  grpc::Status status = world_->Resolve(want.domain, &r);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(r.domain(), want.domain);
  EXPECT_EQ(r.decision(), want.decision) << r.reason();
  EXPECT_EQ(r.mx_dnssec(), want.mx) << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr(want.reason));
  ASSERT_EQ(r.mx_hosts_size(), static_cast<int>(want.hosts.size()))
      << r.reason();
  for (size_t i = 0; i < want.hosts.size(); ++i) {
    const v1::MxHost& got = r.mx_hosts(static_cast<int>(i));
    const HostWant& w = want.hosts[i];
    EXPECT_EQ(got.hostname(), w.name);
    EXPECT_EQ(got.tls_requirement(), w.requirement)
        << w.name << ": " << got.reason();
    EXPECT_EQ(got.tlsa_state(), w.tlsa_state) << w.name << ": " << got.reason();
    std::vector<std::string> records;
    for (const v1::TlsaRecord& t : got.tlsa_records()) {
      records.push_back(
          absl::StrCat(t.usage(), " ", t.selector(), " ", t.matching_type()));
      if (t.matching_type() == 1) {
        EXPECT_EQ(t.data().size(), 32u);
      }
    }
    EXPECT_EQ(records, w.records) << w.name;
    if (!w.records.empty()) {
      EXPECT_EQ(got.tlsa_base_domain(), w.base);
    }
  }
}

using v1::DNSSEC_STATE_BOGUS;
using v1::DNSSEC_STATE_INDETERMINATE;
using v1::DNSSEC_STATE_INSECURE;
using v1::DNSSEC_STATE_SECURE;
constexpr auto kDane = v1::TLS_REQUIREMENT_DANE;
constexpr auto kEncrypt = v1::TLS_REQUIREMENT_ENCRYPT;
constexpr auto kOpp = v1::TLS_REQUIREMENT_OPPORTUNISTIC;
constexpr auto kUnusable = v1::TLS_REQUIREMENT_UNUSABLE;
constexpr auto kUsable = v1::TLSA_STATE_USABLE;

std::vector<DomainWant> Domains() {
  // 100 MX records: the first 32 (kMaxMxHosts) are evaluated, in order.
  DomainWant mx100{"mx-100.test",
                   v1::DECISION_NONE,
                   DNSSEC_STATE_SECURE,
                   {},
                   "only the first 32 of 100 MX hosts"};
  for (int i = 1; i <= 32; ++i) {
    mx100.hosts.push_back(
        {absl::StrCat("mx", i, ".mx-100.test"), kOpp, v1::TLSA_STATE_NONE});
  }
  std::vector<DomainWant> domains = {
      {"dane.test",
       v1::DECISION_DANE_REQUIRED,
       DNSSEC_STATE_SECURE,
       {{"mx1.dane.test", kDane, kUsable, {"3 1 1"}, "mx1.dane.test"}}},
      {"nodane.test",
       v1::DECISION_NONE,
       DNSSEC_STATE_SECURE,
       {{"mx.nodane.test", kOpp, v1::TLSA_STATE_NONE}}},
      // No DANE (insecure zone) → its MTA-STS enforce policy decides.
      {"insecure.test",
       v1::DECISION_STS_ENFORCE,
       DNSSEC_STATE_INSECURE,
       {{"mx.insecure.test", v1::TLS_REQUIREMENT_PKIX,
         v1::TLSA_STATE_INSECURE}},
       "MTA-STS enforce (id 20240101; "},
      {"bogus-sig.test",
       v1::DECISION_TEMPFAIL,
       DNSSEC_STATE_BOGUS,
       {},
       "bogus"},
      {"bogus-ds.test", v1::DECISION_TEMPFAIL, DNSSEC_STATE_BOGUS, {}, "DS"},
      {"bogus-expired.test",
       v1::DECISION_TEMPFAIL,
       DNSSEC_STATE_BOGUS,
       {},
       "expired"},
      {"secmx-insecure-host.test",
       v1::DECISION_NONE,
       DNSSEC_STATE_SECURE,
       {{"mx.insecure.test", kOpp, v1::TLSA_STATE_INSECURE}}},
      {"nxdomain.test",
       v1::DECISION_NO_MAIL,
       DNSSEC_STATE_SECURE,
       {},
       "NXDOMAIN"},
      {"two-mx.test",
       v1::DECISION_DANE,
       DNSSEC_STATE_SECURE,
       {{"mx1.two-mx.test", kDane, kUsable, {"3 1 1"}, "mx1.two-mx.test"},
        {"mx2.two-mx.test", kOpp, v1::TLSA_STATE_NONE}}},
      {"three-mx.test",
       v1::DECISION_DANE_REQUIRED,
       DNSSEC_STATE_SECURE,
       {{"mx1.three-mx.test", kDane, kUsable, {"3 1 1"}, "mx1.three-mx.test"},
        {"mx2.three-mx.test", kDane, kUsable, {"3 1 1"}, "mx2.three-mx.test"},
        {"mx3.three-mx.test", kDane, kUsable, {"3 1 1"}, "mx3.three-mx.test"}}},
      // SPEC G6/J6: secure CNAME → TLSA at the expanded name.
      {"cname-secure.test",
       v1::DECISION_DANE_REQUIRED,
       DNSSEC_STATE_SECURE,
       {{"mx.cname-secure.test", kDane, kUsable, {"3 1 1"}, "mx1.dane.test"}}},
      // SPEC G5: first CNAME insecure → no DANE.
      {"cname-insecure.test",
       v1::DECISION_NONE,
       DNSSEC_STATE_SECURE,
       {{"alias.insecure.test", kOpp, v1::TLSA_STATE_INSECURE}}},
      // SPEC G8/J12: only unusable records → encrypt.
      {"unusable.test",
       v1::DECISION_DANE,
       DNSSEC_STATE_SECURE,
       {{"mx.unusable.test", kEncrypt, v1::TLSA_STATE_UNUSABLE}}},
      {"dane-ta.test",
       v1::DECISION_DANE_REQUIRED,
       DNSSEC_STATE_SECURE,
       {{"mx.dane-ta.test", kDane, kUsable, {"2 1 1"}, "mx.dane-ta.test"}}},
      // SPEC G14: implicit MX.
      {"implicit.test",
       v1::DECISION_DANE_REQUIRED,
       DNSSEC_STATE_SECURE,
       {{"implicit.test", kDane, kUsable, {"3 1 1"}, "implicit.test"}}},
      {"nullmx.test", v1::DECISION_NO_MAIL, DNSSEC_STATE_SECURE, {}, "null MX"},
      // SPEC J12/J13: bogus TLSA with a secure MX → defer.
      {"tlsa-bogus.test",
       v1::DECISION_TEMPFAIL,
       DNSSEC_STATE_SECURE,
       {{"mx.tlsa-bogus.test", kUnusable, v1::TLSA_STATE_ERROR}},
       "TLSA lookup for _25._tcp.mx.tlsa-bogus.test bogus"},
      // SPEC J7: MX SERVFAIL (lame delegation) → defer.
      {"lame.test",
       v1::DECISION_TEMPFAIL,
       DNSSEC_STATE_INDETERMINATE,
       {},
       "MX lookup for lame.test failed"},
      {"ipv6only.test",
       v1::DECISION_DANE_REQUIRED,
       DNSSEC_STATE_SECURE,
       {{"mx.ipv6only.test", kDane, kUsable, {"3 1 1"}, "mx.ipv6only.test"}}},
      // Hostile data: each gets a defined decision.
      {"tlsa-empty.test",
       v1::DECISION_DANE,
       DNSSEC_STATE_SECURE,
       {{"mx.tlsa-empty.test", kEncrypt, v1::TLSA_STATE_UNUSABLE}}},
      {"tlsa-huge.test",
       v1::DECISION_DANE,
       DNSSEC_STATE_SECURE,
       {{"mx.tlsa-huge.test", kEncrypt, v1::TLSA_STATE_UNUSABLE}}},
      {"mx-ipliteral.test",
       v1::DECISION_NONE,
       DNSSEC_STATE_SECURE,
       {{"192.0.2.1", kUnusable, v1::TLSA_STATE_ERROR}},
       "not a host name"},
      {"mx-dot-mixed.test",
       v1::DECISION_NONE,
       DNSSEC_STATE_SECURE,
       {{"mx.mx-dot-mixed.test", kOpp, v1::TLSA_STATE_NONE}}},
      // A CNAME loop makes the host's address lookup fail → defer.
      {"cname-loop.test",
       v1::DECISION_TEMPFAIL,
       DNSSEC_STATE_SECURE,
       {{"loop1.cname-loop.test", kUnusable, v1::TLSA_STATE_ERROR}},
       "A lookup for loop1.cname-loop.test failed"},
  };
  domains.push_back(std::move(mx100));
  return domains;
}

INSTANTIATE_TEST_SUITE_P(World, WorldDaneTest, ::testing::ValuesIn(Domains()),
                         [](const auto& info) {
                           std::string name = info.param.domain;
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) {
                               c = '_';
                             }
                           }
                           return name;
                         });

}  // namespace
}  // namespace mxpolicy
