// ProbeHealthService: grpc.health.v1.Health for mxpolicyd's plaintext probe
// listener (--health-listen; issue 7). Kubernetes gRPC probes cannot speak
// TLS, so when the main listener is TLS-only a second, plaintext server
// carries this service and nothing else. Its status mirrors the main
// server's: the Daemon sets it SERVING after start and NOT_SERVING at the
// start of Shutdown(). It is a service of its own because gRPC 1.51's
// default health service cannot be the only service of a callback server
// (BuildAndStart finds no polled completion queue and fails).
#ifndef MXPOLICY_RPC_PROBE_HEALTH_H_
#define MXPOLICY_RPC_PROBE_HEALTH_H_

#include <atomic>

#include "grpc/health/v1/health.grpc.pb.h"

namespace mxpolicy {

// Contract: Check answers the status for service "" and
// "mxpolicy.v1.PolicyResolver", NOT_FOUND for any other name (the health
// protocol's rule). Watch sends the current status once and stays open
// until the caller or the server ends it. Thread-safe; never blocks.
class ProbeHealthService final
    : public grpc::health::v1::Health::CallbackService {
 public:
  void SetServing(bool serving) { serving_.store(serving); }

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;

  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  std::atomic<bool> serving_{false};
};

}  // namespace mxpolicy

#endif  // MXPOLICY_RPC_PROBE_HEALTH_H_
