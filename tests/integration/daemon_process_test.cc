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
#include "tests/support/silent_dns.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;
namespace health = ::grpc::health::v1;
namespace reflection = ::grpc::reflection::v1alpha;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

pid_t Spawn(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const std::string& a : args) {
      argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Polls health until SERVING. wait_for_ready keeps a call from failing fast
// while the channel backs off from its first, too-early connect attempt.
bool WaitServing(const std::string& target) {
  auto stub = health::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    health::HealthCheckResponse response;
    if (stub->Check(&context, {}, &response).ok() &&
        response.status() == health::HealthCheckResponse::SERVING) {
      return true;
    }
    usleep(20 * 1000);
  }
  return false;
}

int Reap(pid_t pid) {
  int wstatus = 0;
  if (waitpid(pid, &wstatus, 0) != pid) return -1;
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

std::string RunCli(const std::vector<std::string>& args, int* exit_code) {
  std::string cmd = MXPOLICY_CLI_PATH;
  for (const std::string& a : args) cmd += " '" + a + "'";
  cmd += " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

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
    flags.insert(flags.begin(), {MXPOLICYD_PATH, "--listen=" + target_});
    pid_ = Spawn(flags);
    ASSERT_GT(pid_, 0);
    ASSERT_TRUE(WaitServing(target_)) << "mxpolicyd did not become SERVING";
  }
  void StartWorldDaemon() {
    StartDaemon({"--unbound-config=" + env_.unbound_conf,
                 "--trust-anchor-file=" + env_.trust_anchor,
                 "--sts-ca-file=" + env_.ca_file,
                 absl::StrCat("--sts-https-port=", env_.https_port)});
  }

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
