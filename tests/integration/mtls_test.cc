// Issue 7 ("Security"): mxpolicyd's gRPC listener with TLS and mTLS, the
// admin-RPC rule, reloading certificates (SIGHUP and the periodic check), the
// plaintext health listener, and the client side — mxpolicy::Client's TLS
// options and the CLI's --tls-* flags — end to end on 127.0.0.1, with a PKI
// made at test time (tests/support/test_pki). Resolve answers come from the
// hermetic world (dane.test).
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "mxpolicy/client.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/app/config.h"
#include "server/src/app/daemon.h"
#include "server/src/rpc/probe_health.h"
#include "server/src/rpc/server_tls.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/test_pki.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::CertFiles;
using testing::TestPki;
namespace health = ::grpc::health::v1;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void CopyFile(const std::string& from, const std::string& to) {
  // Rewritten in place, as an operator's `cp` does (not atomically).
  std::ofstream(to, std::ios::binary | std::ios::trunc) << ReadAll(from);
}

std::string MakeTempDir(const char* what) {
  const char* tmp = getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp",
                                     "/mxpolicy-", what, "-XXXXXX");
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

// One PKI for the whole binary (openssl takes ~0.2 s for it), removed at
// exit.
const TestPki& Pki() {
  static const TestPki* pki = [] {
    static std::string dir = MakeTempDir("pki");
    std::atexit([] { std::filesystem::remove_all(dir); });
    absl::StatusOr<TestPki> p = testing::MakeTestPki(dir);
    if (!p.ok()) {
      ADD_FAILURE() << p.status();
      return new TestPki();
    }
    return new TestPki(*p);
  }();
  return *pki;
}

// Channel credentials: the server verified against `ca`; `client` (may be
// null) presented for mTLS.
std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                              const CertFiles* client) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadAll(ca);
  if (client != nullptr) {
    o.pem_cert_chain = ReadAll(client->cert);
    o.pem_private_key = ReadAll(client->key);
  }
  return grpc::SslCredentials(o);
}

// A fresh connection each time: gRPC shares one connection between channels
// with identical arguments, and the reload tests need new handshakes.
std::shared_ptr<grpc::Channel> Channel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> c) {
  static int nonce = 0;
  grpc::ChannelArguments args;
  args.SetInt("mxpolicy.test.nonce", ++nonce);
  return grpc::CreateCustomChannel(target, c, args);
}

grpc::Status CallResolve(const std::shared_ptr<grpc::Channel>& ch,
                         v1::ResolveResponse* out,
                         const std::string& domain = "dane.test") {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::ResolveRequest req;
  req.set_domain(domain);
  return v1::PolicyResolver::NewStub(ch)->Resolve(&ctx, req, out);
}

grpc::Status CallInvalidate(const std::shared_ptr<grpc::Channel>& ch) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  v1::InvalidateRequest req;
  req.set_domain("dane.test");
  v1::InvalidateResponse resp;
  return v1::PolicyResolver::NewStub(ch)->Invalidate(&ctx, req, &resp);
}

// The health check over `ch`; *server_cn gets the CN of the certificate the
// server presented (empty for plaintext).
grpc::Status CallHealth(const std::shared_ptr<grpc::Channel>& ch,
                        health::HealthCheckResponse* out,
                        std::string* server_cn = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::Status s = health::Health::NewStub(ch)->Check(&ctx, {}, out);
  if (server_cn != nullptr) {
    server_cn->clear();
    std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
    if (auth != nullptr) {
      for (const grpc::string_ref& v :
           auth->FindPropertyValues("x509_common_name")) {
        *server_cn = std::string(v.data(), v.size());
      }
    }
  }
  return s;
}

// The set-up both daemon fixtures share: the test PKI and the world.
class WorldPkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Pki().dir.empty());
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
  }

  testing::WorldEnv env_;
};

// ---- in-process Daemon with TLS / mTLS --------------------------------------

class TlsDaemonTest : public WorldPkiTest {
 protected:
  // `tweak` changes the config last (e.g. back to plaintext).
  void Start(bool mtls, std::string health_listen = "",
             const std::function<void(ServerConfig&)>& tweak = nullptr) {
    ServerConfig c = testing::WorldServerConfig(env_);
    c.tls_cert = Pki().server.cert;
    c.tls_key = Pki().server.key;
    if (mtls) {
      c.tls_client_ca = Pki().ca_a.cert;
      c.admin_identities = {"admin.mxpolicy.test"};
    }
    c.health_listen = std::move(health_listen);
    if (tweak) tweak(c);
    absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Create(c);
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = *std::move(d);
    target_ = absl::StrCat("127.0.0.1:", daemon_->port());
  }
  std::shared_ptr<grpc::Channel> As(const CertFiles* client) {
    return Channel(target_, Tls(Pki().ca_a.cert, client));
  }

  std::unique_ptr<Daemon> daemon_;
  std::string target_;
};

// Issue 7 "Observability": mxpolicy_tls_reloads_total counts reloads by
// result — a good reload as ok, a refused one (a broken key) as error.
TEST_F(TlsDaemonTest, ReloadsAreCountedByResult) {
  const std::string dir = ::testing::TempDir() + "/tls-reload-metric";
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/server.pem", key = dir + "/server.key";
  CopyFile(Pki().server.cert, cert);
  CopyFile(Pki().server.key, key);
  Start(/*mtls=*/false, "", [&](ServerConfig& c) {
    c.tls_cert = cert;
    c.tls_key = key;
  });
  auto reloads = [&](const char* result) {
    return testing::MetricValues(daemon_->RenderMetrics())[absl::StrCat(
        "mxpolicy_tls_reloads_total{result=\"", result, "\"}")];
  };
  EXPECT_EQ(reloads("ok"), 0);
  EXPECT_TRUE(daemon_->ReloadTls().ok());
  EXPECT_EQ(reloads("ok"), 1);
  EXPECT_EQ(reloads("error"), 0);
  CopyFile(Pki().node1.key, key);  // not the server certificate's key
  EXPECT_FALSE(daemon_->ReloadTls().ok());
  EXPECT_EQ(reloads("ok"), 1);
  EXPECT_EQ(reloads("error"), 1);
}

// Issue 7: under mTLS a client without a certificate fails the handshake.
TEST_F(TlsDaemonTest, MtlsRefusesClientWithoutCertificate) {
  Start(/*mtls=*/true);
  v1::ResolveResponse r;
  grpc::Status s = CallResolve(As(nullptr), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

// Issue 7: a certificate from another CA (B) is refused, even one naming an
// admin identity.
TEST_F(TlsDaemonTest, MtlsRefusesCertificateFromOtherCa) {
  Start(/*mtls=*/true);
  v1::ResolveResponse r;
  grpc::Status s = CallResolve(As(&Pki().rogue), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(CallInvalidate(As(&Pki().rogue)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// Issue 7: a plaintext client cannot talk to the TLS listener.
TEST_F(TlsDaemonTest, MtlsRefusesPlaintextClient) {
  Start(/*mtls=*/true);
  v1::ResolveResponse r;
  grpc::Status s =
      CallResolve(Channel(target_, grpc::InsecureChannelCredentials()), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

// Issue 7: an authorised client (node1, from CA A) gets Resolve answers but
// not the admin RPC (PERMISSION_DENIED naming its identity, although it is
// on loopback); the admin identity may Invalidate.
TEST_F(TlsDaemonTest, MtlsResolveForNodesInvalidateForAdminOnly) {
  Start(/*mtls=*/true);
  v1::ResolveResponse r;
  grpc::Status s = CallResolve(As(&Pki().node1), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.domain(), "dane.test");
  EXPECT_NE(r.decision(), v1::DECISION_UNSPECIFIED);

  grpc::Status denied = CallInvalidate(As(&Pki().node1));
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("node1.mxpolicy.test"));

  grpc::Status admin = CallInvalidate(As(&Pki().admin));
  EXPECT_TRUE(admin.ok()) << admin.error_message();
}

// Issue 7, RFC 6125 §6.4.4: the subject CN names an admin only on a
// certificate without any SAN. With SANs of any kind — an IP address, which
// gRPC reports apart from DNS/URI/e-mail, or a DNS name — the CN is ignored.
TEST_F(TlsDaemonTest, MtlsAdminByCnOnlyWithoutSans) {
  Start(/*mtls=*/true);
  const std::string& dir = Pki().dir;
  absl::StatusOr<CertFiles> cn_only = testing::IssueCert(
      dir, "admin-cn-only", Pki().ca_a, "admin.mxpolicy.test", "");
  ASSERT_TRUE(cn_only.ok()) << cn_only.status();
  absl::StatusOr<CertFiles> cn_ip = testing::IssueCert(
      dir, "admin-cn-ip", Pki().ca_a, "admin.mxpolicy.test", "IP:127.0.0.2");
  ASSERT_TRUE(cn_ip.ok()) << cn_ip.status();
  absl::StatusOr<CertFiles> cn_dns = testing::IssueCert(
      dir, "admin-cn-dns", Pki().ca_a, "admin.mxpolicy.test",
      "DNS:node7.mxpolicy.test");
  ASSERT_TRUE(cn_dns.ok()) << cn_dns.status();

  grpc::Status s = CallInvalidate(As(&*cn_only));
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = CallInvalidate(As(&*cn_ip));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("not used: the certificate has SANs"));
  s = CallInvalidate(As(&*cn_dns));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("DNS:node7.mxpolicy.test"));
}

// Issue 7: --admin-identity ignores empty and whitespace-only entries (a
// stray comma must not add an identity, nor "" match anything) and trims
// the others.
TEST(AdminIdentityFlagTest, DropsEmptyEntries) {
  auto parse = [](std::string value) {
    std::vector<std::string> args = {"mxpolicyd", "--tls-cert=c",
                                      "--tls-key=k", "--tls-client-ca=ca",
                                      "--admin-identity=" + value};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    bool help = false;
    return ParseServerFlags(static_cast<int>(argv.size()), argv.data(), &help);
  };
  absl::StatusOr<ServerConfig> c =
      parse(" admin.mxpolicy.test , ,\t,, spiffe://x/ops ,");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->admin_identities,
              ::testing::ElementsAre("admin.mxpolicy.test", "spiffe://x/ops"));
  c = parse(" , ");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->admin_identities, ::testing::IsEmpty());
}

// Issue 7: TLS without client CA: clients verifying the server with CA A get
// answers; plaintext clients fail; the admin rule is the address (loopback
// only), so Invalidate from 127.0.0.1 is allowed.
TEST_F(TlsDaemonTest, TlsOnlyServesVerifyingClientsAdminByLoopback) {
  Start(/*mtls=*/false);
  v1::ResolveResponse r;
  grpc::Status s = CallResolve(As(nullptr), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.domain(), "dane.test");
  EXPECT_EQ(CallResolve(Channel(target_, grpc::InsecureChannelCredentials()),
                        &r)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A client that trusts another CA does not accept the server.
  EXPECT_EQ(CallResolve(Channel(target_, Tls(Pki().ca_b.cert, nullptr)), &r)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  grpc::Status inv = CallInvalidate(As(nullptr));
  EXPECT_TRUE(inv.ok()) << inv.error_message();
}

// Issue 7: --health-listen serves grpc.health.v1 in plaintext (Kubernetes
// gRPC probes) while the main port is TLS-only; it serves nothing else.
// During Shutdown's drain — a Resolve held in flight by a stalled policy
// fetch keeps the main server draining for the whole grace — the probe port
// is still up and answers NOT_SERVING; after the drain it is gone.
TEST_F(TlsDaemonTest, PlaintextHealthListenerMirrorsMainServer) {
  Start(/*mtls=*/true, "127.0.0.1:0", [](ServerConfig& c) {
    c.fetch_timeout = absl::Seconds(30);  // longer than the grace below
  });
  ASSERT_GT(daemon_->health_port(), 0);
  auto plain = Channel(absl::StrCat("127.0.0.1:", daemon_->health_port()),
                       grpc::InsecureChannelCredentials());
  health::HealthCheckResponse h;
  grpc::Status s = CallHealth(plain, &h);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(h.status(), health::HealthCheckResponse::SERVING);
  // Only health there: no PolicyResolver on the probe port.
  v1::ResolveResponse r;
  EXPECT_EQ(CallResolve(plain, &r).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // The main port does not answer plaintext health checks.
  EXPECT_EQ(CallHealth(Channel(target_, grpc::InsecureChannelCredentials()), &h)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // sts-stall.test's policy trickles at 1 byte/s: the call stays in flight.
  grpc::Status stalled;
  std::thread call([&] {
    v1::ResolveResponse out;
    stalled = CallResolve(As(&Pki().node1), &out, "sts-stall.test");
  });
  absl::SleepFor(absl::Milliseconds(700));  // the fetch now trickles
  constexpr absl::Duration kGrace = absl::Seconds(4);
  std::atomic<bool> drained{false};
  const absl::Time shutdown_start = absl::Now();
  std::thread stopper([&] {
    daemon_->Shutdown(kGrace);
    drained.store(true);
  });
  // NOT_SERVING is published at the start of Shutdown.
  grpc::Status during;
  health::HealthCheckResponse during_h;
  const absl::Time give_up = absl::Now() + absl::Seconds(2);
  do {
    during = CallHealth(plain, &during_h);
    if (during.ok() &&
        during_h.status() == health::HealthCheckResponse::NOT_SERVING) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < give_up);
  const bool still_draining = !drained.load();
  EXPECT_TRUE(during.ok()) << during.error_message();
  EXPECT_EQ(during_h.status(), health::HealthCheckResponse::NOT_SERVING);
  EXPECT_TRUE(still_draining) << "the main server finished draining before "
                                 "the probe port was checked";
  // And again in the middle of the grace, still during the drain.
  absl::SleepFor(absl::Seconds(1));
  during = CallHealth(plain, &during_h);
  EXPECT_FALSE(drained.load());
  EXPECT_TRUE(during.ok()) << during.error_message();
  EXPECT_EQ(during_h.status(), health::HealthCheckResponse::NOT_SERVING);

  stopper.join();
  call.join();
  // The drain lasted the grace (the held call kept it open) and then cut
  // the call.
  EXPECT_GE(absl::Now() - shutdown_start, kGrace - absl::Milliseconds(500));
  EXPECT_THAT(stalled.error_code(),
              ::testing::AnyOf(grpc::StatusCode::CANCELLED,
                               grpc::StatusCode::UNAVAILABLE))
      << stalled.error_message();
  // After the drain the probe listener is gone too.
  EXPECT_EQ(CallHealth(plain, &h).error_code(), grpc::StatusCode::UNAVAILABLE);
}

// Issue 7: mxpolicy::Client's TLS options end to end: ca_file, mTLS with
// cert_file/key_file, tls_server_name, and the failures of each.
TEST_F(TlsDaemonTest, ClientLibraryTlsAndMtlsOptions) {
  Start(/*mtls=*/true);
  auto resolve = [&](ClientOptions o) {
    o.target = target_;
    o.max_attempts = 1;
    o.cache_entries = 0;
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(o);
    if (!c.ok()) return c.status();
    absl::StatusOr<Policy> p = (*c)->Resolve("dane.test", absl::Seconds(15));
    return p.ok() ? absl::OkStatus() : p.status();
  };
  ClientOptions mtls;
  mtls.use_tls = true;
  mtls.ca_file = Pki().ca_a.cert;
  mtls.cert_file = Pki().node1.cert;
  mtls.key_file = Pki().node1.key;
  EXPECT_TRUE(resolve(mtls).ok()) << resolve(mtls);

  ClientOptions named = mtls;  // the name checked: SAN DNS:localhost
  named.tls_server_name = "localhost";
  EXPECT_TRUE(resolve(named).ok()) << resolve(named);
  named.tls_server_name = "elsewhere.example";
  EXPECT_EQ(resolve(named).code(), absl::StatusCode::kUnavailable);

  ClientOptions no_cert = mtls;
  no_cert.cert_file.clear();
  no_cert.key_file.clear();
  EXPECT_EQ(resolve(no_cert).code(), absl::StatusCode::kUnavailable);

  ClientOptions wrong_ca = mtls;
  wrong_ca.ca_file = Pki().ca_b.cert;
  EXPECT_EQ(resolve(wrong_ca).code(), absl::StatusCode::kUnavailable);

  ClientOptions half = mtls;
  half.key_file.clear();
  EXPECT_EQ(resolve(half).code(), absl::StatusCode::kInvalidArgument);
  ClientOptions missing = mtls;
  missing.ca_file = Pki().dir + "/no-such.pem";
  EXPECT_EQ(resolve(missing).code(), absl::StatusCode::kInvalidArgument);
}

// Issue 7: TLS-only server through the client library (ca_file, no client
// certificate).
TEST_F(TlsDaemonTest, ClientLibraryTlsOnly) {
  Start(/*mtls=*/false);
  ClientOptions o;
  o.target = target_;
  o.use_tls = true;
  o.ca_file = Pki().ca_a.cert;
  o.cache_entries = 0;
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(o);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<Policy> p = (*c)->Resolve("dane.test", absl::Seconds(15));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->response.domain(), "dane.test");

  // tls_server_name alone turns TLS on, with the default roots (it was a
  // plaintext channel before, which this server refuses). The default roots
  // are CA A through gRPC's roots variable, which gRPC reads process-wide:
  // set only in a child — this binary, running the test below.
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  int rc = -1;
  const std::string out = testing::RunBinary(
      "/usr/bin/env",
      {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=" + Pki().ca_a.cert,
       "MXPOLICY_TEST_DEFAULT_ROOTS_TARGET=" + target_,
       std::string(self, static_cast<size_t>(n)),
       "--gtest_filter=ClientDefaultRootsChild.*"},
      &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("[       OK ] ClientDefaultRootsChild."
                             "TlsServerNameAloneUsesDefaultRoots"))
      << out;
}

// The child half of ClientLibraryTlsOnly (skipped when run directly).
TEST(ClientDefaultRootsChild, TlsServerNameAloneUsesDefaultRoots) {
  const char* target = getenv("MXPOLICY_TEST_DEFAULT_ROOTS_TARGET");
  if (target == nullptr) {
    GTEST_SKIP() << "runs as a child process of "
                    "TlsDaemonTest.ClientLibraryTlsOnly";
  }
  ClientOptions name_only;
  name_only.target = target;
  name_only.tls_server_name = "localhost";
  name_only.cache_entries = 0;
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(name_only);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<Policy> p = (*c)->Resolve("dane.test", absl::Seconds(15));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->response.domain(), "dane.test");
}

// Issue 7: the CLI's --tls-ca/--tls-cert/--tls-key against the mTLS server;
// without the client certificate the call fails (exit 1).
TEST_F(TlsDaemonTest, CliResolveWithTlsFlags) {
  Start(/*mtls=*/true);
  int rc = -1;
  const std::string out = testing::RunBinary(
      MXPOLICY_CLI_PATH,
      {"resolve", "--server=" + target_, "--tls-ca=" + Pki().ca_a.cert,
       "--tls-cert=" + Pki().node1.cert, "--tls-key=" + Pki().node1.key,
       "--deadline=15s", "dane.test"},
      &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("dane.test"));
  EXPECT_THAT(out, HasSubstr("decision"));
  testing::RunBinary(MXPOLICY_CLI_PATH,
                     {"resolve", "--server=" + target_,
                      "--tls-ca=" + Pki().ca_a.cert, "--deadline=5s",
                      "dane.test"},
                     &rc);
  EXPECT_EQ(rc, 1);
  const std::string help =
      testing::RunBinary(MXPOLICY_CLI_PATH, {"resolve", "--help"}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_THAT(help, HasSubstr("--tls-cert=F --tls-key=F"));
}

// `mxpolicy check`'s Invalidate hint is a grpcurl command for the same
// connection the CLI made: the CLI's CA, client certificate and server name
// under TLS, -plaintext only without it.
TEST_F(TlsDaemonTest, CliCheckInvalidateHintFollowsTransport) {
  Start(/*mtls=*/true);
  int rc = -1;
  std::string out = testing::RunBinary(
      MXPOLICY_CLI_PATH,
      {"check", "--server=" + target_, "--tls-ca=" + Pki().ca_a.cert,
       "--tls-cert=" + Pki().admin.cert, "--tls-key=" + Pki().admin.key,
       "--tls-server-name=localhost", "--deadline=15s", "dane.test"},
      &rc);
  EXPECT_NE(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat(
                       "grpcurl -cacert ", Pki().ca_a.cert, " -cert ",
                       Pki().admin.cert, " -key ", Pki().admin.key,
                       " -servername localhost -d '{\"domain\":\"dane.test\"}' ",
                       target_, " mxpolicy.v1.PolicyResolver/Invalidate")))
      << out;
  EXPECT_THAT(out, Not(HasSubstr("-plaintext")));
}

TEST_F(TlsDaemonTest, CliCheckInvalidateHintPlaintext) {
  Start(/*mtls=*/false, "", [](ServerConfig& c) {
    c.tls_cert.clear();
    c.tls_key.clear();
  });
  int rc = -1;
  const std::string out = testing::RunBinary(
      MXPOLICY_CLI_PATH,
      {"check", "--server=" + target_, "--deadline=15s", "dane.test"}, &rc);
  EXPECT_NE(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat(
                       "grpcurl -plaintext -d '{\"domain\":\"dane.test\"}' ",
                       target_)))
      << out;
}

// One socketmap query to mxpolicy-postfix on 127.0.0.1:port; the reply
// netstring, or "" when none came within 15 s.
std::string SocketmapQuery(int port, const std::string& key) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  const std::string q = "postfix " + key;
  const std::string req = absl::StrCat(q.size(), ":", q, ",");
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string out;
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  while ((out.empty() || out.back() != ',') && absl::Now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// Issue 7: mxpolicy-postfix's --ca-file/--cert-file/--key-file reach the
// mTLS server (a DANE answer for dane.test); without the client certificate
// the handshake fails and the lookup is TEMP (the adapter's default when the
// service is unreachable).
TEST_F(TlsDaemonTest, PostfixAdapterTlsFlags) {
  Start(/*mtls=*/true);
  auto run = [&](std::vector<std::string> tls_flags) {
    const int port = testing::FreePort();
    std::vector<std::string> args = {MXPOLICY_POSTFIX_PATH,
                                     absl::StrCat("--listen=127.0.0.1:", port),
                                     "--server=" + target_, "--deadline=5s"};
    for (std::string& f : tls_flags) args.push_back(f);
    const pid_t pid = testing::Spawn(args, /*quiet=*/true);
    std::string reply;
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (reply.empty() && absl::Now() < give_up) {
      reply = SocketmapQuery(port, "dane.test");
      if (reply.empty()) absl::SleepFor(absl::Milliseconds(50));
    }
    kill(pid, SIGTERM);
    testing::Reap(pid);
    return reply;
  };
  EXPECT_EQ(run({"--ca-file=" + Pki().ca_a.cert,
                 "--cert-file=" + Pki().node1.cert,
                 "--key-file=" + Pki().node1.key}),
            "12:OK dane-only,");
  EXPECT_THAT(run({"--ca-file=" + Pki().ca_a.cert}), HasSubstr(":TEMP"));
}

// Issue 7: the probe listener's health service follows SetServing (the
// Daemon sets NOT_SERVING at the start of Shutdown, before the drain), knows
// only "" and mxpolicy.v1.PolicyResolver, and Watch sends the status.
TEST(ProbeHealthTest, MirrorsServingStatus) {
  ProbeHealthService service;
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = health::Health::NewStub(
      Channel(absl::StrCat("127.0.0.1:", port),
              grpc::InsecureChannelCredentials()));
  auto check = [&](const std::string& name,
                   health::HealthCheckResponse::ServingStatus* status) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    health::HealthCheckRequest req;
    req.set_service(name);
    health::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, req, &resp);
    *status = resp.status();
    return s.error_code();
  };
  health::HealthCheckResponse::ServingStatus st;
  EXPECT_EQ(check("", &st), grpc::StatusCode::OK);
  EXPECT_EQ(st, health::HealthCheckResponse::NOT_SERVING);
  service.SetServing(true);
  EXPECT_EQ(check("", &st), grpc::StatusCode::OK);
  EXPECT_EQ(st, health::HealthCheckResponse::SERVING);
  EXPECT_EQ(check("mxpolicy.v1.PolicyResolver", &st), grpc::StatusCode::OK);
  EXPECT_EQ(st, health::HealthCheckResponse::SERVING);
  EXPECT_EQ(check("other.Service", &st), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    auto reader = stub->Watch(&ctx, health::HealthCheckRequest());
    health::HealthCheckResponse first;
    ASSERT_TRUE(reader->Read(&first));
    EXPECT_EQ(first.status(), health::HealthCheckResponse::SERVING);
    ctx.TryCancel();
  }
  service.SetServing(false);
  EXPECT_EQ(check("", &st), grpc::StatusCode::OK);
  EXPECT_EQ(st, health::HealthCheckResponse::NOT_SERVING);
  server->Shutdown(absl::ToChronoTime(absl::Now()));
}

// Watch calls end exactly once however they end: cancelled by the client,
// cut by the server's shutdown (OnCancel), or both racing with a failed
// write — gRPC allows one Finish() per reactor. Every stream gets its first
// status, ends with a non-OK status, and the server shuts down.
TEST(ProbeHealthTest, WatchEndsOnceOnCancelAndShutdown) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    ProbeHealthService service;
    service.SetServing(true);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                       &port);
    b.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    ASSERT_NE(server, nullptr);
    auto stub = health::Health::NewStub(
        Channel(absl::StrCat("127.0.0.1:", port),
                grpc::InsecureChannelCredentials()));
    constexpr int kStreams = 8;
    std::vector<std::unique_ptr<grpc::ClientContext>> ctx;
    std::vector<
        std::unique_ptr<grpc::ClientReader<health::HealthCheckResponse>>>
        readers;
    for (int i = 0; i < kStreams; ++i) {
      ctx.push_back(std::make_unique<grpc::ClientContext>());
      ctx.back()->set_deadline(
          absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      readers.push_back(stub->Watch(ctx.back().get(), {}));
      health::HealthCheckResponse first;
      ASSERT_TRUE(readers.back()->Read(&first));
      EXPECT_EQ(first.status(), health::HealthCheckResponse::SERVING);
    }
    // Half cancelled by their client, at the moment the server goes away.
    std::thread canceller([&] {
      for (int i = 0; i < kStreams; i += 2) ctx[i]->TryCancel();
    });
    server->Shutdown(absl::ToChronoTime(absl::Now()));
    canceller.join();
    for (int i = 0; i < kStreams; ++i) {
      health::HealthCheckResponse more;
      EXPECT_FALSE(readers[i]->Read(&more));
      EXPECT_NE(readers[i]->Finish().error_code(), grpc::StatusCode::OK);
    }
    server->Wait();
  }
}

// ---- ServerTls: validation and the private copies ---------------------------

// Issue 7: bad files are refused with an error naming the file; a refused
// reload leaves the served copy as it was; the copies go with the object.
TEST(ServerTlsTest, ValidatesFilesAndKeepsOldCopyOnBadReload) {
  const TestPki& pki = Pki();
  const std::string dir = MakeTempDir("servertls");
  const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  CopyFile(pki.server.cert, cert);
  CopyFile(pki.node1.key, key);  // not the server's key
  ServerTls::Options o;
  o.cert_file = cert;
  o.key_file = key;
  o.tmp_dir = dir;
  absl::StatusOr<std::unique_ptr<ServerTls>> bad = ServerTls::Create(o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(key));
  EXPECT_THAT(bad.status().message(), HasSubstr("does not match"));

  std::ofstream(cert, std::ios::trunc) << "-----BEGIN CERTIFICATE-----\nxx\n";
  bad = ServerTls::Create(o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(cert));

  CopyFile(pki.server.cert, cert);
  CopyFile(pki.server.key, key);
  o.client_ca_file = dir + "/missing-ca.pem";
  bad = ServerTls::Create(o);
  EXPECT_THAT(bad.status().message(), HasSubstr("missing-ca.pem"));

  o.client_ca_file = pki.ca_a.cert;
  absl::StatusOr<std::unique_ptr<ServerTls>> tls = ServerTls::Create(o);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE((*tls)->mtls());
  const std::string copy_dir = (*tls)->copy_dir();
  const std::string identity = copy_dir + "/identity.pem";
  const std::string served = ReadAll(identity);
  EXPECT_THAT(served, HasSubstr("PRIVATE KEY"));
  struct stat st;
  ASSERT_EQ(stat(copy_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  absl::StatusOr<bool> changed = (*tls)->ReloadIfChanged();
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);

  CopyFile(pki.admin.key, key);  // mismatched again
  absl::Status s = (*tls)->Reload();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(key));
  EXPECT_EQ(ReadAll(identity), served);
  EXPECT_EQ((*tls)->reloads_failed(), 1u);
  // The same broken bytes are not retried by the periodic check.
  changed = (*tls)->ReloadIfChanged();
  EXPECT_TRUE(changed.ok() && !*changed);
  EXPECT_EQ((*tls)->reloads_failed(), 1u);

  CopyFile(pki.server.key, key);
  changed = (*tls)->ReloadIfChanged();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ((*tls)->reloads_ok(), 1u);

  tls->reset();
  EXPECT_FALSE(std::filesystem::exists(copy_dir));
  std::filesystem::remove_all(dir);
}

// Operator files for an mTLS ServerTls in a fresh directory, and the object.
struct MtlsCopies {
  std::string dir, cert, key, ca;
  std::unique_ptr<ServerTls> tls;
};

MtlsCopies MakeMtlsServerTls() {
  MtlsCopies m;
  m.dir = MakeTempDir("servertls");
  m.cert = m.dir + "/cert.pem";
  m.key = m.dir + "/key.pem";
  m.ca = m.dir + "/client-ca.pem";
  CopyFile(Pki().server.cert, m.cert);
  CopyFile(Pki().server.key, m.key);
  CopyFile(Pki().ca_a.cert, m.ca);
  ServerTls::Options o;
  o.cert_file = m.cert;
  o.key_file = m.key;
  o.client_ca_file = m.ca;
  o.tmp_dir = m.dir;
  absl::StatusOr<std::unique_ptr<ServerTls>> tls = ServerTls::Create(o);
  EXPECT_TRUE(tls.ok()) << tls.status();
  if (tls.ok()) m.tls = *std::move(tls);
  return m;
}

// Issue 7: a reload that cannot write one of the private copies publishes
// none of them: writing the identity fails after the client CA was written,
// and the served client CA and identity are both unchanged. The periodic
// check tries the same files again (they were never published) and, once
// writing works, publishes both.
TEST(ServerTlsTest, FailedWriteLeavesEveryCopyAndIsRetried) {
  MtlsCopies m = MakeMtlsServerTls();
  ASSERT_NE(m.tls, nullptr);
  const std::string copy_dir = m.tls->copy_dir();
  const std::string served_ca = ReadAll(copy_dir + "/client-ca.pem");
  const std::string served_identity = ReadAll(copy_dir + "/identity.pem");
  ASSERT_EQ(served_ca, ReadAll(Pki().ca_a.cert));

  // The identity's temp file cannot be created (a directory is in the way).
  const std::string blocker = copy_dir + "/.identity.pem.tmp";
  ASSERT_EQ(mkdir(blocker.c_str(), 0700), 0);
  CopyFile(Pki().ca_b.cert, m.ca);
  CopyFile(Pki().node1.cert, m.cert);
  CopyFile(Pki().node1.key, m.key);
  absl::Status s = m.tls->Reload();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(s.message(), HasSubstr("identity.pem"));
  EXPECT_EQ(ReadAll(copy_dir + "/client-ca.pem"), served_ca);
  EXPECT_EQ(ReadAll(copy_dir + "/identity.pem"), served_identity);
  EXPECT_FALSE(std::filesystem::exists(copy_dir + "/.client-ca.pem.tmp"));
  EXPECT_EQ(m.tls->reloads_failed(), 1u);

  // Still failing: the periodic check retries (and counts) the same bytes.
  absl::StatusOr<bool> changed = m.tls->ReloadIfChanged();
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(m.tls->reloads_failed(), 2u);
  EXPECT_EQ(ReadAll(copy_dir + "/client-ca.pem"), served_ca);

  ASSERT_EQ(rmdir(blocker.c_str()), 0);
  changed = m.tls->ReloadIfChanged();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(m.tls->reloads_ok(), 1u);
  EXPECT_EQ(ReadAll(copy_dir + "/client-ca.pem"), ReadAll(Pki().ca_b.cert));
  EXPECT_THAT(ReadAll(copy_dir + "/identity.pem"),
              HasSubstr(ReadAll(Pki().node1.cert)));
  m.tls.reset();
  std::filesystem::remove_all(m.dir);
}

// Issue 7: when the identity cannot be renamed into place after the new
// client CA was, the previous client CA is put back: the refused reload
// leaves the served pair as it was.
TEST(ServerTlsTest, FailedIdentityRenameRestoresClientCa) {
  MtlsCopies m = MakeMtlsServerTls();
  ASSERT_NE(m.tls, nullptr);
  const std::string copy_dir = m.tls->copy_dir();
  const std::string served_ca = ReadAll(copy_dir + "/client-ca.pem");
  // rename(2) cannot replace a directory with a file.
  const std::string identity = copy_dir + "/identity.pem";
  ASSERT_EQ(unlink(identity.c_str()), 0);
  ASSERT_EQ(mkdir(identity.c_str(), 0700), 0);

  CopyFile(Pki().ca_b.cert, m.ca);
  absl::Status s = m.tls->Reload();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(s.message(), HasSubstr("rename"));
  EXPECT_EQ(ReadAll(copy_dir + "/client-ca.pem"), served_ca);
  EXPECT_FALSE(std::filesystem::exists(copy_dir + "/.identity.pem.tmp"));
  EXPECT_FALSE(std::filesystem::exists(copy_dir + "/.client-ca.pem.tmp"));
  EXPECT_EQ(m.tls->reloads_failed(), 1u);

  ASSERT_EQ(rmdir(identity.c_str()), 0);
  absl::StatusOr<bool> changed = m.tls->ReloadIfChanged();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(ReadAll(copy_dir + "/client-ca.pem"), ReadAll(Pki().ca_b.cert));
  EXPECT_THAT(ReadAll(identity), HasSubstr("PRIVATE KEY"));
  m.tls.reset();
  std::filesystem::remove_all(m.dir);
}

// ---- mxpolicyd as a process: reload -----------------------------------------

class ReloadProcessTest : public WorldPkiTest {
 protected:
  void SetUp() override {
    WorldPkiTest::SetUp();
    if (HasFatalFailure()) return;
    dir_ = MakeTempDir("reload");
    cert_ = dir_ + "/tls.crt";
    key_ = dir_ + "/tls.key";
    CopyFile(Pki().server.cert, cert_);
    CopyFile(Pki().server.key, key_);
    absl::StatusOr<CertFiles> two = testing::IssueCert(
        dir_, "server2", Pki().ca_a, "mxpolicyd server 2",
        "IP:127.0.0.1,DNS:localhost");
    ASSERT_TRUE(two.ok()) << two.status();
    server2_ = *two;
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      testing::Reap(pid_);
    }
    std::filesystem::remove_all(dir_);
  }
  // Starts mxpolicyd with TLS on the world; stderr to dir_/stderr.log and
  // TMPDIR=dir_/tmp (where its private copies go).
  void Start(std::vector<std::string> extra) {
    target_ = absl::StrCat("127.0.0.1:", testing::FreePort());
    std::vector<std::string> args = {MXPOLICYD_PATH, "--listen=" + target_,
                                     "--tls-cert=" + cert_,
                                     "--tls-key=" + key_};
    for (std::string& f : testing::WorldDaemonFlags(env_)) args.push_back(f);
    for (std::string& f : extra) args.push_back(f);
    mkdir((dir_ + "/tmp").c_str(), 0700);
    // testing::Spawn, through env(1) for TMPDIR and sh(1) for the stderr
    // redirection; both exec, so pid_ is mxpolicyd's own (signals, exit).
    std::vector<std::string> spawn = {"/usr/bin/env", "TMPDIR=" + dir_ + "/tmp",
                                      "/bin/sh", "-c", "exec \"$@\" 2>>\"$0\"",
                                      dir_ + "/stderr.log"};
    for (std::string& a : args) spawn.push_back(std::move(a));
    pid_ = testing::Spawn(spawn, /*quiet=*/true);
    ASSERT_GT(pid_, 0);
  }
  std::string Log() { return ReadAll(dir_ + "/stderr.log"); }
  // The CN of the certificate a new TLS connection sees ("" on failure).
  std::string ServedCn() {
    health::HealthCheckResponse h;
    std::string cn;
    if (!CallHealth(Channel(target_, Tls(Pki().ca_a.cert, nullptr)), &h, &cn)
             .ok()) {
      return "";
    }
    return cn;
  }
  bool WaitForCn(const std::string& want, absl::Duration limit) {
    const absl::Time give_up = absl::Now() + limit;
    while (absl::Now() < give_up) {
      if (ServedCn() == want) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }
  bool WaitForLog(const std::string& part, absl::Duration limit) {
    const absl::Time give_up = absl::Now() + limit;
    while (absl::Now() < give_up) {
      if (Log().find(part) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  std::string dir_, cert_, key_, target_;
  CertFiles server2_;
  pid_t pid_ = -1;
};

// Issue 7: SIGHUP with a new certificate → new connections see it; SIGHUP
// with a broken key → refused, logged naming the file, the previous
// certificate still served. SIGTERM removes the private copies.
TEST_F(ReloadProcessTest, SighupReloadsAndRefusesBrokenFiles) {
  Start({});
  ASSERT_TRUE(WaitForCn("mxpolicyd server 1", absl::Seconds(20))) << Log();

  CopyFile(server2_.cert, cert_);
  CopyFile(server2_.key, key_);
  kill(pid_, SIGHUP);
  ASSERT_TRUE(WaitForLog("tls_reloaded trigger=sighup", absl::Seconds(5)))
      << Log();
  EXPECT_TRUE(WaitForCn("mxpolicyd server 2", absl::Seconds(5))) << Log();

  std::ofstream(key_, std::ios::trunc) << "-----BEGIN PRIVATE KEY-----\nAAAA\n";
  kill(pid_, SIGHUP);
  ASSERT_TRUE(WaitForLog("tls_reload_refused trigger=sighup", absl::Seconds(5))) << Log();
  EXPECT_THAT(Log(), HasSubstr(key_));
  absl::SleepFor(absl::Milliseconds(1500));  // > the 1 s refresh interval
  EXPECT_EQ(ServedCn(), "mxpolicyd server 2");

  // Still serving Resolve (a new TLS connection).
  v1::ResolveResponse r;
  grpc::Status s =
      CallResolve(Channel(target_, Tls(Pki().ca_a.cert, nullptr)), &r);
  EXPECT_TRUE(s.ok()) << s.error_message();

  kill(pid_, SIGTERM);
  EXPECT_EQ(testing::Reap(pid_), 0) << Log();
  pid_ = -1;
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/tmp"))
      << "private TLS copies left behind";
  EXPECT_THAT(Log(), Not(HasSubstr("Reading file")));
}

// Issue 7: without a signal, a change of the files' bytes is picked up by
// the periodic check (--tls-check-interval; one minute by default), as a
// Kubernetes secret update needs.
TEST_F(ReloadProcessTest, PeriodicCheckReloadsChangedFiles) {
  Start({"--tls-check-interval=1s"});
  ASSERT_TRUE(WaitForCn("mxpolicyd server 1", absl::Seconds(20))) << Log();
  CopyFile(server2_.cert, cert_);
  CopyFile(server2_.key, key_);
  EXPECT_TRUE(WaitForCn("mxpolicyd server 2", absl::Seconds(6))) << Log();
  EXPECT_THAT(Log(), HasSubstr("tls_reloaded trigger=file_change"));
}

// Issue 7: bad files at start-up stop mxpolicyd with a message naming the
// file and a non-zero exit.
TEST_F(ReloadProcessTest, BadFilesAtStartupExitNonZero) {
  CopyFile(Pki().node1.key, key_);
  Start({});
  EXPECT_EQ(testing::Reap(pid_), 1) << Log();
  pid_ = -1;
  EXPECT_THAT(Log(), HasSubstr(key_));
  EXPECT_THAT(Log(), HasSubstr("does not match"));
}

}  // namespace
}  // namespace mxpolicy
