// PolicyService: the gRPC face of PolicyResolver (mxpolicy.v1.PolicyResolver)
// on the callback API. A reaction only starts the asynchronous resolution and
// returns; the resolution's completion calls Finish() (gRPC 1.51 runs every
// callback of the process on ~2 threads, so nothing here may block).
#ifndef MXPOLICY_RPC_POLICY_SERVICE_H_
#define MXPOLICY_RPC_POLICY_SERVICE_H_

#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/resolver/policy_resolver.h"

namespace mxpolicy {

// Contract: Resolve answers INVALID_ARGUMENT for bad domains (with the
// normaliser's message) and OK with a decision otherwise; other resolver
// errors pass through with their code. Thread-safe; `resolver` must outlive
// the server.
class PolicyService final : public v1::PolicyResolver::CallbackService {
 public:
  explicit PolicyService(PolicyResolver& resolver) : resolver_(resolver) {}

  grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* context,
                                    const v1::ResolveRequest* request,
                                    v1::ResolveResponse* response) override;

 private:
  PolicyResolver& resolver_;
};

// absl::Status → grpc::Status, keeping code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace mxpolicy

#endif  // MXPOLICY_RPC_POLICY_SERVICE_H_
