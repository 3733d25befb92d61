// The shipped binaries as processes, as an operator runs them: mxpolicyd
// pointed at the world by flags only (server reflection lists the API;
// SIGTERM drains an in-flight call and exits 0) and the mxpolicy CLI (table,
// JSON, exit codes). This binary deliberately does not link the server
// libraries: it is a plain gRPC client.
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "tests/support/process.h"
#include "tests/support/silent_dns.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;
using testing::FreePort;
using testing::Reap;
using testing::Spawn;
using testing::WaitServing;

std::string RunCli(const std::vector<std::string>& args, int* exit_code) {
  return testing::RunBinary(MXPOLICY_CLI_PATH, args, exit_code);
}
namespace reflection = ::grpc::reflection::v1alpha;

class DaemonProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Reap(pid_);
    }
  }
  void StartDaemon(std::vector<std::string> flags) {
    target_ = absl::StrCat("127.0.0.1:", FreePort());
    flags.insert(flags.begin(), {MXPOLICYD_PATH, "--listen=" + target_,
                                 "--metrics-listen=127.0.0.1:0"});
    pid_ = Spawn(flags);
    ASSERT_GT(pid_, 0);
    ASSERT_TRUE(WaitServing(target_)) << "mxpolicyd did not become SERVING";
  }
  void StartWorldDaemon() { StartDaemon(testing::WorldDaemonFlags(env_)); }

  testing::WorldEnv env_;
  std::string target_;
  pid_t pid_ = -1;
};

TEST_F(DaemonProcessTest, ReflectionListsTheApiAndHealth) {
  StartWorldDaemon();
  auto stub = reflection::ServerReflection::NewStub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->ServerReflectionInfo(&context);
  reflection::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  reflection::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  stream->WritesDone();
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) {
    names.push_back(s.name());
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"mxpolicy.v1.PolicyResolver",
                                              "grpc.health.v1.Health"}));
}

TEST_F(DaemonProcessTest, SigtermDrainsInFlightCallAndExitsZero) {
  testing::SilentDns silent(env_.dir);
  ASSERT_FALSE(silent.conf().empty());
  StartDaemon({"--unbound-config=" + silent.conf(), "--trust-anchor-file=",
               "--dns-timeout=1500ms", "--shutdown-grace=5s"});
  auto stub = v1::PolicyResolver::NewStub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ResolveRequest request;
  request.set_domain("slow.test");
  v1::ResolveResponse response;
  grpc::Status status;
  std::thread call(
      [&] { status = stub->Resolve(&context, request, &response); });
  usleep(400 * 1000);  // the call is now waiting on DNS
  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  call.join();
  const int exit_code = Reap(pid_);
  pid_ = -1;
  EXPECT_TRUE(status.ok()) << "in-flight call was not drained: "
                           << status.error_message();
  EXPECT_EQ(response.domain(), "slow.test");
  EXPECT_THAT(response.reason(), HasSubstr("timed out"));
  EXPECT_EQ(exit_code, 0);
}

TEST_F(DaemonProcessTest, ShutdownGraceBoundsAStalledPolicyFetch) {
  // A policy fetch that would take --fetch-timeout (20 s) is in flight; the
  // call is cancelled after --shutdown-grace and the process exits 0.
  StartDaemon({"--unbound-config=" + env_.unbound_conf,
               "--trust-anchor-file=" + env_.trust_anchor,
               "--sts-ca-file=" + env_.ca_file,
               absl::StrCat("--sts-https-port=", env_.https_port),
               "--fetch-timeout=20s", "--shutdown-grace=1s"});
  auto stub = v1::PolicyResolver::NewStub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ResolveRequest request;
  request.set_domain("sts-stall.test");
  v1::ResolveResponse response;
  grpc::Status status;
  std::thread call(
      [&] { status = stub->Resolve(&context, request, &response); });
  usleep(500 * 1000);  // the fetch now trickles
  const absl::Time start = absl::Now();
  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  const int exit_code = Reap(pid_);
  pid_ = -1;
  call.join();
  EXPECT_EQ(exit_code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // Cancelled by the server (or cut by the closing connection).
  EXPECT_THAT(status.error_code(),
              ::testing::AnyOf(grpc::StatusCode::CANCELLED,
                               grpc::StatusCode::UNAVAILABLE))
      << status.error_message();
}

TEST_F(DaemonProcessTest, BadFlagExitsTwoWithMessage) {
  pid_t pid = Spawn({MXPOLICYD_PATH, "--sts-https-port=0"});
  EXPECT_EQ(Reap(pid), 2);
}

TEST_F(DaemonProcessTest, CliTableJsonAndExitCodes) {
  StartWorldDaemon();
  const std::string server = "--server=" + target_;
  int rc = -1;
  std::string table = RunCli({"resolve", server, "dane.test"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_THAT(table, HasSubstr("mx1.dane.test"));
  EXPECT_THAT(table, HasSubstr("3 1 1 "));

  std::string json =
      RunCli({"resolve", server, "--json", "dane.test", "nodane.test"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(std::count(json.begin(), json.end(), '\n'), 2);
  EXPECT_THAT(json, HasSubstr("\"domain\":\"dane.test\""));
  EXPECT_THAT(json, HasSubstr("\"mxDnssec\":\"DNSSEC_STATE_SECURE\""));

  RunCli({"resolve", server, "[192.0.2.1]"}, &rc);
  EXPECT_EQ(rc, 1);
  RunCli({"resolve", "--server=127.0.0.1:1", "--deadline=1s", "dane.test"},
         &rc);
  EXPECT_EQ(rc, 1);
  RunCli({"resolve"}, &rc);
  EXPECT_EQ(rc, 2);
}

}  // namespace
}  // namespace mxpolicy
