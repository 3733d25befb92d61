// PolicyService: the gRPC face of PolicyResolver (mxpolicy.v1.PolicyResolver)
// on the callback API. A reaction only starts the asynchronous resolution and
// returns; the resolution's completion calls Finish() (gRPC 1.51 runs every
// callback of the process on ~2 threads, so nothing here may block).
//
// Resolve is registered as a raw method: the request is decoded here rather
// than by gRPC so that a domain with invalid UTF-8 — which protobuf refuses to
// parse into a `string` field — still gets INVALID_ARGUMENT with a clear
// message instead of an opaque framework error.
#ifndef MXPOLICY_RPC_POLICY_SERVICE_H_
#define MXPOLICY_RPC_POLICY_SERVICE_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/resolver/caching_resolver.h"
#include "server/src/rpc/admin_access.h"
#include "server/src/rpc/request_metrics.h"

namespace mxpolicy {

// Contract: Resolve answers INVALID_ARGUMENT for bad domains (with the
// normaliser's message) and for requests that are not a ResolveRequest on
// the wire, RESOURCE_EXHAUSTED when too many cold resolutions run, and OK
// with a decision otherwise; a call cancelled first (deadline, shutdown) is
// finished at once while its resolution goes on filling the cache.
// Invalidate is an admin RPC, allowed by the AdminPolicy (admin_access.h):
// with mTLS only to client certificates carrying an admin identity, without
// it only to loopback peers; PERMISSION_DENIED otherwise, naming the identity
// seen. Thread-safe; `resolver` must outlive the
// server.
class PolicyService final
    : public v1::PolicyResolver::WithCallbackMethod_Invalidate<
          v1::PolicyResolver::WithRawCallbackMethod_Resolve<
              v1::PolicyResolver::Service>> {
 public:
  // `metrics` (may be null) counts and logs every Resolve call; it must
  // outlive the server.
  explicit PolicyService(CachingResolver& resolver,
                         RequestMetrics* metrics = nullptr)
      : resolver_(resolver), metrics_(metrics) {}

  grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;

  grpc::ServerUnaryReactor* Invalidate(
      grpc::CallbackServerContext* context,
      const v1::InvalidateRequest* request,
      v1::InvalidateResponse* response) override;

  // Who may call Invalidate; by default loopback peers (no mTLS). Call
  // before the service is registered with a server.
  void SetAdminPolicy(AdminPolicy policy) { admin_ = std::move(policy); }

 private:
  CachingResolver& resolver_;
  AdminPolicy admin_;
  RequestMetrics* const metrics_;
};

// True for peers such as "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000" and
// "unix:...".
bool IsLoopbackPeer(absl::string_view peer);

// Reads ResolveRequest.domain from its wire form as raw bytes (no UTF-8
// check; the normaliser does that), skipping unknown fields.
// INVALID_ARGUMENT when the bytes are not a well-formed message.
absl::StatusOr<std::string> DecodeResolveRequestDomain(
    const grpc::ByteBuffer& request);

// absl::Status → grpc::Status, keeping code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace mxpolicy

#endif  // MXPOLICY_RPC_POLICY_SERVICE_H_
