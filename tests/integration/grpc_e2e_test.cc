// End to end over a real gRPC channel to an in-process Daemon against the
// real world: health, Resolve's MX data with DNSSEC states, INVALID_ARGUMENT
// for each bad-input class (issue "Foundation", DESIGN.md "The decision").
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/app/daemon.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;
namespace health = ::grpc::health::v1;

ServerConfig WorldConfig(const testing::WorldEnv& env) {
  ServerConfig config = testing::WorldServerConfig(env);
  config.dns_timeout = absl::Seconds(3);
  return config;
}

class GrpcEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    absl::StatusOr<std::unique_ptr<Daemon>> daemon =
        Daemon::Create(WorldConfig(*env));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", daemon_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::PolicyResolver::NewStub(channel_);
  }

  grpc::Status Resolve(const std::string& domain, v1::ResolveResponse* out) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::ResolveRequest request;
    request.set_domain(domain);
    return stub_->Resolve(&context, request, out);
  }

  std::unique_ptr<Daemon> daemon_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PolicyResolver::Stub> stub_;
};

TEST_F(GrpcEndToEndTest, HealthIsServingThenNotServingOnShutdown) {
  auto health_stub = health::Health::NewStub(channel_);
  health::HealthCheckRequest request;
  health::HealthCheckResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(health_stub->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING);
  }
  // A Watch stream sees NOT_SERVING when shutdown starts.
  grpc::ClientContext watch_context;
  auto watch = health_stub->Watch(&watch_context, request);
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING);
  std::thread shutdown([&] { daemon_->Shutdown(absl::Seconds(1)); });
  bool saw_not_serving = false;
  while (watch->Read(&response)) {
    if (response.status() == health::HealthCheckResponse::NOT_SERVING) {
      saw_not_serving = true;
      break;
    }
  }
  watch_context.TryCancel();
  shutdown.join();
  EXPECT_TRUE(saw_not_serving);
}

TEST_F(GrpcEndToEndTest, ResolveSecureDaneDomain) {
  v1::ResolveResponse r;
  grpc::Status status = Resolve("DANE.test.", &r);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(r.domain(), "dane.test");
  EXPECT_EQ(r.mx_dnssec(), v1::DNSSEC_STATE_SECURE);
  EXPECT_EQ(r.decision(), v1::DECISION_DANE_REQUIRED);
  EXPECT_THAT(r.reason(), HasSubstr("MX RRset secure"));
  ASSERT_EQ(r.mx_hosts_size(), 1);
  const v1::MxHost& h = r.mx_hosts(0);
  EXPECT_EQ(h.hostname(), "mx1.dane.test");
  EXPECT_EQ(h.address_dnssec(), v1::DNSSEC_STATE_SECURE);
  EXPECT_THAT(h.addresses(),
              ::testing::UnorderedElementsAre("127.0.0.1", "::1"));
  EXPECT_EQ(h.tlsa_state(), v1::TLSA_STATE_USABLE);
  EXPECT_EQ(h.tls_requirement(), v1::TLS_REQUIREMENT_DANE);
  ASSERT_EQ(h.tlsa_records_size(), 1);
  EXPECT_EQ(h.tlsa_records(0).usage(), 3u);
  EXPECT_EQ(h.tlsa_records(0).selector(), 1u);
  EXPECT_EQ(h.tlsa_records(0).matching_type(), 1u);
  EXPECT_EQ(h.tlsa_records(0).data().size(), 32u);
  EXPECT_GT(r.ttl().seconds(), 0);
}

TEST_F(GrpcEndToEndTest, SecondResolveComesFromTheCacheUntilInvalidated) {
  v1::ResolveResponse first, second, third;
  ASSERT_TRUE(Resolve("nodane.test", &first).ok());
  EXPECT_EQ(first.source(), v1::SOURCE_FRESH);
  EXPECT_GE(first.ttl().seconds(), 60);  // positive floor
  ASSERT_TRUE(Resolve("NODANE.test.", &second).ok());
  EXPECT_EQ(second.source(), v1::SOURCE_CACHE);
  EXPECT_LE(second.ttl().seconds(), first.ttl().seconds());
  EXPECT_EQ(second.decision(), first.decision());
  EXPECT_EQ(second.mx_hosts_size(), first.mx_hosts_size());

  grpc::ClientContext context;
  v1::InvalidateRequest request;
  request.set_domain("nodane.test");
  v1::InvalidateResponse response;
  ASSERT_TRUE(stub_->Invalidate(&context, request, &response).ok());
  EXPECT_EQ(response.domain(), "nodane.test");
  EXPECT_TRUE(response.decision_dropped());
  EXPECT_FALSE(response.policy_dropped());
  ASSERT_TRUE(Resolve("nodane.test", &third).ok());
  EXPECT_EQ(third.source(), v1::SOURCE_FRESH);
}

TEST_F(GrpcEndToEndTest, EveryBadInputClassIsInvalidArgument) {
  for (const std::string& bad : std::vector<std::string>{
           "", std::string(254, 'a'), std::string(64, 'a') + ".test",
           "exa mple.test", "192.0.2.1", "[192.0.2.1]", "[mx.test]:587",
           ".dane.test", "bad\xff.test"}) {
    v1::ResolveResponse r;
    grpc::Status status = Resolve(bad, &r);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "input: " << bad;
    EXPECT_THAT(status.error_message(), HasSubstr("invalid domain"));
  }
  // And the server keeps serving.
  v1::ResolveResponse r;
  EXPECT_TRUE(Resolve("dane.test", &r).ok());
}

// --max-connection-age (issue 7 "Kubernetes": autoscaling): the server ends
// each client connection after that age, so a long-lived channel reconnects
// and re-resolves its target; calls keep working across it.
TEST(MaxConnectionAgeTest, ServerEndsOldConnectionsAndCallsGoOn) {
  absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
  ASSERT_TRUE(env.ok()) << env.status();
  ServerConfig config = WorldConfig(*env);
  config.max_connection_age = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Create(config);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*daemon)->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::PolicyResolver::NewStub(channel);
  auto resolve = [&] {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ResolveRequest request;
    request.set_domain("dane.test");
    v1::ResolveResponse response;
    return stub->Resolve(&context, request, &response);
  };
  ASSERT_TRUE(resolve().ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // GOAWAY after ~1 s (± gRPC's jitter): the idle channel leaves READY.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (channel->GetState(false) == GRPC_CHANNEL_READY && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY)
      << "the connection outlived --max-connection-age";
  EXPECT_TRUE(resolve().ok()) << "a new connection serves the next call";
}

}  // namespace
}  // namespace mxpolicy
