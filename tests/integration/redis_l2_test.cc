// The shared L2 tier end to end: mxpolicyd replicas on the world with a real
// redis-server (issue 7 "Shared tier"; DESIGN.md "Caching" L2).
// - two replicas share decisions and MTA-STS policies: the second answers
//   without an HTTPS fetch (counted by its fetch histogram);
// - a restarted replica still enforces a policy whose TXT record was
//   removed meanwhile (RFC 8461 §10.2; SPEC D3);
// - Redis killed or hung mid-run: no RPC fails, errors are counted, and the
//   tier reconnects by itself.

#include <signal.h>
#include <sys/types.h>
#include <atomic>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/redis_server.h"
#include "tests/support/world_daemon.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

// One inline command to Redis (RESP inline syntax); the first reply line.
std::string RedisCommand(int port, const std::string& command) {
  return testing::LoopbackExchange(port, command + "\r\n",
                                   /*first_line_only=*/true);
}

std::string DecisionKey(const std::string& d) {
  return "mxpolicy:v1:decision:" + d;
}
std::string PolicyKey(const std::string& d) { return "mxpolicy:v1:policy:" + d; }

// mxpolicyd as its own process, as replicas run: gRPC and metrics on free
// loopback ports, the world's settings, the shared Redis. SIGTERM on Stop().
class ReplicaProcess {
 public:
  ReplicaProcess(const testing::WorldEnv& env, const std::string& redis_url)
      : port_(testing::FreePort()), metrics_port_(testing::FreePort()) {
    std::vector<std::string> args = {MXPOLICYD_PATH,
                                     absl::StrCat("--listen=", target())};
    for (std::string& f : testing::WorldDaemonFlags(env)) args.push_back(f);
    args.push_back(absl::StrCat("--metrics-listen=127.0.0.1:", metrics_port_));
    args.push_back("--redis=" + redis_url);
    args.push_back("--redis-timeout=2s");  // a busy CI box: no false misses
    args.push_back("--fetch-timeout=3s");
    pid_ = testing::Spawn(args, /*quiet=*/true);
    serving_ = pid_ > 0 && testing::WaitServing(target());
    stub_ = v1::PolicyResolver::NewStub(
        grpc::CreateChannel(target(), grpc::InsecureChannelCredentials()));
  }
  ~ReplicaProcess() { Stop(); }

  // Exit status of the SIGTERM-ed process (0: drained and exited cleanly).
  int Stop() {
    if (pid_ <= 0) return 0;
    // Our channel closes first: a connected idle client holds the server's
    // graceful shutdown for a few seconds (GOAWAY handshake).
    stub_.reset();
    kill(pid_, SIGTERM);
    const int status = testing::Reap(pid_);
    pid_ = -1;
    return status;
  }
  bool serving() const { return serving_; }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

  grpc::Status Resolve(const std::string& domain, v1::ResolveResponse* out) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(15)));
    v1::ResolveRequest request;
    request.set_domain(domain);
    return stub_->Resolve(&context, request, out);
  }
  // A scrape of its /metrics.
  testing::MetricValues Metrics() const {
    return testing::MetricValues(testing::LoopbackExchange(
        metrics_port_, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        /*first_line_only=*/false));
  }
  double Fetches() const {
    return Metrics()["mxpolicy_sts_fetch_duration_seconds_count"];
  }

 private:
  const int port_, metrics_port_;
  pid_t pid_ = -1;
  bool serving_ = false;
  std::unique_ptr<v1::PolicyResolver::Stub> stub_;
};

class RedisL2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    ASSERT_TRUE(redis_.Start());
  }

  // `redis_timeout`: generous where a test needs Redis to answer (a busy CI
  // machine must not turn a hit into a miss), the default where it plays
  // Redis failing.
  // `hmac_key`: non-empty, written to a file for --redis-hmac-key-file.
  std::unique_ptr<testing::WorldDaemon> Replica(
      bool with_redis = true,
      absl::Duration redis_timeout = absl::Seconds(2),
      const std::string& hmac_key = "") {
    ServerConfig config = testing::WorldServerConfig(env_);
    config.fetch_timeout = absl::Seconds(3);
    if (with_redis) config.redis_url = redis_.url();
    config.redis_timeout = redis_timeout;
    if (!hmac_key.empty()) {
      config.redis_hmac_key_file =
          absl::StrCat(::testing::TempDir(), "/hmac-", hmac_key.size(), "-",
                       std::hash<std::string>()(hmac_key));
      std::ofstream(config.redis_hmac_key_file, std::ios::trunc) << hmac_key;
    }
    absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> world =
        testing::WorldDaemon::Start(config);
    EXPECT_TRUE(world.ok()) << world.status();
    return world.ok() ? *std::move(world) : nullptr;
  }

  // Puts are fire and forget: wait until Redis has the key.
  bool WaitForKey(const std::string& key) {
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    while (absl::Now() < give_up) {
      if (RedisCommand(redis_.port(), "EXISTS " + key) == ":1\r\n") return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  bool WorldSh(const std::vector<std::string>& args) {
    int code = -1;
    std::vector<std::string> all = {WORLD_SH_PATH};
    all.insert(all.end(), args.begin(), args.end());
    testing::RunBinary("bash", all, &code);
    return code == 0;
  }

  testing::WorldEnv env_;
  testing::RedisServer redis_;
};

// Two mxpolicyd processes on one Redis.
TEST_F(RedisL2Test, TwoReplicasShareDecisionsAndPolicies) {
  ReplicaProcess a(env_, redis_.url()), b(env_, redis_.url());
  ASSERT_TRUE(a.serving() && b.serving());
  v1::ResolveResponse r;
  // A decision resolved by A is B's answer: no DNS, no fetch at B.
  ASSERT_TRUE(a.Resolve("insecure.test", &r).ok());
  ASSERT_EQ(r.decision(), v1::DECISION_STS_ENFORCE) << r.reason();
  EXPECT_EQ(a.Fetches(), 1);
  ASSERT_TRUE(WaitForKey(DecisionKey("insecure.test")));
  ASSERT_TRUE(b.Resolve("insecure.test", &r).ok());
  EXPECT_EQ(r.decision(), v1::DECISION_STS_ENFORCE) << r.reason();
  EXPECT_EQ(r.source(), v1::SOURCE_CACHE);
  EXPECT_GT(r.ttl().seconds(), 0);
  testing::MetricValues mb = b.Metrics();
  EXPECT_EQ(mb["mxpolicy_sts_fetch_duration_seconds_count"], 0);
  EXPECT_EQ(mb["mxpolicy_dns_query_duration_seconds_count{rrtype=\"MX\"}"], 0);
  EXPECT_EQ(mb["mxpolicy_l2_requests_total{kind=\"decision\",result=\"hit\"}"], 1);

  // A policy fetched by A serves B's own resolution: B looks up DNS (the
  // TXT id is unchanged) but fetches nothing.
  ASSERT_TRUE(a.Resolve("sts-blank.test", &r).ok());
  ASSERT_EQ(r.decision(), v1::DECISION_STS_ENFORCE) << r.reason();
  ASSERT_TRUE(WaitForKey(PolicyKey("sts-blank.test")));
  ASSERT_TRUE(WaitForKey(DecisionKey("sts-blank.test")));
  ASSERT_EQ(RedisCommand(redis_.port(), "DEL " + DecisionKey("sts-blank.test")),
            ":1\r\n");
  ASSERT_TRUE(b.Resolve("sts-blank.test", &r).ok());
  EXPECT_EQ(r.decision(), v1::DECISION_STS_ENFORCE) << r.reason();
  EXPECT_EQ(r.source(), v1::SOURCE_FRESH);
  EXPECT_EQ(r.sts_policy().id(), "blank1");
  EXPECT_EQ(b.Fetches(), 0) << "B fetched a policy A had shared";
  EXPECT_EQ(b.Metrics()["mxpolicy_l2_requests_total{kind=\"policy\",result=\"hit\"}"],
            1);
}

// An mxpolicyd process restarted after the domain withdrew its TXT record.
TEST_F(RedisL2Test, RestartedReplicaEnforcesPolicyWhoseTxtWasRemoved) {
  const std::string d = "sts-l2.test";
  {
    ReplicaProcess a(env_, redis_.url());
    ASSERT_TRUE(a.serving());
    v1::ResolveResponse r;
    ASSERT_TRUE(a.Resolve(d, &r).ok());
    ASSERT_EQ(r.decision(), v1::DECISION_STS_ENFORCE) << r.reason();
    ASSERT_TRUE(WaitForKey(PolicyKey(d)));
    EXPECT_EQ(a.Stop(), 0);
  }  // A has exited; its memory is gone.
  // The domain withdraws its TXT record (TTL 1 s) — RFC 8461 §10.2: a
  // policy cached before must still be enforced until it expires.
  ASSERT_TRUE(WorldSh({"set-txt", env_.dir, "_mta-sts." + d}));
  absl::Cleanup restore = [this, &d] {
    EXPECT_TRUE(WorldSh({"set-txt", env_.dir, "_mta-sts." + d, "v=STSv1; id=l21;"}));
  };
  absl::SleepFor(absl::Milliseconds(1100));  // the old TXT's TTL
  // Not the shared decision: the policy itself must carry the answer.
  RedisCommand(redis_.port(), "DEL " + DecisionKey(d));

  ReplicaProcess restarted(env_, redis_.url());
  ASSERT_TRUE(restarted.serving());
  v1::ResolveResponse r;
  ASSERT_TRUE(restarted.Resolve(d, &r).ok());
  EXPECT_EQ(r.decision(), v1::DECISION_STS_ENFORCE) << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr("cached policy applies"));
  EXPECT_EQ(restarted.Fetches(), 0);

  // Control: without the shared tier the same restart forgets the policy.
  std::unique_ptr<testing::WorldDaemon> alone = Replica(/*with_redis=*/false);
  ASSERT_TRUE(alone);
  ASSERT_TRUE(alone->Resolve(d, &r).ok());
  EXPECT_EQ(r.decision(), v1::DECISION_NONE) << r.reason();
}

TEST_F(RedisL2Test, RedisKilledOrHungMidRunFailsNoRpc) {
  std::unique_ptr<testing::WorldDaemon> a =
      Replica(/*with_redis=*/true, ServerConfig().redis_timeout);
  ASSERT_TRUE(a);
  std::atomic<int> failed{0}, done{0};
  std::atomic<bool> stop{false};
  // Cold names (each a new resolution, asking Redis first) and a hot one.
  std::thread load([&] {
    for (int i = 0; !stop.load(); ++i) {
      v1::ResolveResponse r;
      const std::string d =
          i % 2 == 0 ? absl::StrCat("k", i, ".wild.test") : "dane.test";
      grpc::Status s = a->Resolve(d, &r, absl::Seconds(5));
      if (!s.ok()) {
        ++failed;
        ADD_FAILURE() << d << ": " << s.error_message();
      }
      ++done;
    }
  });
  auto run_for = [&](absl::Duration d) {
    const int before = done.load();
    absl::SleepFor(d);
    return done.load() - before;
  };
  auto reconnects = [&] {
    return testing::MetricValues(a->daemon().RenderMetrics())
        ["mxpolicy_l2_reconnects_total"];
  };
  // Waits (running load) until the tier has reconnected more than `than`.
  auto reconnected_after = [&](double than) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (absl::Now() < give_up && reconnects() <= than) {
      run_for(absl::Milliseconds(100));
    }
    return reconnects() > than;
  };
  EXPECT_GT(run_for(absl::Milliseconds(300)), 0);
  redis_.Stop();  // killed mid-run
  EXPECT_GT(run_for(absl::Milliseconds(500)), 0);
  ASSERT_TRUE(redis_.Restart());
  EXPECT_TRUE(reconnected_after(0)) << "after the restart";
  const double before_hang = reconnects();
  redis_.Pause();  // hung: connections accepted, nothing answers
  EXPECT_GT(run_for(absl::Milliseconds(500)), 0);
  redis_.Resume();
  EXPECT_TRUE(reconnected_after(before_hang)) << "after the hang";
  stop = true;
  load.join();
  EXPECT_EQ(failed.load(), 0);
  testing::MetricValues m(a->daemon().RenderMetrics());
  EXPECT_GT(m["mxpolicy_upstream_errors_total{kind=\"redis\"}"], 0);
  EXPECT_EQ(m["mxpolicy_l2_requests_total{kind=\"any\",result=\"error\"}"],
            m["mxpolicy_upstream_errors_total{kind=\"redis\"}"]);
  // Once every connection is back (each worker has its own back-off), new
  // decisions are shared again.
  bool shared = false;
  for (int i = 0; i < 100 && !shared; ++i) {
    const std::string d = absl::StrCat("after", i, ".wild.test");
    v1::ResolveResponse r;
    ASSERT_TRUE(a->Resolve(d, &r).ok());
    absl::SleepFor(absl::Milliseconds(100));
    shared = RedisCommand(redis_.port(), "EXISTS " + DecisionKey(d)) == ":1\r\n";
  }
  EXPECT_TRUE(shared);
}

// A replica stopped while cold resolutions and policy fetches are still
// running, Redis on: the adapters complete their work into a stopped tier
// (answers inline, stores nothing) — no crash, no hang.
TEST_F(RedisL2Test, ShutdownWithResolutionsInFlight) {
  std::unique_ptr<testing::WorldDaemon> a = Replica();
  ASSERT_TRUE(a);
  auto stub = v1::PolicyResolver::NewStub(
      grpc::CreateChannel(a->target(), grpc::InsecureChannelCredentials()));
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
        v1::ResolveRequest request;
        request.set_domain(i % 3 == 0 ? "sts-stall.test"
                                      : absl::StrCat("s", t, "-", i, ".wild.test"));
        v1::ResolveResponse response;
        stub->Resolve(&context, request, &response);  // any outcome
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  a->daemon().Shutdown(absl::ZeroDuration());
  a.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  stop = true;
  for (std::thread& t : load) t.join();
}

// --redis-password-file: the password stays off the command line; a Redis
// that answers a lookup ("no such key") proves AUTH passed, a wrong
// password shows as Redis errors while every call still succeeds.
TEST_F(RedisL2Test, PasswordFromFile) {
  testing::RedisServer secured("s3cret pass");
  ASSERT_TRUE(secured.Start());
  const std::string dir = ::testing::TempDir();
  auto replica = [&](const std::string& password) {
    const std::string file = dir + "/redis-password";
    std::ofstream(file, std::ios::trunc) << password << "\n";
    ServerConfig config = testing::WorldServerConfig(env_);
    config.redis_url = absl::StrCat("redis://127.0.0.1:", secured.port());
    config.redis_password_file = file;
    config.redis_timeout = absl::Seconds(2);
    return testing::WorldDaemon::Start(config);
  };
  for (const auto& [password, ok] :
       std::vector<std::pair<std::string, bool>>{{"s3cret pass", true},
                                                 {"wrong", false}}) {
    absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> w = replica(password);
    ASSERT_TRUE(w.ok()) << w.status();
    v1::ResolveResponse r;
    ASSERT_TRUE((*w)->Resolve("dane.test", &r).ok());
    testing::MetricValues m((*w)->daemon().RenderMetrics());
    const double misses =
        m["mxpolicy_l2_requests_total{kind=\"decision\",result=\"miss\"}"];
    const double errors = m["mxpolicy_upstream_errors_total{kind=\"redis\"}"];
    EXPECT_EQ(misses, ok ? 1 : 0) << password;
    EXPECT_EQ(errors > 0, !ok) << password;
  }
}

// --redis-hmac-key-file: replicas with the same key share; a replica with
// another key (or none) takes nothing from Redis and resolves for itself,
// so write access to Redis alone cannot change the fleet's answers.
TEST_F(RedisL2Test, HmacKeyAuthenticatesSharedValues) {
  const std::string key = "0123456789abcdef-fleet-key";
  std::unique_ptr<testing::WorldDaemon> a = Replica(true, absl::Seconds(2), key);
  ASSERT_TRUE(a);
  v1::ResolveResponse r;
  ASSERT_TRUE(a->Resolve("insecure.test", &r).ok());
  ASSERT_EQ(r.decision(), v1::DECISION_STS_ENFORCE) << r.reason();
  ASSERT_TRUE(WaitForKey(DecisionKey("insecure.test")));
  ASSERT_TRUE(WaitForKey(PolicyKey("insecure.test")));

  std::unique_ptr<testing::WorldDaemon> same =
      Replica(true, absl::Seconds(2), key);
  ASSERT_TRUE(same->Resolve("insecure.test", &r).ok());
  EXPECT_EQ(r.source(), v1::SOURCE_CACHE) << "same key: shared";

  for (const std::string& other : {std::string("another-key-of-16+bytes"),
                                   std::string()}) {
    std::unique_ptr<testing::WorldDaemon> stranger =
        Replica(true, absl::Seconds(2), other);
    ASSERT_TRUE(stranger->Resolve("insecure.test", &r).ok());
    EXPECT_EQ(r.source(), v1::SOURCE_FRESH) << "key '" << other << "'";
    EXPECT_EQ(r.decision(), v1::DECISION_STS_ENFORCE);
    testing::MetricValues m(stranger->daemon().RenderMetrics());
    EXPECT_EQ(m["mxpolicy_sts_fetch_duration_seconds_count"], 1)
        << "key '" << other << "': the shared policy must not be used";
    EXPECT_GT(m["mxpolicy_upstream_errors_total{kind=\"redis\"}"], 0);
  }
}

// Too short a key is refused at start, naming the flag.
TEST_F(RedisL2Test, ShortHmacKeyIsRefused) {
  ServerConfig config = testing::WorldServerConfig(env_);
  config.redis_url = redis_.url();
  config.redis_hmac_key_file = ::testing::TempDir() + "/hmac-key-too-small";
  std::ofstream(config.redis_hmac_key_file, std::ios::trunc) << "s3cr3t\n";
  absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> w =
      testing::WorldDaemon::Start(config);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()),
              HasSubstr("--redis-hmac-key-file"));
  EXPECT_THAT(std::string(w.status().message()), ::testing::Not(HasSubstr("s3cr3t")));
}

}  // namespace
}  // namespace mxpolicy
