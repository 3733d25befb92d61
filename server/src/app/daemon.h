// Daemon: mxpolicyd's wiring — concrete adapters (libunbound, libcurl), the
// resolver, and the gRPC server with the PolicyResolver, grpc.health.v1 and
// reflection services. main() and the end-to-end tests both build it.
#ifndef MXPOLICY_APP_DAEMON_H_
#define MXPOLICY_APP_DAEMON_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"

#include "absl/status/statusor.h"
#include "server/src/app/config.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace mxpolicy {

class Clock;
class UnboundDnsClient;
class CurlHttpsFetcher;
class PolicyResolver;
class PolicyService;
class DecisionCache;
class CachingResolver;
class ServerTls;
class ProbeHealthService;
class RequestMetrics;
class InstrumentedDnsClient;
class InstrumentedHttpsFetcher;
class RedisTier;
namespace sts {
class PolicyStore;
}  // namespace sts
namespace metrics {
class Registry;
class MetricsHttpServer;
}  // namespace metrics

// Contract: Create() loads the DNS context and trust anchor, then starts the
// gRPC server; health reports SERVING only once everything is loaded, and
// NOT_SERVING from the start of Shutdown(). Shutdown() lets in-flight calls
// finish for up to `grace`, then cancels the rest; it is called once, from
// one thread (destruction calls it if needed).
class Daemon {
 public:
  // INVALID_ARGUMENT for bad files or listen address, UNAVAILABLE when the
  // address cannot be bound. `extra_services` are registered on the same
  // server next to PolicyResolver (benchmarks add a baseline service there,
  // so both run in one process and one server); they must outlive the
  // Daemon. mxpolicyd itself passes none.
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(
      const ServerConfig& config,
      std::vector<grpc::Service*> extra_services = {});
  ~Daemon();

  // The bound gRPC port (useful with --listen=host:0).
  int port() const { return port_; }
  // The bound port of the metrics endpoint (0: --metrics-listen empty).
  int metrics_port() const;
  // The Prometheus exposition text served at /metrics.
  std::string RenderMetrics() const;
  // The bound port of the plaintext health listener (0: none).
  int health_port() const { return health_port_; }

  // Re-reads --tls-cert/--tls-key/--tls-client-ca (SIGHUP): validated first,
  // then served to new connections within a second; on error (the file named
  // in the message) the old credentials stay. OK and no effect without TLS.
  absl::Status ReloadTls();
  // ReloadTls() only when the files' bytes changed since the last attempt;
  // true when a reload succeeded (the periodic check of main()).
  absl::StatusOr<bool> ReloadTlsIfChanged();
  // The listener's credentials, for the reload counters (never null).
  const ServerTls& tls() const { return *tls_; }
  void Shutdown(absl::Duration grace);

 private:
  Daemon() = default;
  // A warning line when L2 operations failed since the last call.
  void LogTierFailures();

  // Destroyed explicitly in ~Daemon, in the order that lets the adapters'
  // pending callbacks complete into live objects. The registry owns every
  // instrument and goes last.
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<RequestMetrics> request_metrics_;
  std::unique_ptr<metrics::MetricsHttpServer> metrics_http_;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<sts::PolicyStore> store_;
  std::unique_ptr<UnboundDnsClient> dns_;
  std::unique_ptr<CurlHttpsFetcher> https_;
  std::unique_ptr<InstrumentedDnsClient> dns_instrumented_;
  std::unique_ptr<InstrumentedHttpsFetcher> https_instrumented_;
  // The shared L2 tier (--redis); null without it.
  std::unique_ptr<RedisTier> tier_;
  uint64_t tier_failures_logged_ = 0;  // maintenance thread only
  std::unique_ptr<PolicyResolver> resolver_;
  std::unique_ptr<DecisionCache> cache_;
  std::unique_ptr<CachingResolver> caching_;
  std::unique_ptr<PolicyService> service_;
  std::unique_ptr<ServerTls> tls_;
  std::unique_ptr<grpc::Server> server_;
  // Plaintext grpc.health.v1 only (--health-listen), mirroring server_'s
  // status for probes that cannot speak TLS.
  std::unique_ptr<ProbeHealthService> probe_health_;
  std::unique_ptr<grpc::Server> health_server_;
  int health_port_ = 0;
  // Periodic maintenance (MTA-STS daily refresh): one thread for the
  // process, never one per request.
  std::thread maintenance_;
  absl::Notification stop_maintenance_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_APP_DAEMON_H_
