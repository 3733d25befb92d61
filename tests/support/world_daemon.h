// An in-process mxpolicyd (the real Daemon) on the world, with a gRPC stub
// to it: the fixture of the integration tests that resolve world domains.
#ifndef MXPOLICY_TESTS_SUPPORT_WORLD_DAEMON_H_
#define MXPOLICY_TESTS_SUPPORT_WORLD_DAEMON_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"
#include "server/src/app/daemon.h"

namespace mxpolicy::testing {

class WorldDaemon {
 public:
  // Starts a Daemon with `config` (usually WorldServerConfig plus the
  // test's timeouts).
  static absl::StatusOr<std::unique_ptr<WorldDaemon>> Start(
      const ServerConfig& config);

  std::string target() const;
  Daemon& daemon() { return *daemon_; }

  // Resolve over gRPC within `deadline`.
  grpc::Status Resolve(const std::string& domain, v1::ResolveResponse* out,
                       absl::Duration deadline = absl::Seconds(15));

 private:
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<v1::PolicyResolver::Stub> stub_;
};

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_WORLD_DAEMON_H_
