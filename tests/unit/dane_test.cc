// The DANE engine (server/src/dane) as a table: each row is a small DNS world
// (answers by name and type), run through PlanMx → NeededLookups →
// EvaluateHost → Decide exactly as the resolver does, and the expected
// domain decision plus per-host requirement. Rows cite SPEC G/F/J items;
// every DNS-level case of J12 is a row.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/src/dane/decision.h"
#include "server/src/dane/host.h"
#include "server/src/dane/mx.h"

namespace mxpolicy::dane {
namespace {

using ::testing::HasSubstr;

// ---- building answers ----

DnsAnswer Base(DnsOutcome outcome, DnssecState state) {
  DnsAnswer a;
  a.outcome = outcome;
  a.dnssec = state;
  a.ttl = absl::Seconds(300);
  return a;
}
DnsResult Data(DnssecState state = DnssecState::kSecure) {
  return Base(DnsOutcome::kData, state);
}
DnsResult NoData(DnssecState state = DnssecState::kSecure) {
  return Base(DnsOutcome::kNoData, state);
}
DnsResult NxDomain(DnssecState state = DnssecState::kSecure) {
  return Base(DnsOutcome::kNxDomain, state);
}
DnsResult Bogus(std::string why = "signature expired") {
  DnsAnswer a = Base(DnsOutcome::kError, DnssecState::kBogus);
  a.error = std::move(why);
  return a;
}
DnsResult Servfail() {
  DnsAnswer a = Base(DnsOutcome::kError, DnssecState::kIndeterminate);
  a.error = "SERVFAIL";
  return a;
}
DnsResult Timeout() {
  return absl::DeadlineExceededError("DNS lookup timed out after 5s");
}
DnsResult Mx(std::vector<MxRecord> mx,
             DnssecState state = DnssecState::kSecure) {
  DnsAnswer a = Base(DnsOutcome::kData, state);
  a.mx = std::move(mx);
  return a;
}
DnsResult Addr(DnssecState state = DnssecState::kSecure,
               std::string canonical = "") {
  DnsAnswer a = Base(DnsOutcome::kData, state);
  a.addresses = {"192.0.2.1"};
  a.canonical_name = std::move(canonical);
  return a;
}
DnsResult Tlsa(std::vector<TlsaRecord> records,
               DnssecState state = DnssecState::kSecure) {
  DnsAnswer a = Base(DnsOutcome::kData, state);
  a.tlsa = std::move(records);
  return a;
}

const TlsaRecord kEe{3, 1, 1, std::string(32, '\x01')};
const TlsaRecord kTa{2, 1, 1, std::string(32, '\x02')};
const TlsaRecord kPkixTa{0, 1, 1, std::string(32, '\x03')};
const TlsaRecord kPkixEe{1, 1, 1, std::string(32, '\x04')};
const TlsaRecord kShort{3, 1, 1, std::string(31, '\x05')};
const TlsaRecord kPrivate{3, 1, 255, std::string(32, '\x06')};

// ---- a world and the engine run over it ----

struct World {
  std::map<std::pair<std::string, RrType>, DnsResult> answers;

  World& Set(std::string name, RrType type, DnsResult r) {
    if (r.ok() && r->canonical_name.empty()) r->canonical_name = name;
    answers.insert_or_assign({std::move(name), type}, std::move(r));
    return *this;
  }
  // A host with secure A, secure AAAA NODATA and the given TLSA answer.
  World& Host(const std::string& name, DnsResult tlsa,
              DnssecState addr = DnssecState::kSecure) {
    Set(name, RrType::kA, Addr(addr));
    Set(name, RrType::kAaaa, NoData(addr));
    return Set(TlsaQueryName(name), RrType::kTlsa, std::move(tlsa));
  }
};

struct Outcome {
  DomainVerdict verdict;
  std::vector<HostVerdict> hosts;
  std::vector<Query> asked;  // every query NeededLookups asked for
};

Outcome RunEngine(const World& world, const std::string& domain) {
  Outcome out;
  auto lookup = [&](const Query& q) -> DnsResult {
    auto it = world.answers.find({q.name, q.type});
    if (it == world.answers.end()) {
      ADD_FAILURE() << "unexpected lookup " << q.name << "/"
                    << RrTypeName(q.type);
      return absl::NotFoundError("not in the test world");
    }
    return it->second;
  };
  MxPlan plan = PlanMx(domain, lookup(Query{domain, RrType::kMx}));
  for (const MxHost& host : plan.hosts) {
    HostAnswers answers;
    for (int guard = 0; guard < 10; ++guard) {
      std::vector<Query> needed = NeededLookups(host, answers);
      if (needed.empty()) break;
      for (const Query& q : needed) {
        out.asked.push_back(q);
        answers.insert_or_assign(q, lookup(q));
      }
    }
    out.hosts.push_back(EvaluateHost(host, answers));
  }
  out.verdict = Decide(plan, out.hosts);
  return out;
}

bool Asked(const Outcome& o, const std::string& name, RrType type) {
  for (const Query& q : o.asked) {
    if (q.name == name && q.type == type) return true;
  }
  return false;
}

// ---- the table ----

struct Row {
  std::string name;  // test name; cites the SPEC item
  World world;
  DaneDecision decision;
  std::vector<Requirement> hosts;  // per MX host, in preference order
  std::string reason;              // substring of the domain reason
};

class DaneTableTest : public ::testing::TestWithParam<Row> {};

TEST_P(DaneTableTest, DecisionAndHostRequirements) {
  const Row& row = GetParam();
  Outcome o = RunEngine(row.world, "d.test");
  EXPECT_EQ(o.verdict.decision, row.decision) << o.verdict.reason;
  ASSERT_EQ(o.hosts.size(), row.hosts.size()) << o.verdict.reason;
  for (size_t i = 0; i < o.hosts.size(); ++i) {
    EXPECT_EQ(o.hosts[i].requirement, row.hosts[i])
        << "host " << o.hosts[i].host.name << ": " << o.hosts[i].reason;
  }
  EXPECT_THAT(o.verdict.reason, HasSubstr(row.reason));
}

using D = DaneDecision;
using R = Requirement;
constexpr DnssecState kInsecure = DnssecState::kInsecure;

std::vector<Row> Rows() {
  std::vector<Row> rows;
  auto add = [&](std::string name, World w, D d, std::vector<R> hosts,
                 std::string reason = "") {
    rows.push_back({std::move(name), std::move(w), d, std::move(hosts),
                    std::move(reason)});
  };
  add("G15_all_hosts_usable_tlsa_secure_mx_is_dane_required",
      World()
          .Set("d.test", RrType::kMx,
               Mx({{10, "mx1.d.test"}, {20, "mx2.d.test"}}))
          .Host("mx1.d.test", Tlsa({kEe}))
          .Host("mx2.d.test", Tlsa({kTa})),
      D::kDaneRequired, {R::kDane, R::kDane}, "MX RRset secure");
  add("J12_one_dane_host_one_not_is_dane_not_dane_only",
      World()
          .Set("d.test", RrType::kMx,
               Mx({{10, "mx1.d.test"}, {20, "mx2.d.test"}}))
          .Host("mx1.d.test", Tlsa({kEe}))
          .Host("mx2.d.test", NxDomain()),
      D::kDane, {R::kDane, R::kOpportunistic}, "1 of 2");
  add("J12_two_mx_both_tlsa_lookups_fail_defers",
      World()
          .Set("d.test", RrType::kMx,
               Mx({{10, "mx1.d.test"}, {20, "mx2.d.test"}}))
          .Host("mx1.d.test", Bogus())
          .Host("mx2.d.test", Servfail()),
      D::kTempFail, {R::kUnusable, R::kUnusable}, "bogus: signature expired");
  add("J12_secure_address_tlsa_lookup_fails_defers",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
          .Host("mx.d.test", Timeout()),
      D::kTempFail, {R::kUnusable}, "timed out");
  add("J12_secure_nodata_delivers_without_dane",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
          .Host("mx.d.test", NoData()),
      D::kNoDane, {R::kOpportunistic}, "no MX host has secure TLSA");
  add("J12_insecure_good_tlsa_delivers_without_dane",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
          .Host("mx.d.test", Tlsa({kEe}, kInsecure)),
      D::kNoDane, {R::kOpportunistic});
  add("J12_G5_insecure_address_means_no_dane",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
          .Host("mx.d.test", Bogus("must not matter"), kInsecure),
      D::kNoDane, {R::kOpportunistic});
  add("J12_pkix_usages_only_is_encrypt",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
          .Host("mx.d.test", Tlsa({kPkixTa, kPkixEe})),
      D::kDane, {R::kEncrypt}, "encrypt");
  add("J12_short_sha256_and_private_mtype_are_unusable",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
          .Host("mx.d.test", Tlsa({kShort, kPrivate})),
      D::kDane, {R::kEncrypt});
  add("J12_G7_bogus_tlsa_on_one_host_others_usable",
      World()
          .Set("d.test", RrType::kMx,
               Mx({{10, "mx1.d.test"}, {20, "mx2.d.test"}}))
          .Host("mx1.d.test", Tlsa({kEe}))
          .Host("mx2.d.test", Bogus()),
      D::kDaneRequired, {R::kDane, R::kUnusable}, "unusable: TLSA lookup");
  add("F3_tlsa_error_next_to_opportunistic_host_is_dane_not_fallback",
      World()
          .Set("d.test", RrType::kMx,
               Mx({{10, "mx1.d.test"}, {20, "mx2.d.test"}}))
          .Host("mx1.d.test", Bogus())
          .Host("mx2.d.test", NxDomain()),
      D::kDane, {R::kUnusable, R::kOpportunistic});
  add("G4_insecure_mx_with_secure_tlsa_host_is_dane",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "mx.other.test"}}, kInsecure))
          .Host("mx.other.test", Tlsa({kEe})),
      D::kDane, {R::kDane}, "MX RRset insecure");
  add("G3_bogus_mx_defers",
      World().Set("d.test", RrType::kMx, Bogus("no keys have a DS")),
      D::kTempFail, {}, "MX lookup for d.test bogus: no keys have a DS");
  add("J7_servfail_mx_defers", World().Set("d.test", RrType::kMx, Servfail()),
      D::kTempFail, {}, "MX lookup for d.test failed: SERVFAIL");
  add("J7_nxdomain_is_no_mail", World().Set("d.test", RrType::kMx, NxDomain()),
      D::kNoMail, {}, "NXDOMAIN");
  add("J4_null_mx_is_no_mail",
      World().Set("d.test", RrType::kMx, Mx({{0, ""}})), D::kNoMail, {},
      "null MX");
  add("J4_dot_mixed_with_hosts_is_ignored",
      World()
          .Set("d.test", RrType::kMx, Mx({{0, ""}, {10, "mx.d.test"}}))
          .Host("mx.d.test", Tlsa({kEe})),
      D::kDaneRequired, {R::kDane});
  add("G14_implicit_mx_with_tlsa_is_dane_required",
      World().Set("d.test", RrType::kMx, NoData()).Host("d.test", Tlsa({kEe})),
      D::kDaneRequired, {R::kDane});
  add("J5_ip_literal_mx_only_is_no_dane",
      World().Set("d.test", RrType::kMx, Mx({{10, "192.0.2.1"}})), D::kNoDane,
      {R::kUnusable}, "not a host name");
  add("G5_address_lookup_error_makes_host_unusable",
      World()
          .Set("d.test", RrType::kMx,
               Mx({{10, "mx1.d.test"}, {20, "mx2.d.test"}}))
          .Set("mx1.d.test", RrType::kA, Servfail())
          .Set("mx1.d.test", RrType::kAaaa, NoData())
          .Host("mx2.d.test", Tlsa({kEe})),
      D::kDaneRequired, {R::kUnusable, R::kDane});
  add("host_without_addresses_is_unusable_not_a_failure",
      World()
          .Set("d.test", RrType::kMx, Mx({{10, "gone.d.test"}}))
          .Set("gone.d.test", RrType::kA, NxDomain())
          .Set("gone.d.test", RrType::kAaaa, NxDomain()),
      D::kNoDane, {R::kUnusable}, "does not exist");
  return rows;
}

INSTANTIATE_TEST_SUITE_P(Spec, DaneTableTest, ::testing::ValuesIn(Rows()),
                         [](const auto& info) { return info.param.name; });

// ---- host details: lookups asked, CNAME rules, fields ----

TEST(DaneHostTest, InsecureHostNeverNeedsTlsa) {  // SPEC G5
  World w;
  w.Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
      .Set("mx.d.test", RrType::kA, Addr(kInsecure))
      .Set("mx.d.test", RrType::kAaaa, NoData(kInsecure));
  Outcome o = RunEngine(w, "d.test");
  EXPECT_FALSE(Asked(o, "_25._tcp.mx.d.test", RrType::kTlsa));
  EXPECT_EQ(o.hosts[0].tlsa_state, TlsaState::kInsecure);
}

TEST(DaneHostTest, InitialLookupsRunAtOnce) {  // issue: one round-trip level
  std::vector<Query> q = InitialLookups(MxHost{"mx.d.test", 10, true});
  EXPECT_THAT(
      q, ::testing::UnorderedElementsAre(
             Query{"mx.d.test", RrType::kA}, Query{"mx.d.test", RrType::kAaaa},
             Query{"_25._tcp.mx.d.test", RrType::kTlsa}));
  EXPECT_TRUE(InitialLookups(MxHost{"192.0.2.1", 10, false}).empty());
}

TEST(DaneHostTest, UsableHostFieldsAndTtl) {  // SPEC G17
  World w;
  w.Set("d.test", RrType::kMx, Mx({{10, "mx.d.test"}}))
      .Host("mx.d.test", Tlsa({kEe, kPkixEe}));
  w.answers.at({"_25._tcp.mx.d.test", RrType::kTlsa})->ttl = absl::Seconds(60);
  Outcome o = RunEngine(w, "d.test");
  const HostVerdict& h = o.hosts[0];
  EXPECT_EQ(h.address_state, DnssecState::kSecure);
  EXPECT_THAT(h.addresses, ::testing::ElementsAre("192.0.2.1"));
  EXPECT_EQ(h.tlsa_state, TlsaState::kUsable);
  EXPECT_EQ(h.tlsa_base_domain, "mx.d.test");
  EXPECT_THAT(h.tlsa, ::testing::ElementsAre(kEe));  // PKIX-EE dropped
  EXPECT_EQ(h.ttl, absl::Seconds(60));
}

TEST(DaneHostTest, SecureCnameUsesExpandedNameFirst) {  // SPEC G6, J6
  World w;
  w.Set("d.test", RrType::kMx, Mx({{10, "alias.d.test"}}))
      .Set("alias.d.test", RrType::kA,
           Addr(DnssecState::kSecure, "real.e.test"))
      .Set("alias.d.test", RrType::kAaaa, NoData())
      .Set("_25._tcp.real.e.test", RrType::kTlsa, Tlsa({kEe}))
      .Set("_25._tcp.alias.d.test", RrType::kTlsa, Tlsa({kTa}));
  Outcome o = RunEngine(w, "d.test");
  EXPECT_EQ(o.hosts[0].tlsa_base_domain, "real.e.test");
  EXPECT_THAT(o.hosts[0].tlsa, ::testing::ElementsAre(kEe));
  EXPECT_EQ(o.hosts[0].host.name, "alias.d.test");  // MX name kept (J6)
}

TEST(DaneHostTest, SecureCnameFallsBackToOriginalOnDenial) {  // SPEC G6
  World w;
  w.Set("d.test", RrType::kMx, Mx({{10, "alias.d.test"}}))
      .Set("alias.d.test", RrType::kA,
           Addr(DnssecState::kSecure, "real.e.test"))
      .Set("alias.d.test", RrType::kAaaa, NoData())
      .Set("_25._tcp.real.e.test", RrType::kTlsa, NxDomain())
      .Set("_25._tcp.alias.d.test", RrType::kTlsa, Tlsa({kTa}));
  Outcome o = RunEngine(w, "d.test");
  EXPECT_EQ(o.hosts[0].tlsa_base_domain, "alias.d.test");
  EXPECT_THAT(o.hosts[0].tlsa, ::testing::ElementsAre(kTa));
}

TEST(DaneHostTest, SecureCnameErrorDoesNotFallBack) {  // SPEC G6
  World w;
  w.Set("d.test", RrType::kMx, Mx({{10, "alias.d.test"}}))
      .Set("alias.d.test", RrType::kA,
           Addr(DnssecState::kSecure, "real.e.test"))
      .Set("alias.d.test", RrType::kAaaa, NoData())
      .Set("_25._tcp.real.e.test", RrType::kTlsa, Bogus())
      .Set("_25._tcp.alias.d.test", RrType::kTlsa, Tlsa({kTa}));
  Outcome o = RunEngine(w, "d.test");
  EXPECT_EQ(o.hosts[0].requirement, Requirement::kUnusable);
  EXPECT_TRUE(o.hosts[0].dane_lookup_failed);
  EXPECT_EQ(o.verdict.decision, DaneDecision::kTempFail);
}

TEST(DaneHostTest, InsecureChainWithSecureFirstCnameUsesOriginalName) {
  // SPEC G5/G6: only the first CNAME is secure → TLSA at the MX name.
  World w;
  w.Set("d.test", RrType::kMx, Mx({{10, "alias.d.test"}}))
      .Set("alias.d.test", RrType::kA, Addr(kInsecure, "host.insecure.test"))
      .Set("alias.d.test", RrType::kAaaa, NoData(kInsecure))
      .Set("alias.d.test", RrType::kCname, Data())
      .Set("_25._tcp.alias.d.test", RrType::kTlsa, Tlsa({kEe}));
  Outcome o = RunEngine(w, "d.test");
  EXPECT_TRUE(Asked(o, "alias.d.test", RrType::kCname));
  EXPECT_EQ(o.hosts[0].requirement, Requirement::kDane);
  EXPECT_EQ(o.hosts[0].tlsa_base_domain, "alias.d.test");
}

TEST(DaneHostTest, InsecureFirstCnameMeansNoDane) {  // SPEC G5, J6
  World w;
  w.Set("d.test", RrType::kMx, Mx({{10, "alias.insecure.test"}}))
      .Set("alias.insecure.test", RrType::kA, Addr(kInsecure, "mx.secure.test"))
      .Set("alias.insecure.test", RrType::kAaaa, NoData(kInsecure))
      .Set("alias.insecure.test", RrType::kCname, Data(kInsecure));
  Outcome o = RunEngine(w, "d.test");
  EXPECT_EQ(o.hosts[0].requirement, Requirement::kOpportunistic);
  EXPECT_FALSE(Asked(o, "_25._tcp.alias.insecure.test", RrType::kTlsa));
  EXPECT_THAT(o.hosts[0].reason, HasSubstr("insecure CNAME"));
}

TEST(DaneMxTest, OrderDedupeAndCap) {  // SPEC G3, J4
  std::vector<MxRecord> records;
  for (int i = 100; i >= 1; --i) {
    records.push_back(
        {static_cast<uint16_t>(i), absl::StrCat("mx", i, ".d.test")});
  }
  records.push_back({5, "mx1.d.test"});  // duplicate, lower preference
  MxPlan plan = PlanMx("d.test", Mx(records));
  ASSERT_EQ(plan.kind, MxPlan::Kind::kHosts);
  ASSERT_EQ(plan.hosts.size(), kMaxMxHosts);
  EXPECT_EQ(plan.hosts[0].name, "mx1.d.test");
  EXPECT_EQ(plan.hosts[0].preference, 1);
  EXPECT_EQ(plan.hosts[1].name, "mx2.d.test");
  EXPECT_THAT(plan.reason, HasSubstr("first 32 of 100"));
}

}  // namespace
}  // namespace mxpolicy::dane
