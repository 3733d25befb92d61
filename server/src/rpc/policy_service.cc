#include "server/src/rpc/policy_service.h"

#include <string>

namespace mxpolicy {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

grpc::ServerUnaryReactor* PolicyService::Resolve(
    grpc::CallbackServerContext* context, const v1::ResolveRequest* request,
    v1::ResolveResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  resolver_.Resolve(
      request->domain(),
      [reactor, response](absl::StatusOr<v1::ResolveResponse> result) {
        if (!result.ok()) {
          reactor->Finish(ToGrpcStatus(result.status()));
          return;
        }
        *response = *std::move(result);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace mxpolicy
