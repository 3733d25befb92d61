// Resolve for every MTA-STS case of the world (sts-*.test), over the real
// adapters: TXT parsing (SPEC A), fetch rules (B), policy syntax (C), cache
// (D), matching (E), DANE precedence (J13), delegation via CNAME (A2, §8.2).
// The daemon runs in-process; answers travel over a real gRPC channel.
#include <grpcpp/grpcpp.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/app/daemon.h"
#include "tests/support/world_daemon.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

struct StsWant {
  std::string domain;
  v1::Decision decision;
  // Expected policy; mode UNSPECIFIED means "no policy in the response".
  v1::StsMode mode = v1::STS_MODE_UNSPECIFIED;
  std::vector<std::string> patterns = {};
  int64_t max_age = -1;  // -1: not checked
  std::string id = "";   // "" : not checked
  // Per MX host (first host only): requirement and sts_allowed.
  v1::TlsRequirement first_host = v1::TLS_REQUIREMENT_UNSPECIFIED;
  bool first_allowed = false;
  std::string reason = "";  // substring of the reason
};

class WorldStsTest : public ::testing::TestWithParam<StsWant> {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    ServerConfig config = testing::WorldServerConfig(*env);
    config.dns_timeout = absl::Seconds(5);
    config.fetch_timeout = absl::Seconds(2);  // the stalling host
    // Decisions are cached for at most 1 s here, so that the changing-id
    // case sees the new TXT record right after its 1 s TTL.
    config.max_ttl = absl::Seconds(1);
    absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> world =
        testing::WorldDaemon::Start(config);
    ASSERT_TRUE(world.ok()) << world.status();
    world_ = world->release();
  }
  static void TearDownTestSuite() { delete world_; }
  static testing::WorldDaemon* world_;
};

testing::WorldDaemon* WorldStsTest::world_ = nullptr;

TEST_P(WorldStsTest, Resolve) {
  const StsWant& want = GetParam();
  v1::ResolveResponse r;
  grpc::Status status = world_->Resolve(want.domain, &r);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(r.decision(), want.decision) << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr(want.reason));
  if (want.mode == v1::STS_MODE_UNSPECIFIED) {
    EXPECT_FALSE(r.has_sts_policy()) << r.sts_policy().DebugString();
  } else {
    ASSERT_TRUE(r.has_sts_policy()) << r.reason();
    EXPECT_EQ(r.sts_policy().mode(), want.mode);
    EXPECT_THAT(r.sts_policy().mx_patterns(),
                ::testing::ElementsAreArray(want.patterns));
    if (want.max_age >= 0) {
      EXPECT_EQ(r.sts_policy().max_age().seconds(), want.max_age);
    }
    if (!want.id.empty()) {
      EXPECT_EQ(r.sts_policy().id(), want.id);
    }
    EXPECT_GT(r.sts_policy().fetched_at().seconds(), 0);
    EXPECT_FALSE(r.sts_policy().raw_lines().empty());
  }
  if (want.first_host != v1::TLS_REQUIREMENT_UNSPECIFIED) {
    ASSERT_GE(r.mx_hosts_size(), 1);
    EXPECT_EQ(r.mx_hosts(0).tls_requirement(), want.first_host)
        << r.mx_hosts(0).reason();
    EXPECT_EQ(r.mx_hosts(0).sts_allowed(), want.first_allowed);
  }
}

constexpr auto kEnforce = v1::DECISION_STS_ENFORCE;
constexpr auto kNone = v1::DECISION_NONE;
constexpr auto kPkix = v1::TLS_REQUIREMENT_PKIX;
constexpr auto kOpp = v1::TLS_REQUIREMENT_OPPORTUNISTIC;
constexpr auto kUnusable = v1::TLS_REQUIREMENT_UNUSABLE;

StsWant Enforced(const std::string& c, int64_t max_age = 86400) {
  const std::string d = absl::StrCat("sts-", c, ".test");
  return {d, kEnforce, v1::STS_MODE_ENFORCE, {absl::StrCat("mx.", d)},
          max_age, "", kPkix, true};
}

StsWant Refused(const std::string& c, const std::string& reason) {
  return {absl::StrCat("sts-", c, ".test"), kNone, v1::STS_MODE_UNSPECIFIED,
          {}, -1, "", kOpp, false, reason};
}

std::vector<StsWant> Cases() {
  std::vector<StsWant> cases = {
      Enforced("crlf"),                                      // C1
      {"sts-lf.test", v1::DECISION_STS_TESTING, v1::STS_MODE_TESTING,
       {"mx.sts-lf.test"}, 86400, "", kOpp, true},           // C1 LF
      Enforced("bom"),                                       // C9
      Enforced("blank"),                                     // C9
      {"sts-dup.test", v1::DECISION_STS_TESTING, v1::STS_MODE_TESTING,
       {"mx.sts-dup.test"}, -1, "", kOpp, true},             // C6 first wins
      Enforced("maxage0", 0),                                // C7 0 valid
      Enforced("maxagemax", 31557600),                       // C7
      Enforced("maxageover", 31557600),                      // C7 clamped
      Refused("maxage11", "sts-policy-invalid"),             // C7 11 digits
      Enforced("ext"),                                       // C5
      {"sts-none.test", kNone, v1::STS_MODE_NONE, {}, -1, "", kOpp, false,
       "MTA-STS mode none"},                                 // C3, D6
      Refused("enforce-nomx", "sts-policy-invalid"),         // C3/C8
      Refused("big", "sts-policy-fetch-error"),              // B8 65 537 B
      Enforced("exact64k"),                                  // B8 65 536 B
      Refused("r301", "HTTP status 301"),                    // B5
      Refused("r302", "HTTP status 302"),
      Refused("r307", "HTTP status 307"),
      Refused("r308", "HTTP status 308"),
      Refused("s404", "HTTP status 404"),
      Refused("s500", "HTTP status 500"),
      Refused("html", "media type \"text/html\""),           // B7
      Refused("notype", "is not text/plain"),                // B7
      Refused("stall", "timeout"),                           // B8
      {"sts-nomatch.test", kEnforce, v1::STS_MODE_ENFORCE,
       {"other.sts-nomatch.test"}, -1, "", kUnusable, false,
       "0 of 1 MX host(s) allowed"},                         // E1, E5
      {"sts-wildcard.test", kEnforce, v1::STS_MODE_ENFORCE,
       {"*.sts-wildcard.test"}, -1, "", kPkix, true},        // E2
      {"sts-implicit.test", kEnforce, v1::STS_MODE_ENFORCE,
       {"mail.sts-implicit.test"}, -1, "", kUnusable, false}, // E7
      Refused("twotxt", "2 v=STSv1"),                        // A4
      {"sts-dane.test", v1::DECISION_DANE_REQUIRED, v1::STS_MODE_ENFORCE,
       {"mx.sts-dane.test"}, -1, "", v1::TLS_REQUIREMENT_DANE, true},  // J13
      Refused("wrongname", "sts-webpki-invalid"),            // B3
      Refused("expired", "sts-webpki-invalid"),
      Refused("selfsigned", "sts-webpki-invalid"),
      Enforced("insecurezone"),                              // no DNSSEC needed
      // A2 / §8.2: TXT and policy host delegated to a provider by CNAME;
      // the id is the provider's, the certificate is for the user's name.
      {"sts-user.test", kEnforce, v1::STS_MODE_ENFORCE, {"mx.sts-user.test"},
       -1, "prov1", kPkix, true},
  };
  return cases;
}

// Runs tests/world/world.sh with arguments; true on exit 0.
bool WorldSh(const std::vector<std::string>& args) {
  std::string cmd = absl::StrCat("bash '", WORLD_SH_PATH, "'");
  for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
  return std::system(cmd.c_str()) == 0;
}

v1::ResolveResponse ResolveOrDie(testing::WorldDaemon& world,
                                 const std::string& domain) {
  v1::ResolveResponse r;
  grpc::Status status = world.Resolve(domain, &r);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return r;
}

// SPEC D2, A8: the TXT id changes while the server runs (TXT TTL 1 s); the
// next resolution fetches the new policy and replaces the cached one.
TEST_F(WorldStsTest, IdChangeWhileRunningFetchesTheNewPolicy) {
  absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
  ASSERT_TRUE(env.ok());
  v1::ResolveResponse first = ResolveOrDie(*world_, "sts-changing.test");
  ASSERT_EQ(first.sts_policy().id(), "v1") << first.reason();
  EXPECT_EQ(first.decision(), v1::DECISION_STS_ENFORCE);

  const std::string body = absl::StrCat(env->dir, "/changing-v2.txt");
  FILE* f = fopen(body.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("version: STSv1\nmode: testing\nmx: mx.sts-changing.test\n"
        "max_age: 3600\n", f);
  fclose(f);
  ASSERT_TRUE(WorldSh({"set-file", env->dir, "mta-sts.sts-changing.test", body}));
  // Unchanged id: the cached policy stays, no fetch (D1/D2).
  EXPECT_EQ(ResolveOrDie(*world_, "sts-changing.test").sts_policy().mode(),
            v1::STS_MODE_ENFORCE);
  ASSERT_TRUE(WorldSh({"set-txt", env->dir, "_mta-sts.sts-changing.test",
                       "v=STSv1; id=v2;"}));
  // The TXT TTL and the decision cap are 1 s each; allow for both (and for
  // unbound's cache timing) by asking again until the new id shows, 10 s
  // at most.
  v1::ResolveResponse second;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(10);
       absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(500));
    second = ResolveOrDie(*world_, "sts-changing.test");
    if (second.sts_policy().id() == "v2") break;
  }
  EXPECT_EQ(second.sts_policy().id(), "v2") << second.reason();
  EXPECT_EQ(second.sts_policy().mode(), v1::STS_MODE_TESTING);
  EXPECT_EQ(second.decision(), v1::DECISION_STS_TESTING);
  EXPECT_GE(second.sts_policy().fetched_at().seconds(),
            first.sts_policy().fetched_at().seconds());
}

INSTANTIATE_TEST_SUITE_P(World, WorldStsTest, ::testing::ValuesIn(Cases()),
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
