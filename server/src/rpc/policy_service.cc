#include "server/src/rpc/policy_service.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace mxpolicy {

using ::google::protobuf::internal::WireFormatLite;

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::StatusOr<std::string> DecodeResolveRequestDomain(
    const grpc::ByteBuffer& request) {
  static_assert(v1::ResolveRequest::kDomainFieldNumber == 1);
  constexpr uint32_t kDomainTag =
      WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  std::vector<grpc::Slice> slices;
  if (!request.Dump(&slices).ok()) {
    return absl::InvalidArgumentError("unreadable request");
  }
  std::string wire;
  for (const grpc::Slice& s : slices) {
    wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(wire.data()),
      static_cast<int>(wire.size()));
  std::string domain;
  while (uint32_t tag = in.ReadTag()) {
    const bool ok = tag == kDomainTag ? WireFormatLite::ReadBytes(&in, &domain)
                                      : WireFormatLite::SkipField(&in, tag);
    if (!ok) {
      return absl::InvalidArgumentError("request is not a ResolveRequest");
    }
  }
  if (!in.ConsumedEntireMessage()) {
    return absl::InvalidArgumentError("request is not a ResolveRequest");
  }
  return domain;
}

grpc::ServerUnaryReactor* PolicyService::Resolve(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> domain = DecodeResolveRequestDomain(*request);
  if (!domain.ok()) {
    reactor->Finish(ToGrpcStatus(domain.status()));
    return reactor;
  }
  resolver_.Resolve(*domain, [reactor, response](
                                 absl::StatusOr<v1::ResolveResponse> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    bool own_buffer = false;
    grpc::Status status =
        grpc::GenericSerialize<grpc::ProtoBufferWriter, v1::ResolveResponse>(
            *result, response, &own_buffer);
    reactor->Finish(status);
  });
  return reactor;
}

}  // namespace mxpolicy
