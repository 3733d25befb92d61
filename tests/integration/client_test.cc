// The client library (client/include/mxpolicy/client.h) against real gRPC
// servers on loopback: two mxpolicyd processes for round-robin, the
// in-process daemon on the world for the local cache, and small scripted
// PolicyResolver services (the I/O seam) for failures the world cannot
// produce on demand (UNAVAILABLE, a service that never answers).
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "mxpolicy/client.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "tests/support/fake_clock.h"
#include "tests/support/process.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

// Answers Resolve per a script: the first `failures` calls UNAVAILABLE,
// then OK (DANE, ttl 60 s) — or UNAVAILABLE for ever while `down`.
class ScriptedService final : public v1::PolicyResolver::CallbackService {
 public:
  grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* context,
                                    const v1::ResolveRequest* request,
                                    v1::ResolveResponse* response) override {
    const int n = calls.fetch_add(1);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (n < failures.load() || down.load()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "scripted"));
      return reactor;
    }
    response->set_domain(request->domain());
    response->set_decision(v1::DECISION_DANE);
    response->mutable_ttl()->set_seconds(60);
    response->set_source(v1::SOURCE_FRESH);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::atomic<int> calls{0}, failures{0};
  std::atomic<bool> down{false};
};

struct TestServer {
  explicit TestServer(grpc::Service* service) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service);
    server = b.BuildAndStart();
  }
  ~TestServer() { server->Shutdown(absl::ToChronoTime(absl::Now())); }
  std::string target() const { return absl::StrCat("127.0.0.1:", port); }
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

std::unique_ptr<Client> MakeClient(ClientOptions o) {
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

TEST(ClientTest, RetriesUnavailable) {
  ScriptedService service;
  TestServer server(&service);
  service.failures = 2;
  ClientOptions o;
  o.target = server.target();
  o.cache_entries = 0;
  o.initial_backoff = absl::Milliseconds(10);
  auto client = MakeClient(o);
  absl::StatusOr<Policy> p = client->Resolve("a.example", absl::Seconds(5));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->response.decision(), v1::DECISION_DANE);
  EXPECT_EQ(service.calls.load(), 3) << "two UNAVAILABLE, then the answer";

  service.calls = 0;
  o.max_attempts = 1;
  auto no_retry = MakeClient(o);
  absl::StatusOr<Policy> q = no_retry->Resolve("a.example", absl::Seconds(5));
  EXPECT_EQ(q.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service.calls.load(), 1);
}

TEST(ClientTest, DeadlineIsHonoured) {
  // A listener that never speaks HTTP/2: the call can only end by deadline.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ClientOptions o;
  o.target = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  auto client = MakeClient(o);
  const absl::Time start = absl::Now();
  absl::StatusOr<Policy> p = client->Resolve("a.example", absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - start;
  close(fd);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kDeadlineExceeded) << p.status();
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(5)) << "the deadline, not gRPC's defaults";
}

TEST(ClientTest, BadDomainsAreRefusedWithoutACall) {
  ScriptedService service;
  TestServer server(&service);
  ClientOptions o;
  o.target = server.target();
  auto client = MakeClient(o);
  for (const char* bad : {"[192.0.2.1]", ".example.com", "relay.example:587", ""}) {
    EXPECT_EQ(client->Resolve(bad, absl::Seconds(1)).status().code(),
              absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(service.calls.load(), 0);
}

// Local cache: the service's TTL, then a new call; stale-if-error only for
// unreachable-service errors and only within the window.
TEST(ClientTest, LocalCacheTtlAndStaleIfError) {
  ScriptedService service;
  TestServer server(&service);
  testing::FakeClock clock;
  ClientOptions o;
  o.target = server.target();
  o.clock = &clock;
  o.max_attempts = 1;
  o.stale_if_error = absl::Minutes(10);
  auto client = MakeClient(o);

  absl::StatusOr<Policy> first = client->Resolve("A.Example.", absl::Seconds(5));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->from_local_cache);
  const absl::Time fresh_until = clock.Now() + absl::Seconds(60);
  EXPECT_EQ(first->fresh_until, fresh_until);
  clock.Advance(absl::Seconds(20));
  absl::StatusOr<Policy> hit = client->Resolve("a.example", absl::Seconds(5));
  ASSERT_TRUE(hit.ok());
  EXPECT_TRUE(hit->from_local_cache);
  EXPECT_EQ(hit->response.source(), v1::SOURCE_CACHE);
  EXPECT_EQ(hit->response.ttl().seconds(), 40);
  EXPECT_EQ(hit->fresh_until, fresh_until);  // the cached entry's own end
  EXPECT_EQ(service.calls.load(), 1);
  ASSERT_TRUE(client->Cached("a.example").has_value());

  clock.Advance(absl::Seconds(41));  // expired: asks again
  EXPECT_FALSE(client->Cached("a.example").has_value());
  ASSERT_TRUE(client->Resolve("a.example", absl::Seconds(5)).ok());
  EXPECT_EQ(service.calls.load(), 2);

  service.down = true;
  clock.Advance(absl::Seconds(61));  // expired 1 s ago, service down
  absl::StatusOr<Policy> stale = client->Resolve("a.example", absl::Seconds(5));
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_TRUE(stale->stale);
  EXPECT_EQ(stale->response.source(), v1::SOURCE_STALE);
  EXPECT_EQ(stale->response.ttl().seconds(), 0);
  EXPECT_EQ(stale->fresh_until, absl::InfinitePast());
  EXPECT_EQ(stale->stale_reason.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(stale->response.decision(), v1::DECISION_DANE);

  clock.Advance(absl::Minutes(10));  // beyond the stale window
  EXPECT_EQ(client->Resolve("a.example", absl::Seconds(5)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(client->stats().stale_answers, 1u);
}

// Round-robin over two real mxpolicyd processes: each resolves the domain
// once (FRESH) and answers later calls from its own cache, so exactly two
// FRESH answers prove both received calls (pick-first would give one).
TEST(ClientTest, RoundRobinAcrossTwoServerProcesses) {
  absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
  ASSERT_TRUE(env.ok()) << env.status();
  std::vector<pid_t> pids;
  std::vector<int> ports;
  for (int i = 0; i < 2; ++i) {
    ports.push_back(testing::FreePort());
    std::vector<std::string> args = {
        MXPOLICYD_PATH, absl::StrCat("--listen=127.0.0.1:", ports.back())};
    for (std::string& flag : testing::WorldDaemonFlags(*env)) {
      args.push_back(std::move(flag));
    }
    pids.push_back(testing::Spawn(args));
  }
  ClientOptions o;
  o.target = absl::StrCat("ipv4:127.0.0.1:", ports[0], ",127.0.0.1:", ports[1]);
  o.cache_entries = 0;  // every call goes to a server
  o.max_attempts = 5;
  auto client = MakeClient(o);
  int fresh = 0, ok = 0;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Policy> p = client->Resolve("dane.test", absl::Seconds(10));
    if (!p.ok()) {  // a server still starting: the retry policy covers most
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    ++ok;
    EXPECT_EQ(p->response.decision(), v1::DECISION_DANE_REQUIRED);
    if (p->response.source() == v1::SOURCE_FRESH) ++fresh;
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (pid_t pid : pids) {
    kill(pid, SIGTERM);
    testing::Reap(pid);
  }
  EXPECT_GE(ok, 15);
  EXPECT_EQ(fresh, 2) << "each server resolved once";
}

}  // namespace
}  // namespace mxpolicy
