// The mxpolicy CLI's `warm` and `check` commands as an operator and a domain
// owner run them: the real mxpolicyd against the hermetic world, the CLI
// binary as a process, its stdout and exit code asserted. Like
// daemon_process_test, this binary does not link the server libraries.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs the CLI; returns its stdout. stderr is dropped: it is not a TTY here,
// so `warm` draws no progress bar, and errors are asserted by exit code.
std::string RunCli(const std::vector<std::string>& args, int* exit_code) {
  return testing::RunBinary(MXPOLICY_CLI_PATH, args, exit_code);
}

class CliWarmCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    target_ = absl::StrCat("127.0.0.1:", testing::FreePort());
    std::vector<std::string> args = {MXPOLICYD_PATH, "--listen=" + target_};
    for (std::string& flag : testing::WorldDaemonFlags(env_)) {
      args.push_back(std::move(flag));
    }
    pid_ = testing::Spawn(args);
    ASSERT_GT(pid_, 0);
    ASSERT_TRUE(testing::WaitServing(target_)) << "mxpolicyd did not become SERVING";
    server_ = "--server=" + target_;
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      testing::Reap(pid_);
    }
  }

  std::string WriteList(const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
  }

  testing::WorldEnv env_;
  std::string target_;
  std::string server_;
  pid_t pid_ = -1;
};

TEST_F(CliWarmCheckTest, WarmCountsDecisionsSkipsCommentsAndListsBadDomains) {
  const std::string list =
      WriteList("cli_warm_mixed.txt",
                "# domains to warm before the cut-over\n"  // line 1: comment
                "dane.test\n"                              // dane_required
                "nodane.test   # no DANE, no MTA-STS\n"    // none
                "\n"                                       // line 4: blank
                "sts-crlf.test\r\n"  // sts_enforce, CRLF line
                "bad..domain\n"      // line 6: INVALID_ARGUMENT
                "dane.test\n");      // again: dane_required
  int rc = -1;
  const std::string out = RunCli({"warm", server_, list}, &rc);
  EXPECT_EQ(rc, 1) << out;  // a bad domain is an error, but not fatal
  EXPECT_THAT(out, HasSubstr("  total      5 (7 lines, 2 blank or comment)"));
  EXPECT_THAT(out, HasSubstr("  answered   4\n"));
  EXPECT_THAT(out, HasSubstr("  failed     1\n"));
  EXPECT_THAT(out, ContainsRegex("rate +[0-9.]+ domains/s"));
  EXPECT_THAT(out, HasSubstr("  dane_required    2\n"));
  EXPECT_THAT(out, HasSubstr("  sts_enforce      1\n"));  // SPEC E8
  EXPECT_THAT(out, HasSubstr("  none             1\n"));
  EXPECT_THAT(out, HasSubstr("errors by code:\n  INVALID_ARGUMENT   1\n"));
  EXPECT_THAT(out, HasSubstr("line 6: bad..domain: "));
}

TEST_F(CliWarmCheckTest, WarmFillsTheServiceCacheAndExitsZero) {
  const std::string list = WriteList(
      "cli_warm_good.txt", "dane.test\ntwo-mx.test\nsts-wildcard.test\n");
  int rc = -1;
  std::string out = RunCli({"warm", server_, "--concurrency=2", list}, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("  answered   3\n"));
  // The point of warming: the second pass is answered from the cache.
  out = RunCli({"warm", server_, list}, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("sources:\n  cache            3\n"));
}

TEST_F(CliWarmCheckTest, WarmUsageErrorsExitTwo) {
  int rc = -1;
  RunCli({"warm", server_}, &rc);
  EXPECT_EQ(rc, 2);
  RunCli({"warm", server_, "--concurrency=0", "-"}, &rc);
  EXPECT_EQ(rc, 2);
  RunCli({"warm", server_, "--concurrency=many", "-"}, &rc);
  EXPECT_EQ(rc, 2);
  RunCli({"warm", server_, ::testing::TempDir() + "no-such-list.txt"}, &rc);
  EXPECT_EQ(rc, 2);
}

TEST_F(CliWarmCheckTest, WarmCountsUnreachableServiceAsFailures) {
  const std::string list = WriteList("cli_warm_one.txt", "dane.test\n");
  int rc = -1;
  const std::string out =
      RunCli({"warm", "--server=127.0.0.1:1", "--deadline=1s", list}, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("  failed     1\n"));
  EXPECT_THAT(out, ContainsRegex("(UNAVAILABLE|DEADLINE_EXCEEDED) +1"));
}

// SPEC G7, G15, G16: secure MX, secure host, a usable 3 1 1 record →
// DANE required, nothing to fix.
TEST_F(CliWarmCheckTest, CheckDaneDomainHasNoFail) {
  int rc = -1;
  const std::string out = RunCli({"check", server_, "dane.test"}, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, ContainsRegex("OK +MX RRset +DNSSEC-signed"));
  EXPECT_THAT(out, ContainsRegex("OK +address DNSSEC +mx1\\.dane\\.test"));
  EXPECT_THAT(out, ContainsRegex("OK +TLSA +mx1\\.dane\\.test: 1 usable "
                                 "record at _25\\._tcp\\.mx1\\.dane\\.test: "
                                 "3 1 1 "));
  EXPECT_THAT(out, ContainsRegex("OK +decision +dane_required"));
  EXPECT_THAT(out, ContainsRegex("WARN +record +no valid TLSRPT record"));
  EXPECT_THAT(out, Not(HasSubstr("\n  FAIL ")));  // no FAIL line
  // Where the answer came from, and how to get past a cached one.
  EXPECT_THAT(out, ContainsRegex("source +(fresh|cache)"));
  EXPECT_THAT(out, HasSubstr("mxpolicy.v1.PolicyResolver/Invalidate"));
  EXPECT_THAT(out, HasSubstr("summary: "));
  EXPECT_THAT(out, HasSubstr(", 0 FAIL"));
}

// SPEC E1(a), E4, E5: the policy's only mx pattern does not match the MX
// host, so MTA-STS senders in enforce mode refuse it and defer all mail.
TEST_F(CliWarmCheckTest, CheckStsPolicyNotMatchingTheMxFails) {
  int rc = -1;
  const std::string out = RunCli({"check", server_, "sts-nomatch.test"}, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, ContainsRegex("OK +mode +enforce"));
  EXPECT_THAT(out, ContainsRegex("FAIL +mx match +mx\\.sts-nomatch\\.test: "
                                 "matches no mx pattern"));
  EXPECT_THAT(out, ContainsRegex("WARN +mx pattern +other\\.sts-nomatch\\.test:"
                                 " matches no current MX host"));
  EXPECT_THAT(out, ContainsRegex("FAIL +decision +sts_enforce: no MX host is "
                                 "allowed"));
  EXPECT_THAT(out, HasSubstr("mx: other.sts-nomatch.test"));  // SPEC C10
}

// SPEC G7 (secure denial of TLSA → no DANE), F5: a signed domain without
// TLSA and without MTA-STS works but earns warnings, not failures.
TEST_F(CliWarmCheckTest, CheckSignedDomainWithoutDaneOrStsWarns) {
  int rc = -1;
  const std::string out = RunCli({"check", server_, "nodane.test"}, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, ContainsRegex("OK +MX RRset"));
  EXPECT_THAT(out, ContainsRegex("WARN +TLSA +mx\\.nodane\\.test: none at "
                                 "_25\\._tcp\\.mx\\.nodane\\.test"));
  // The service's reason for the missing policy is passed on.
  EXPECT_THAT(out,
              ContainsRegex("WARN +policy +none \\(no MTA-STS TXT record\\)"));
  EXPECT_THAT(out, ContainsRegex("WARN +record +no valid TLSRPT record"));
  EXPECT_THAT(out, ContainsRegex("WARN +decision +none: opportunistic TLS"));
  EXPECT_THAT(out, Not(HasSubstr("\n  FAIL ")));  // no FAIL line
}

// SPEC B5, B10, B11: a TXT record announcing a policy that cannot be
// fetched (404) leaves senders without MTA-STS — the owner's error to fix.
TEST_F(CliWarmCheckTest, CheckUnfetchablePolicyFails) {
  int rc = -1;
  const std::string out = RunCli({"check", server_, "sts-s404.test"}, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, ContainsRegex("FAIL +policy +no valid policy: .*404"));
}

TEST_F(CliWarmCheckTest, CheckJsonIsOneObjectWithFindingsAndTheAnswer) {
  int rc = -1;
  const std::string out =
      RunCli({"check", server_, "--json", "sts-nomatch.test"}, &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  EXPECT_THAT(out, HasSubstr("\"domain\":\"sts-nomatch.test\""));
  EXPECT_THAT(out, HasSubstr("\"fail\":2"));
  EXPECT_THAT(out, HasSubstr("{\"level\":\"FAIL\",\"section\":\"MTA-STS\","
                             "\"check\":\"mx match\""));
  EXPECT_THAT(out, HasSubstr("\"response\":{\"domain\":\"sts-nomatch.test\""));
}

TEST_F(CliWarmCheckTest, CheckUsageAndRpcErrorsExitTwo) {
  int rc = -1;
  RunCli({"check", server_}, &rc);
  EXPECT_EQ(rc, 2);
  RunCli({"check", server_, "dane.test", "nodane.test"}, &rc);
  EXPECT_EQ(rc, 2);
  RunCli({"check", server_, "--deadline=soon", "dane.test"}, &rc);
  EXPECT_EQ(rc, 2);
  RunCli({"check", server_, "[192.0.2.1]"}, &rc);  // INVALID_ARGUMENT
  EXPECT_EQ(rc, 2);
  RunCli({"check", "--server=127.0.0.1:1", "--deadline=1s", "dane.test"}, &rc);
  EXPECT_EQ(rc, 2);
}

}  // namespace
}  // namespace mxpolicy
