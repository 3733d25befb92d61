#include "server/src/rpc/policy_service.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"

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

namespace {

// A Resolve call. The resolution may outlive the call (it keeps going to
// fill the caches), so the reactor and the resolution share a small state:
// whichever comes first — the resolution's answer or the call's
// cancellation (client deadline, server shutdown grace) — finishes the call,
// exactly once; the other one finds it finished.
class ResolveCall {
 public:
  ResolveCall(grpc::ByteBuffer* response, RequestMetrics* metrics,
              std::string domain, absl::Time start)
      : response_(response),
        metrics_(metrics),
        domain_(std::move(domain)),
        start_(start) {}

  // `result` is a serialized ResolveResponse.
  void Answer(absl::StatusOr<std::string> result) {
    grpc::ServerUnaryReactor* reactor = Claim();
    if (reactor == nullptr) return;
    Record(result.status(), result.ok() ? *result : std::string());
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    grpc::Slice slice(*std::move(result));
    *response_ = grpc::ByteBuffer(&slice, 1);
    reactor->Finish(grpc::Status::OK);
  }

  void Cancelled() {
    grpc::ServerUnaryReactor* reactor = Claim();
    if (reactor == nullptr) return;
    const absl::Status cancelled =
        absl::CancelledError("call cancelled before the answer");
    Record(cancelled, "");
    reactor->Finish(ToGrpcStatus(cancelled));
  }

  void Attach(grpc::ServerUnaryReactor* reactor) {
    absl::MutexLock lock(&mu_);
    reactor_ = reactor;
  }
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
  }

 private:
  // The reactor, for the one caller that may finish the call; nullptr for
  // everyone else. The reactor stays alive until that Finish (OnDone comes
  // only after it), and Finish runs outside the lock because gRPC may call
  // OnDone → Detach() from inside it.
  grpc::ServerUnaryReactor* Claim() {
    absl::MutexLock lock(&mu_);
    if (reactor_ == nullptr || finished_) return nullptr;
    finished_ = true;
    return reactor_;
  }

  absl::Mutex mu_;
  grpc::ServerUnaryReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  void Record(const absl::Status& status, absl::string_view wire) {
    if (metrics_ != nullptr) {
      metrics_->Record(domain_, status, wire, absl::Now() - start_);
    }
  }

  grpc::ByteBuffer* const response_;  // valid until the call is finished
  RequestMetrics* const metrics_;
  const std::string domain_;
  const absl::Time start_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class ResolveReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit ResolveReactor(std::shared_ptr<ResolveCall> call)
      : call_(std::move(call)) {
    call_->Attach(this);
  }
  void OnCancel() override { call_->Cancelled(); }
  void OnDone() override {
    call_->Detach();
    delete this;
  }

 private:
  std::shared_ptr<ResolveCall> call_;
};

}  // namespace

grpc::ServerUnaryReactor* PolicyService::Resolve(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> domain = DecodeResolveRequestDomain(*request);
  std::optional<absl::StatusOr<std::string>> now;
  if (domain.ok()) {
    now = resolver_.TryNow(*domain);
  } else {
    now = domain.status();
  }
  if (now.has_value()) {
    // Hits and bad requests finish inline on gRPC's own reactor: the hot
    // path pays for nothing a canned answer would not.
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (metrics_ != nullptr) {
      metrics_->Record(domain.ok() ? *domain : "", now->status(),
                       now->ok() ? **now : "", absl::Now() - start);
    }
    if (now->ok()) {
      grpc::Slice slice(**std::move(now));
      *response = grpc::ByteBuffer(&slice, 1);
    }
    reactor->Finish(ToGrpcStatus(now->status()));
    return reactor;
  }
  auto call =
      std::make_shared<ResolveCall>(response, metrics_, *domain, start);
  auto* reactor = new ResolveReactor(call);
  resolver_.Resolve(*domain, [call](absl::StatusOr<std::string> result) {
    call->Answer(std::move(result));
  });
  return reactor;
}

bool IsLoopbackPeer(absl::string_view peer) {
  return absl::StartsWith(peer, "ipv4:127.") ||
         absl::StartsWith(peer, "ipv6:[::1]") ||
         absl::StartsWith(peer, "ipv6:%5B::1%5D") ||
         absl::StartsWith(peer, "unix:");
}

grpc::ServerUnaryReactor* PolicyService::Invalidate(
    grpc::CallbackServerContext* context, const v1::InvalidateRequest* request,
    v1::InvalidateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Issue 7: admin RPCs need an admin identity under mTLS, loopback else.
  const AdminDecision access = DecideAdminAccess(
      admin_, PeerIdentityFromAuthContext(*context->auth_context(),
                                          IsLoopbackPeer(context->peer())));
  if (!access.allowed) {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "Invalidate: " + access.reason));
    return reactor;
  }
  absl::StatusOr<CachingResolver::Invalidated> dropped =
      resolver_.Invalidate(request->domain());
  if (!dropped.ok()) {
    reactor->Finish(ToGrpcStatus(dropped.status()));
    return reactor;
  }
  response->set_domain(dropped->domain);
  response->set_decision_dropped(dropped->decision);
  response->set_policy_dropped(dropped->policy);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace mxpolicy
