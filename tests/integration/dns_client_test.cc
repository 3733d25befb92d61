// UnboundDnsClient against the real hermetic world (knot + signed zones,
// tests/world): DNSSEC states, bogus ×3 with a why, NXDOMAIN, NODATA, TLSA
// RDATA, multi-string TXT (SPEC G1, G7, A3; TESTING.md pitfalls).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/src/dns/unbound_dns_client.h"
#include "tests/support/silent_dns.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

class DnsClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    UnboundDnsClient::Options options;
    options.unbound_config_file = env->unbound_conf;
    options.timeout = absl::Seconds(5);
    absl::StatusOr<std::unique_ptr<UnboundDnsClient>> client =
        UnboundDnsClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = client->release();
  }
  static void TearDownTestSuite() {
    delete client_;
    client_ = nullptr;
  }

  static absl::StatusOr<DnsAnswer> Lookup(const std::string& name,
                                          RrType type) {
    absl::Notification done;
    absl::StatusOr<DnsAnswer> result;
    client_->Lookup(name, type, [&](absl::StatusOr<DnsAnswer> answer) {
      result = std::move(answer);
      done.Notify();
    });
    done.WaitForNotification();
    return result;
  }

  static UnboundDnsClient* client_;
};

UnboundDnsClient* DnsClientTest::client_ = nullptr;

TEST_F(DnsClientTest, SecureMx) {  // SPEC G1, G3
  absl::StatusOr<DnsAnswer> a = Lookup("dane.test", RrType::kMx);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->outcome, DnsOutcome::kData);
  EXPECT_EQ(a->dnssec, DnssecState::kSecure);
  ASSERT_EQ(a->mx.size(), 1u);
  EXPECT_EQ(a->mx[0].preference, 10);
  EXPECT_EQ(a->mx[0].exchange, "mx1.dane.test");
  EXPECT_GT(a->ttl, absl::ZeroDuration());
}

TEST_F(DnsClientTest, InsecureZone) {  // SPEC G5
  absl::StatusOr<DnsAnswer> a = Lookup("mx.insecure.test", RrType::kA);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->outcome, DnsOutcome::kData);
  EXPECT_EQ(a->dnssec, DnssecState::kInsecure);
  EXPECT_THAT(a->addresses, ::testing::ElementsAre("127.0.0.1"));
}

struct BogusCase {
  const char* domain;
  const char* why;  // substring of libunbound's why_bogus
};

class DnsBogusTest : public DnsClientTest,
                     public ::testing::WithParamInterface<BogusCase> {};

TEST_P(DnsBogusTest, BogusWithWhyAndNoData) {  // SPEC G1, G3
  absl::StatusOr<DnsAnswer> a = Lookup(GetParam().domain, RrType::kMx);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->outcome, DnsOutcome::kError);
  EXPECT_EQ(a->dnssec, DnssecState::kBogus);
  EXPECT_THAT(a->error, HasSubstr(GetParam().why));
  EXPECT_TRUE(a->mx.empty());
}

INSTANTIATE_TEST_SUITE_P(
    World, DnsBogusTest,
    ::testing::Values(BogusCase{"bogus-sig.test", "signature"},
                      BogusCase{"bogus-ds.test", "DS"},
                      BogusCase{"bogus-expired.test", "expired"}),
    [](const auto& info) {
      std::string name = info.param.domain;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST_F(DnsClientTest, SecureNxDomain) {  // SPEC J7, G7
  absl::StatusOr<DnsAnswer> a = Lookup("nxdomain.test", RrType::kMx);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->outcome, DnsOutcome::kNxDomain);
  EXPECT_EQ(a->dnssec, DnssecState::kSecure);
}

TEST_F(DnsClientTest, SecureNoData) {  // SPEC G7 authenticated denial
  absl::StatusOr<DnsAnswer> a = Lookup("mx.nodane.test", RrType::kAaaa);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->outcome, DnsOutcome::kNoData);
  EXPECT_EQ(a->dnssec, DnssecState::kSecure);
  EXPECT_TRUE(a->addresses.empty());
}

TEST_F(DnsClientTest, TlsaRdata) {  // SPEC G8
  absl::StatusOr<DnsAnswer> a = Lookup("_25._tcp.mx1.dane.test", RrType::kTlsa);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->outcome, DnsOutcome::kData);
  EXPECT_EQ(a->dnssec, DnssecState::kSecure);
  ASSERT_EQ(a->tlsa.size(), 1u);
  EXPECT_EQ(a->tlsa[0].usage, 3);
  EXPECT_EQ(a->tlsa[0].selector, 1);
  EXPECT_EQ(a->tlsa[0].matching_type, 1);
  EXPECT_EQ(a->tlsa[0].data.size(), 32u);
}

TEST_F(DnsClientTest, TxtWithSeveralStrings) {  // SPEC A3
  absl::StatusOr<DnsAnswer> a = Lookup("multi.dane.test", RrType::kTxt);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->txt.size(), 1u);
  EXPECT_THAT(a->txt[0].strings,
              ::testing::ElementsAre("v=STSv1; id=ab", "cd;"));
  EXPECT_EQ(a->txt[0].Joined(), "v=STSv1; id=abcd;");
}

TEST_F(DnsClientTest, AaaaRecord) {
  absl::StatusOr<DnsAnswer> a = Lookup("mx1.dane.test", RrType::kAaaa);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->dnssec, DnssecState::kSecure);
  EXPECT_THAT(a->addresses, ::testing::ElementsAre("::1"));
}

TEST_F(DnsClientTest, ManyConcurrentLookupsAllComplete) {
  // Thousands in flight need no thread each: 300 at once through one thread.
  constexpr int kN = 300;
  absl::Mutex mu;
  int secure = 0, done = 0;
  absl::Notification all;
  for (int i = 0; i < kN; ++i) {
    client_->Lookup("dane.test", RrType::kMx, [&](absl::StatusOr<DnsAnswer> a) {
      bool last;
      {
        absl::MutexLock lock(&mu);
        if (a.ok() && a->secure()) ++secure;
        last = ++done == kN;
      }
      // Outside the lock: once notified, the test may destroy `mu`.
      if (last) all.Notify();
    });
  }
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(20)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(secure, kN);
}

TEST(DnsClientCreateTest, MissingConfigIsInvalidArgument) {
  UnboundDnsClient::Options options;
  options.unbound_config_file = "/nonexistent/unbound.conf";
  absl::StatusOr<std::unique_ptr<UnboundDnsClient>> client =
      UnboundDnsClient::Create(options);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(client.status().message(),
              HasSubstr("/nonexistent/unbound.conf"));
}

TEST(DnsClientTimeoutTest, SilentServerTimesOut) {
  absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
  ASSERT_TRUE(env.ok()) << env.status();
  testing::SilentDns silent(env->dir);
  ASSERT_FALSE(silent.conf().empty());
  UnboundDnsClient::Options options;
  options.unbound_config_file = silent.conf();
  options.timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<UnboundDnsClient>> client =
      UnboundDnsClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Notification done;
  absl::StatusOr<DnsAnswer> result;
  const absl::Time start = absl::Now();
  (*client)->Lookup("dane.test", RrType::kMx, [&](absl::StatusOr<DnsAnswer> a) {
    result = std::move(a);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("timed out"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

}  // namespace
}  // namespace mxpolicy
