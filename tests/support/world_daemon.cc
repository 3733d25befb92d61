#include "tests/support/world_daemon.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mxpolicy::testing {

absl::StatusOr<std::unique_ptr<WorldDaemon>> WorldDaemon::Start(
    const ServerConfig& config) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Create(config);
  if (!daemon.ok()) return daemon.status();
  auto world = std::make_unique<WorldDaemon>();
  world->daemon_ = *std::move(daemon);
  world->stub_ = v1::PolicyResolver::NewStub(grpc::CreateChannel(
      world->target(), grpc::InsecureChannelCredentials()));
  return world;
}

std::string WorldDaemon::target() const {
  return absl::StrCat("127.0.0.1:", daemon_->port());
}

grpc::Status WorldDaemon::Resolve(const std::string& domain,
                                  v1::ResolveResponse* out,
                                  absl::Duration deadline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  v1::ResolveRequest request;
  request.set_domain(domain);
  return stub_->Resolve(&context, request, out);
}

}  // namespace mxpolicy::testing
