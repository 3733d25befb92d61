#include "server/src/rpc/probe_health.h"

#include <atomic>
#include <string>

namespace mxpolicy {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

bool KnownService(const std::string& name) {
  return name.empty() || name == "mxpolicy.v1.PolicyResolver";
}

// Writes one status, then waits for the end of the call. A failed write
// (OnWriteDone(false)) and a cancellation (OnCancel) both end the call and
// can both happen for the same call, on different threads; gRPC allows one
// Finish() per reactor, so whichever comes first finishes and the other is
// a no-op.
class WatchReactor final
    : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  explicit WatchReactor(bool serving) {
    response_.set_status(serving ? HealthCheckResponse::SERVING
                                 : HealthCheckResponse::NOT_SERVING);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
  }
  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }

 private:
  void FinishOnce(const grpc::Status& status) {
    if (!finished_.exchange(true)) Finish(status);
  }

  HealthCheckResponse response_;
  std::atomic<bool> finished_{false};
};

}  // namespace

grpc::ServerUnaryReactor* ProbeHealthService::Check(
    grpc::CallbackServerContext* context, const HealthCheckRequest* request,
    HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!KnownService(request->service())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "unknown service " + request->service()));
    return reactor;
  }
  response->set_status(serving_.load() ? HealthCheckResponse::SERVING
                                        : HealthCheckResponse::NOT_SERVING);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* ProbeHealthService::Watch(
    grpc::CallbackServerContext*, const HealthCheckRequest* request) {
  if (!KnownService(request->service())) {
    struct Refused final : grpc::ServerWriteReactor<HealthCheckResponse> {
      explicit Refused(const std::string& name) {
        Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                            "unknown service " + name));
      }
      void OnDone() override { delete this; }
    };
    return new Refused(request->service());
  }
  return new WatchReactor(serving_.load());
}

}  // namespace mxpolicy
