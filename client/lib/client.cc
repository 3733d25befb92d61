#include "mxpolicy/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "client/lib/local_cache.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/common/clock.h"
#include "server/src/common/domain.h"

namespace mxpolicy {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream data;
  data << in.rdbuf();
  if (!in || data.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " ", path));
  }
  return data.str();
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.3fs", absl::ToDoubleSeconds(d));
}

// Round-robin over every address of the target, and gRPC's own retries of
// UNAVAILABLE with exponential back-off (enabled by default since 1.40).
std::string ServiceConfig(const ClientOptions& o) {
  // gRPC refuses a retry policy of fewer than 2 attempts (and with it the
  // whole service config): no policy then.
  const std::string retry =
      o.max_attempts < 2
          ? ""
          : absl::StrCat(
                R"(,"retryPolicy":{"maxAttempts":)", o.max_attempts,
                R"(,"initialBackoff":")", Seconds(o.initial_backoff),
                R"(","maxBackoff":")", Seconds(o.max_backoff),
                R"(","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]})");
  return absl::StrCat(
      R"({"loadBalancingConfig":[{"round_robin":{}}],)",
      R"("methodConfig":[{"name":[{"service":"mxpolicy.v1.PolicyResolver"}])",
      retry, "}]}");
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

// The failures during which an old answer beats none: the service (or the
// path to it) is down or overloaded. Anything else — INVALID_ARGUMENT,
// PERMISSION_DENIED, ... — is the caller's to see.
bool ServiceUnreachable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kResourceExhausted;
}

class GrpcClient final : public Client {
 public:
  GrpcClient(const ClientOptions& options,
             std::shared_ptr<grpc::Channel> channel)
      : options_(options),
        clock_(options.clock != nullptr ? *options.clock : real_clock_),
        stub_(v1::PolicyResolver::NewStub(channel)),
        cache_(options.cache_entries, options.stale_if_error) {}

  absl::StatusOr<Policy> Resolve(absl::string_view domain,
                                 absl::Duration deadline) override {
    absl::Notification done;
    absl::StatusOr<Policy> result;
    ResolveAsync(domain, deadline, [&](absl::StatusOr<Policy> r) {
      result = std::move(r);
      done.Notify();
    });
    done.WaitForNotification();
    return result;
  }

  void ResolveAsync(absl::string_view domain, absl::Duration deadline,
                    Callback done) override {
    absl::StatusOr<std::string> key = NormalizeDomain(domain);
    if (!key.ok()) {
      std::move(done)(key.status());
      return;
    }
    if (std::optional<Policy> hit = FromCache(*key)) {
      std::move(done)(*std::move(hit));
      return;
    }
    auto* call = new Call;
    call->key = *std::move(key);
    call->done = std::move(done);
    call->request.set_domain(call->key);
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    calls_.fetch_add(1, std::memory_order_relaxed);
    stub_->async()->Resolve(&call->context, &call->request, &call->response,
                            [this, call](grpc::Status status) {
                              std::unique_ptr<Call> owned(call);
                              Complete(*owned, status);
                            });
  }

  std::optional<Policy> Cached(absl::string_view domain) override {
    absl::StatusOr<std::string> key = NormalizeDomain(domain);
    if (!key.ok()) return std::nullopt;
    return FromCache(*key);
  }

  ClientStats stats() const override {
    constexpr auto kRelaxed = std::memory_order_relaxed;
    return ClientStats{.calls = calls_.load(kRelaxed),
                       .local_hits = local_hits_.load(kRelaxed),
                       .stale_answers = stale_answers_.load(kRelaxed),
                       .failures = failures_.load(kRelaxed)};
  }

 private:
  struct Call {
    grpc::ClientContext context;
    v1::ResolveRequest request;
    v1::ResolveResponse response;
    std::string key;
    Callback done;
  };

  std::optional<Policy> FromCache(const std::string& key) {
    const absl::Time now = clock_.Now();
    std::optional<client_internal::LocalCache::Entry> e = cache_.Fresh(key, now);
    if (!e) return std::nullopt;
    local_hits_.fetch_add(1, std::memory_order_relaxed);
    Policy p;
    p.response = std::move(e->response);
    p.response.set_source(v1::SOURCE_CACHE);
    p.response.mutable_ttl()->set_seconds(
        absl::ToInt64Seconds(absl::Ceil(e->expires - now, absl::Seconds(1))));
    p.from_local_cache = true;
    p.fresh_until = e->expires;
    return p;
  }

  void Complete(Call& call, const grpc::Status& status) {
    const absl::Time now = clock_.Now();
    if (status.ok()) {
      cache_.Put(call.key, call.response, now);
      Policy p;
      p.response = std::move(call.response);
      p.fresh_until = now + absl::Seconds(p.response.ttl().seconds());
      std::move(call.done)(std::move(p));
      return;
    }
    failures_.fetch_add(1, std::memory_order_relaxed);
    absl::Status error = FromGrpc(status);
    if (ServiceUnreachable(error.code())) {
      if (std::optional<client_internal::LocalCache::Entry> e =
              cache_.Stale(call.key, now)) {
        stale_answers_.fetch_add(1, std::memory_order_relaxed);
        Policy p;
        p.response = std::move(e->response);
        p.response.set_source(v1::SOURCE_STALE);
        p.response.mutable_ttl()->set_seconds(0);
        p.stale = true;
        p.stale_reason = std::move(error);
        std::move(call.done)(std::move(p));
        return;
      }
    }
    std::move(call.done)(std::move(error));
  }

  const ClientOptions options_;
  RealClock real_clock_;
  const Clock& clock_;
  std::unique_ptr<v1::PolicyResolver::Stub> stub_;
  client_internal::LocalCache cache_;
  std::atomic<uint64_t> calls_{0}, local_hits_{0}, stale_answers_{0},
      failures_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(
    const ClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("client: empty target");
  }
  if (options.max_attempts < 1 || options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "client: max_attempts must be >= 1 and 0 < initial_backoff <= "
        "max_backoff");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "client: mTLS needs both cert_file and key_file");
  }
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(ServiceConfig(options));
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Any TLS option turns TLS on: a server name or a client certificate on a
  // plaintext channel would be silently ignored.
  if (options.use_tls || !options.ca_file.empty() ||
      !options.cert_file.empty() || !options.tls_server_name.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(options.ca_file, "CA file");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options.cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadFile(options.cert_file, "certificate");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(options.key_file, "key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, credentials, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("client: cannot create a channel to ", options.target));
  }
  return std::unique_ptr<Client>(new GrpcClient(options, std::move(channel)));
}

}  // namespace mxpolicy
