// Integration tests of CurlHttpsFetcher against the hermetic test world
// (tests/world/world.sh): one nginx on 127.0.0.1:HTTPS_PORT with a vhost per
// case and certificates from the world's test CA. No mocks: real libcurl,
// real OpenSSL, real TLS.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/src/https/curl_https_fetcher.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

constexpr char kGoodHost[] = "mta-sts.insecure.test";
constexpr char kPolicyPath[] = "/.well-known/mta-sts.txt";
constexpr char kPolicyBody[] =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.insecure.test\r\n"
    "max_age: 86400\r\n";
constexpr absl::Duration kWaitLimit = absl::Seconds(30);

// The outcome of one Fetch(), shared with the callback so a late callback
// never writes to a dead stack frame.
struct Outcome {
  absl::Notification done;
  FetchResult result;
  std::thread::id thread;
};

std::shared_ptr<Outcome> StartFetch(HttpsFetcher& fetcher,
                                    HttpsRequest request) {
  auto outcome = std::make_shared<Outcome>();
  fetcher.Fetch(std::move(request), [outcome](FetchResult result) {
    outcome->result = std::move(result);
    outcome->thread = std::this_thread::get_id();
    outcome->done.Notify();
  });
  return outcome;
}

// Runs one Fetch() and waits for its callback.
FetchResult FetchAndWait(HttpsFetcher& fetcher, HttpsRequest request) {
  std::shared_ptr<Outcome> outcome = StartFetch(fetcher, std::move(request));
  if (!outcome->done.WaitForNotificationWithTimeout(kWaitLimit)) {
    ADD_FAILURE() << "no callback within " << kWaitLimit;
    return FetchResult{};
  }
  return outcome->result;
}

std::string Describe(const FetchResult& r) {
  return std::string(FetchErrorName(r.error)) + " (" + r.error_detail +
         ") status=" + std::to_string(r.http_status);
}

// A TCP port on which nothing accepts: bound (so nobody else gets it) but not
// listening, so a connect is refused.
class UnlistenedPort {
 public:
  explicit UnlistenedPort(int family) {
    fd_ = socket(family, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    }
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(family == AF_INET
                      ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                      : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  }
  ~UnlistenedPort() {
    if (fd_ >= 0) close(fd_);
  }
  UnlistenedPort(const UnlistenedPort&) = delete;
  UnlistenedPort& operator=(const UnlistenedPort&) = delete;

  // 0 when the socket could not be bound (e.g. no IPv6 in this container).
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  ~ScopedEnv() {
    for (auto& [name, old] : saved_) {
      if (old.has_value()) {
        setenv(name.c_str(), old->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }
  void Set(const std::string& name, const char* value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(
        name, old == nullptr ? std::nullopt : std::optional<std::string>(old));
    if (value == nullptr) {
      unsetenv(name.c_str());
    } else {
      setenv(name.c_str(), value, 1);
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

class HttpsFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    world_ = *std::move(env);
  }

  CurlHttpsFetcher::Options WorldOptions() const {
    CurlHttpsFetcher::Options options;
    options.ca_file = world_.ca_file;
    return options;
  }

  std::unique_ptr<CurlHttpsFetcher> MakeFetcher(
      const CurlHttpsFetcher::Options& options) {
    absl::StatusOr<std::unique_ptr<CurlHttpsFetcher>> fetcher =
        CurlHttpsFetcher::Create(options);
    EXPECT_TRUE(fetcher.ok()) << fetcher.status();
    return fetcher.ok() ? *std::move(fetcher) : nullptr;
  }
  std::unique_ptr<CurlHttpsFetcher> MakeFetcher() {
    return MakeFetcher(WorldOptions());
  }

  HttpsRequest WorldRequest(std::string host,
                            std::string path = kPolicyPath) const {
    HttpsRequest request;
    request.host = std::move(host);
    request.path = std::move(path);
    request.connect_address = "127.0.0.1";
    request.port = world_.https_port;
    return request;
  }

  testing::WorldEnv world_;
};

// SPEC B1, B4, B7: GET of the well-known URL over TLS, exact body and the
// media type without parameters.
TEST_F(HttpsFetcherTest, FetchesPolicy) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost));
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.media_type, "text/plain");
  EXPECT_EQ(r.charset, "");
  EXPECT_EQ(r.body, kPolicyBody);
  EXPECT_EQ(r.error_detail, "");
}

// SPEC B3: a certificate whose SAN names another host is a name mismatch.
TEST_F(HttpsFetcherTest, WrongNameIsNameMismatch) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r =
      FetchAndWait(*fetcher, WorldRequest("mta-sts.wrongname.test"));
  EXPECT_EQ(r.error, FetchError::kTlsNameMismatch) << Describe(r);
  EXPECT_NE(r.error_detail, "");
}

// SPEC B3: an expired certificate (valid Jan 2020 only) from a trusted CA.
TEST_F(HttpsFetcherTest, ExpiredIsExpired) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest("mta-sts.expired.test"));
  EXPECT_EQ(r.error, FetchError::kTlsExpired) << Describe(r);
  EXPECT_NE(r.error_detail, "");
}

// SPEC B3: a self-signed certificate does not chain to a trusted root.
TEST_F(HttpsFetcherTest, SelfSignedIsUntrusted) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r =
      FetchAndWait(*fetcher, WorldRequest("mta-sts.selfsigned.test"));
  EXPECT_EQ(r.error, FetchError::kTlsUntrusted) << Describe(r);
  EXPECT_NE(r.error_detail, "");
}

// SPEC B3: Options::ca_file empty means libcurl's compiled-in store; the
// SSL_CERT_FILE / CURL_CA_BUNDLE variables (set globally here) are ignored,
// so the world's CA is not trusted even when they point at it.
TEST_F(HttpsFetcherTest, EmptyCaFileIgnoresCaEnvironment) {
  ScopedEnv env;
  env.Set("SSL_CERT_FILE", world_.ca_file.c_str());
  env.Set("CURL_CA_BUNDLE", world_.ca_file.c_str());
  auto fetcher = MakeFetcher(CurlHttpsFetcher::Options{});
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost));
  EXPECT_EQ(r.error, FetchError::kTlsUntrusted) << Describe(r);
}

// SPEC B5: a 301 is returned as such; the Location is not followed.
TEST_F(HttpsFetcherTest, RedirectIsNotFollowed) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost, "/redirect"));
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.http_status, 301);
  EXPECT_NE(r.body, kPolicyBody);
  EXPECT_EQ(r.body.find("version: STSv1"), std::string::npos);
}

// SPEC B5: other statuses arrive as responses; the caller rejects them.
TEST_F(HttpsFetcherTest, NotFoundIsAResponse) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost, "/notfound"));
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.http_status, 404);
}

// SPEC B7: the media type is reported so the caller can reject non-text/plain.
TEST_F(HttpsFetcherTest, ReportsHtmlMediaType) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost, "/html"));
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.media_type, "text/html");
  EXPECT_EQ(r.body, "<html></html>");
}

// SPEC B8: a 70 000-byte body is over the 64 KiB cap.
TEST_F(HttpsFetcherTest, BigBodyIsTooLarge) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost, "/big"));
  EXPECT_EQ(r.error, FetchError::kTooLarge) << Describe(r);
  EXPECT_EQ(r.body, "");
}

// SPEC B8: the cap is inclusive: a body of exactly the cap is accepted, one
// byte less of cap rejects it.
TEST_F(HttpsFetcherTest, CapIsInclusive) {
  const size_t size = sizeof(kPolicyBody) - 1;
  CurlHttpsFetcher::Options options = WorldOptions();
  options.max_body_bytes = size;
  auto at_cap = MakeFetcher(options);
  ASSERT_NE(at_cap, nullptr);
  FetchResult r = FetchAndWait(*at_cap, WorldRequest(kGoodHost));
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.body, kPolicyBody);

  options.max_body_bytes = size - 1;
  auto below = MakeFetcher(options);
  ASSERT_NE(below, nullptr);
  r = FetchAndWait(*below, WorldRequest(kGoodHost));
  EXPECT_EQ(r.error, FetchError::kTooLarge) << Describe(r);
}

// SPEC B8: the total timeout ends a transfer that trickles at 1 byte/s, and
// the callback arrives promptly.
TEST_F(HttpsFetcherTest, StallTimesOut) {
  CurlHttpsFetcher::Options options = WorldOptions();
  options.total_timeout = absl::Seconds(1);
  auto fetcher = MakeFetcher(options);
  ASSERT_NE(fetcher, nullptr);
  const absl::Time start = absl::Now();
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost, "/stall"));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(r.error, FetchError::kTimeout) << Describe(r);
  EXPECT_GE(elapsed, absl::Milliseconds(900));
  EXPECT_LT(elapsed, absl::Seconds(3));
}

// SPEC B11: a refused TCP connection is a connect failure.
TEST_F(HttpsFetcherTest, NothingListeningIsConnect) {
  UnlistenedPort closed(AF_INET);
  ASSERT_NE(closed.port(), 0);
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  HttpsRequest request = WorldRequest(kGoodHost);
  request.port = closed.port();
  FetchResult r = FetchAndWait(*fetcher, request);
  EXPECT_EQ(r.error, FetchError::kConnect) << Describe(r);
}

// SPEC B11: an IPv6 connect address is pinned too (bracketed in CONNECT_TO).
TEST_F(HttpsFetcherTest, Ipv6AddressIsPinned) {
  UnlistenedPort closed(AF_INET6);
  if (closed.port() == 0) GTEST_SKIP() << "no IPv6 loopback here";
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  HttpsRequest request = WorldRequest(kGoodHost);
  request.connect_address = "::1";
  request.port = closed.port();
  FetchResult r = FetchAndWait(*fetcher, request);
  EXPECT_EQ(r.error, FetchError::kConnect) << Describe(r);
}

// SPEC B2: the connection is pinned; proxies from the environment are never
// used (a dead proxy here would otherwise fail the fetch).
TEST_F(HttpsFetcherTest, EnvironmentProxyIsIgnored) {
  UnlistenedPort dead_proxy(AF_INET);
  ASSERT_NE(dead_proxy.port(), 0);
  const std::string proxy =
      "http://127.0.0.1:" + std::to_string(dead_proxy.port());
  ScopedEnv env;
  for (const char* name :
       {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    env.Set(name, proxy.c_str());
  }
  env.Set("no_proxy", nullptr);
  env.Set("NO_PROXY", nullptr);
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(*fetcher, WorldRequest(kGoodHost));
  ASSERT_TRUE(r.ok()) << Describe(r);
  EXPECT_EQ(r.body, kPolicyBody);
}

// Create() contract: an unreadable CA file is INVALID_ARGUMENT, not a fetcher
// that would fail every fetch later.
TEST_F(HttpsFetcherTest, MissingCaFileIsInvalidArgument) {
  CurlHttpsFetcher::Options options;
  options.ca_file = world_.dir + "/no-such-ca.pem";
  absl::StatusOr<std::unique_ptr<CurlHttpsFetcher>> fetcher =
      CurlHttpsFetcher::Create(options);
  EXPECT_EQ(fetcher.status().code(), absl::StatusCode::kInvalidArgument);
}

// Fetch() contract: a request that cannot be expressed safely (an injected
// ':' in the host, a non-literal address) fails with kInternal, no I/O.
TEST_F(HttpsFetcherTest, UnsafeRequestIsRejected) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  FetchResult r = FetchAndWait(
      *fetcher, WorldRequest("mta-sts.insecure.test:443:10.0.0.1"));
  EXPECT_EQ(r.error, FetchError::kInternal) << Describe(r);
  HttpsRequest by_name = WorldRequest(kGoodHost);
  by_name.connect_address = "localhost";
  r = FetchAndWait(*fetcher, by_name);
  EXPECT_EQ(r.error, FetchError::kInternal) << Describe(r);
}

// HttpsFetcher contract: concurrent requests all complete, each exactly once,
// and every callback runs on the fetcher's one thread (no thread per request).
TEST_F(HttpsFetcherTest, ConcurrentFetchesCompleteOnOneThread) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  const std::vector<std::pair<std::string, FetchError>> cases = {
      {kGoodHost, FetchError::kOk},
      {"mta-sts.wrongname.test", FetchError::kTlsNameMismatch},
      {"mta-sts.expired.test", FetchError::kTlsExpired},
      {"mta-sts.selfsigned.test", FetchError::kTlsUntrusted},
  };
  std::vector<std::pair<std::shared_ptr<Outcome>, FetchError>> outcomes;
  for (int round = 0; round < 4; ++round) {
    for (const auto& [host, expected] : cases) {
      outcomes.emplace_back(StartFetch(*fetcher, WorldRequest(host)), expected);
    }
  }
  std::set<std::thread::id> threads;
  for (auto& [outcome, expected] : outcomes) {
    ASSERT_TRUE(outcome->done.WaitForNotificationWithTimeout(kWaitLimit));
    EXPECT_EQ(outcome->result.error, expected) << Describe(outcome->result);
    threads.insert(outcome->thread);
  }
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

// HttpsFetcher contract: a callback may start the next fetch.
TEST_F(HttpsFetcherTest, CallbackMayFetchAgain) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  auto second = std::make_shared<Outcome>();
  HttpsFetcher* f = fetcher.get();
  HttpsRequest next = WorldRequest(kGoodHost);
  absl::Notification first_done;
  f->Fetch(WorldRequest(kGoodHost, "/html"),
           [f, next, second, &first_done](FetchResult) mutable {
             f->Fetch(std::move(next), [second](FetchResult r) {
               second->result = std::move(r);
               second->done.Notify();
             });
             first_done.Notify();
           });
  ASSERT_TRUE(first_done.WaitForNotificationWithTimeout(kWaitLimit));
  ASSERT_TRUE(second->done.WaitForNotificationWithTimeout(kWaitLimit));
  EXPECT_TRUE(second->result.ok()) << Describe(second->result);
  EXPECT_EQ(second->result.body, kPolicyBody);
}

// CurlHttpsFetcher contract: destruction completes in-flight and queued
// requests with kInternal before it returns.
TEST_F(HttpsFetcherTest, DestructionCompletesPendingRequests) {
  auto fetcher = MakeFetcher();
  ASSERT_NE(fetcher, nullptr);
  std::shared_ptr<Outcome> in_flight =
      StartFetch(*fetcher, WorldRequest(kGoodHost, "/stall"));
  absl::SleepFor(absl::Milliseconds(300));  // connected, body trickling
  ASSERT_FALSE(in_flight->done.HasBeenNotified());
  std::shared_ptr<Outcome> queued =
      StartFetch(*fetcher, WorldRequest(kGoodHost, "/stall"));
  const absl::Time start = absl::Now();
  fetcher.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  for (const auto& outcome : {in_flight, queued}) {
    ASSERT_TRUE(outcome->done.HasBeenNotified());
    EXPECT_EQ(outcome->result.error, FetchError::kInternal);
    EXPECT_EQ(outcome->result.error_detail, "fetcher shutting down");
  }
}

// FetchErrorName gives the stable names used in logs and TLSRPT details.
TEST(FetchErrorNameTest, NamesAreStable) {
  EXPECT_EQ(FetchErrorName(FetchError::kOk), "ok");
  EXPECT_EQ(FetchErrorName(FetchError::kTlsNameMismatch), "tls-name-mismatch");
  EXPECT_EQ(FetchErrorName(FetchError::kTlsExpired), "tls-expired");
  EXPECT_EQ(FetchErrorName(FetchError::kTlsUntrusted), "tls-untrusted");
  EXPECT_EQ(FetchErrorName(FetchError::kTooLarge), "too-large");
}

}  // namespace
}  // namespace mxpolicy
