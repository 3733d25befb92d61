#include "server/src/app/daemon.h"

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/src/app/instrumentation.h"
#include "server/src/cache/decision_cache.h"
#include "server/src/common/clock.h"
#include "server/src/dns/unbound_dns_client.h"
#include "server/src/https/curl_https_fetcher.h"
#include "server/src/l2/redis_tier.h"
#include "server/src/log/log.h"
#include "server/src/metrics/metrics.h"
#include "server/src/metrics/metrics_http.h"
#include "server/src/resolver/caching_resolver.h"
#include "server/src/resolver/policy_resolver.h"
#include "server/src/rpc/policy_service.h"
#include "server/src/rpc/request_metrics.h"
#include "server/src/rpc/probe_health.h"
#include "server/src/rpc/server_tls.h"
#include "server/src/sts/policy_store.h"

namespace mxpolicy {
namespace {

// A secret from a file, surrounding whitespace stripped; "" for no file.
// The message names the flag and the file, never the content.
absl::StatusOr<std::string> ReadSecretFile(absl::string_view flag,
                                           const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path));
  }
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

// Drops every ServerBuilder plugin (the reflection plugin registers itself
// process-wide): the health listener serves grpc.health.v1 and nothing else.
class NoPluginsOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(
      std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins)
      override {
    plugins->clear();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(
    const ServerConfig& config, std::vector<grpc::Service*> extra_services) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->metrics_ = std::make_unique<metrics::Registry>();
  d->metrics_->AddCallback("mxpolicy_build_info",
                           "Always 1; the version in a label.",
                           metrics::Type::kGauge, [] {
                             return std::vector<metrics::Sample>{
                                 {{{"version", MXPOLICY_VERSION}}, 1}};
                           });

  UnboundDnsClient::Options dns;
  dns.unbound_config_file = config.unbound_config;
  dns.trust_anchor_file = config.trust_anchor_file;
  dns.timeout = config.dns_timeout;
  dns.qname_minimisation = config.dns_qname_minimisation;
  absl::StatusOr<std::unique_ptr<UnboundDnsClient>> dns_client =
      UnboundDnsClient::Create(dns);
  if (!dns_client.ok()) return dns_client.status();
  d->dns_ = *std::move(dns_client);

  CurlHttpsFetcher::Options https;
  https.ca_file = config.sts_ca_file;
  https.connect_timeout = config.fetch_connect_timeout;
  https.total_timeout = config.fetch_timeout;
  absl::StatusOr<std::unique_ptr<CurlHttpsFetcher>> fetcher =
      CurlHttpsFetcher::Create(https);
  if (!fetcher.ok()) return fetcher.status();
  d->https_ = *std::move(fetcher);

  d->clock_ = std::make_unique<RealClock>();
  if (!config.redis_url.empty()) {
    absl::StatusOr<std::string> password =
        ReadSecretFile("--redis-password-file", config.redis_password_file);
    if (!password.ok()) return password.status();
    absl::StatusOr<std::string> hmac_key =
        ReadSecretFile("--redis-hmac-key-file", config.redis_hmac_key_file);
    if (!hmac_key.ok()) return hmac_key.status();
    if (!config.redis_hmac_key_file.empty() && hmac_key->size() < 16) {
      return absl::InvalidArgumentError(
          "--redis-hmac-key-file: the key must have at least 16 bytes");
    }
    absl::StatusOr<std::unique_ptr<RedisTier>> tier = RedisTier::Create(
        {.url = config.redis_url,
         .password = *std::move(password),
         .hmac_key = *std::move(hmac_key),
         .timeout = config.redis_timeout,
         .clock = d->clock_.get()});
    if (!tier.ok()) return tier.status();
    d->tier_ = *std::move(tier);
    RegisterTierMetrics(*d->metrics_, *d->tier_);
  }
  d->store_ = std::make_unique<sts::PolicyStore>(
      *d->clock_,
      sts::PolicyStore::Options{.max_entries = config.policy_entries});
  PolicyResolver::Options resolver;
  resolver.sts_https_port = config.sts_https_port;
  resolver.sts_discovery_failure_tempfail =
      config.sts_discovery_failure_tempfail;
  d->dns_instrumented_ =
      std::make_unique<InstrumentedDnsClient>(*d->dns_, *d->metrics_);
  d->https_instrumented_ =
      std::make_unique<InstrumentedHttpsFetcher>(*d->https_, *d->metrics_);
  d->resolver_ = std::make_unique<PolicyResolver>(
      *d->dns_instrumented_, *d->https_instrumented_, *d->store_, resolver,
      d->tier_.get());
  d->cache_ = std::make_unique<DecisionCache>(
      *d->clock_, DecisionCache::Options{.shards = config.cache_shards,
                                         .max_entries = config.cache_entries});
  CachingResolver::Options caching;
  caching.max_ttl = config.max_ttl;
  caching.tempfail_ttl = config.tempfail_ttl;
  caching.max_cold_resolutions = config.max_cold_resolutions;
  d->caching_ = std::make_unique<CachingResolver>(
      *d->resolver_, *d->cache_, *d->store_, caching, d->tier_.get());
  RegisterComponentMetrics(*d->metrics_, *d->cache_, *d->store_, *d->caching_,
                           d->resolver_->fetcher());
  d->request_metrics_ = std::make_unique<RequestMetrics>(*d->metrics_);
  d->service_ =
      std::make_unique<PolicyService>(*d->caching_, d->request_metrics_.get());

  // Issue 7: TLS / mTLS on the main listener, files validated first.
  ServerTls::Options tls_options;
  tls_options.cert_file = config.tls_cert;
  tls_options.key_file = config.tls_key;
  tls_options.client_ca_file = config.tls_client_ca;
  absl::StatusOr<std::unique_ptr<ServerTls>> tls =
      ServerTls::Create(tls_options);
  if (!tls.ok()) return tls.status();
  d->tls_ = *std::move(tls);
  d->metrics_->AddCallback(
      "mxpolicy_tls_reloads_total",
      "Reloads of the gRPC listener's TLS files (SIGHUP or a change seen), "
      "by result; a refused reload keeps the previous credentials.",
      metrics::Type::kCounter, [t = d->tls_.get()] {
        return std::vector<metrics::Sample>{
            {{{"result", "ok"}}, static_cast<double>(t->reloads_ok())},
            {{{"result", "error"}}, static_cast<double>(t->reloads_failed())}};
      });
  d->service_->SetAdminPolicy({.mtls = d->tls_->mtls(),
                               .identities = config.admin_identities});

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // A stale server must not silently share the port (STYLE.md).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Long-lived client channels would otherwise never see new replicas.
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_AGE_MS,
      static_cast<int>(std::min<int64_t>(
          absl::ToInt64Milliseconds(config.max_connection_age), INT32_MAX)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30000);
  builder.AddListeningPort(config.listen, d->tls_->credentials(), &d->port_);
  builder.RegisterService(d->service_.get());
  for (grpc::Service* service : extra_services) builder.RegisterService(service);
  d->server_ = builder.BuildAndStart();
  if (d->server_ == nullptr || d->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", config.listen, " (address in use or invalid)"));
  }
  d->maintenance_ = std::thread([daemon = d.get()] {
    // RFC 8461 §10.2: refresh cached policies about daily, before expiry.
    while (!daemon->stop_maintenance_.WaitForNotificationWithTimeout(
        absl::Minutes(1))) {
      daemon->resolver_->RefreshDuePolicies(/*limit=*/200);
      daemon->LogTierFailures();
    }
  });
  if (!config.health_listen.empty()) {
    d->probe_health_ = std::make_unique<ProbeHealthService>();
    grpc::ServerBuilder health;
    health.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health.SetOption(std::make_unique<NoPluginsOption>());
    // Our own health service instead of the default one (probe_health.h).
    health.SetOption(
        std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
    health.RegisterService(d->probe_health_.get());
    health.AddListeningPort(config.health_listen,
                            grpc::InsecureServerCredentials(),
                            &d->health_port_);
    d->health_server_ = health.BuildAndStart();
    if (d->health_server_ == nullptr || d->health_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", config.health_listen,
                       " (--health-listen; address in use or invalid)"));
    }
  }
  if (!config.metrics_listen.empty()) {
    const metrics::Registry* registry = d->metrics_.get();
    absl::StatusOr<std::unique_ptr<metrics::MetricsHttpServer>> http =
        metrics::MetricsHttpServer::Start(
            config.metrics_listen, [registry] { return registry->Render(); });
    if (!http.ok()) return http.status();
    d->metrics_http_ = *std::move(http);
  }
  // The DNS context and trust anchor are loaded: ready.
  d->server_->GetHealthCheckService()->SetServingStatus(true);
  if (d->probe_health_ != nullptr) d->probe_health_->SetServing(true);
  return d;
}

void Daemon::LogTierFailures() {
  if (tier_ == nullptr) return;
  const uint64_t failures = TierFailures(tier_->stats());
  if (failures == tier_failures_logged_) return;
  // At most one line a minute, however many operations failed.
  LogLine(LogLevel::kWarning, "redis_unavailable")
      .Add("failed_operations", failures - tier_failures_logged_)
      .Add("last_error", tier_->last_error())
      .Add("note", "answering from L1, DNS and HTTPS; reconnecting by itself");
  tier_failures_logged_ = failures;
}

int Daemon::metrics_port() const {
  return metrics_http_ == nullptr ? 0 : metrics_http_->port();
}

std::string Daemon::RenderMetrics() const { return metrics_->Render(); }

void Daemon::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  stop_maintenance_.Notify();
  if (maintenance_.joinable()) maintenance_.join();
  if (probe_health_ != nullptr) probe_health_->SetServing(false);
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
  }
  // Probes saw NOT_SERVING through the drain; now the health listener goes.
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
}

absl::Status Daemon::ReloadTls() { return tls_->Reload(); }

absl::StatusOr<bool> Daemon::ReloadTlsIfChanged() {
  return tls_->ReloadIfChanged();
}

Daemon::~Daemon() {
  Shutdown(absl::ZeroDuration());
  metrics_http_.reset();  // no scrape runs into what follows
  // Order matters: destroying an adapter completes its pending work, whose
  // callbacks run into the resolver (and its policy fetcher) and the store.
  // DNS goes first (its callbacks may still queue policy fetches), then
  // HTTPS (its callbacks complete those fetches), and only then the
  // resolver and the store they call into.
  server_.reset();
  health_server_.reset();
  probe_health_.reset();
  // After the server that used them: removes the private TLS copies.
  tls_.reset();
  service_.reset();
  // The tier completes its queued lookups as misses, which go on into the
  // resolver and the adapters: before them. Stopped, it answers every later
  // call (from the adapters' completions below) inline and stores nothing;
  // it is destroyed only after everything that holds a pointer to it.
  if (tier_ != nullptr) tier_->Stop();
  dns_.reset();
  https_.reset();
  dns_instrumented_.reset();
  https_instrumented_.reset();
  caching_.reset();
  cache_.reset();
  resolver_.reset();
  store_.reset();
  tier_.reset();
  clock_.reset();
  request_metrics_.reset();
  metrics_.reset();
}

}  // namespace mxpolicy
