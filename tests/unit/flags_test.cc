// mxpolicyd's flag contract (issue: names relied on by operators and Helm).
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/src/app/config.h"

namespace mxpolicy {
namespace {

absl::StatusOr<ServerConfig> Parse(std::vector<std::string> args,
                                   bool* help = nullptr) {
  args.insert(args.begin(), "mxpolicyd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  bool ignored;
  return ParseServerFlags(static_cast<int>(argv.size()), argv.data(),
                          help ? help : &ignored);
}

TEST(FlagsTest, DefaultsNeedNoConfigFile) {
  absl::StatusOr<ServerConfig> c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:8460");
  EXPECT_EQ(c->unbound_config, "");
  EXPECT_EQ(c->trust_anchor_file, "/usr/share/dns/root.key");
  EXPECT_EQ(c->sts_ca_file, "");
  EXPECT_EQ(c->sts_https_port, 443);
  EXPECT_EQ(c->dns_timeout, absl::Seconds(5));
  EXPECT_EQ(c->fetch_timeout, absl::Seconds(20));
  EXPECT_FALSE(c->dns_qname_minimisation);
}

TEST(FlagsTest, ContractNamesParse) {
  absl::StatusOr<ServerConfig> c =
      Parse({"--listen=127.0.0.1:0", "--unbound-config=/w/unbound.conf",
             "--trust-anchor-file", "/w/ta.ds", "--sts-ca-file=/w/ca.pem",
             "--sts-https-port=8443", "--dns-timeout=1500ms",
             "--fetch-connect-timeout=2s", "--fetch-timeout=3s",
             "--shutdown-grace=4s", "--dns-qname-minimisation=true",
       "--sts-discovery-failure=tempfail", "--cache-entries=500",
       "--policy-entries=200", "--cache-shards=1"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_EQ(c->unbound_config, "/w/unbound.conf");
  EXPECT_EQ(c->trust_anchor_file, "/w/ta.ds");
  EXPECT_EQ(c->sts_ca_file, "/w/ca.pem");
  EXPECT_EQ(c->sts_https_port, 8443);
  EXPECT_EQ(c->dns_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(c->fetch_connect_timeout, absl::Seconds(2));
  EXPECT_EQ(c->fetch_timeout, absl::Seconds(3));
  EXPECT_EQ(c->shutdown_grace, absl::Seconds(4));
  EXPECT_TRUE(c->dns_qname_minimisation);
  EXPECT_TRUE(c->sts_discovery_failure_tempfail);
  EXPECT_EQ(c->cache_entries, 500u);
  EXPECT_EQ(c->policy_entries, 200u);
  EXPECT_EQ(c->cache_shards, 1u);
}

TEST(FlagsTest, BadValuesNameTheFlag) {
  for (const auto& [arg, want] :
       std::vector<std::pair<std::string, std::string>>{
           {"--sts-https-port=0", "--sts-https-port"},
           {"--sts-https-port=70000", "--sts-https-port"},
           {"--dns-timeout=soon", "--dns-timeout"},
           {"--fetch-timeout=-1s", "--fetch-timeout"},
           {"--no-such-flag=1", "unknown flag --no-such-flag"},
           {"positional", "unexpected argument"},
           {"--listen", "needs a value"},
           {"--dns-qname-minimisation=maybe", "--dns-qname-minimisation"},
           {"--sts-discovery-failure=strict", "--sts-discovery-failure"},
           {"--policy-entries=0", "--policy-entries"}}) {
    absl::StatusOr<ServerConfig> c = Parse({arg});
    ASSERT_FALSE(c.ok()) << arg;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << arg;
    EXPECT_THAT(c.status().message(), ::testing::HasSubstr(want)) << arg;
  }
}

TEST(FlagsTest, HelpDocumentsEveryFlag) {
  bool help = false;
  ::testing::internal::CaptureStdout();
  absl::StatusOr<ServerConfig> c = Parse({"--help"}, &help);
  const std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(help);
  for (const char* name :
       {"--listen", "--unbound-config", "--trust-anchor-file", "--sts-ca-file",
        "--sts-https-port", "--dns-timeout", "--fetch-connect-timeout",
        "--fetch-timeout", "--shutdown-grace", "--dns-qname-minimisation",
        "--sts-discovery-failure", "--cache-entries", "--policy-entries",
        "--cache-shards", "--max-ttl", "--tempfail-ttl",
        "--max-cold-resolutions"}) {
    EXPECT_THAT(out, ::testing::HasSubstr(name));
  }
  EXPECT_THAT(out, ::testing::HasSubstr("default: 127.0.0.1:8460"));
}

}  // namespace
}  // namespace mxpolicy
