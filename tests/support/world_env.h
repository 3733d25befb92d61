// Access to the running hermetic test world (tests/world/world.sh) from
// integration tests: the CTest fixture starts it and exports
// MXPOLICY_WORLD_DIR; this reads <dir>/world.env.
#ifndef MXPOLICY_TESTS_SUPPORT_WORLD_ENV_H_
#define MXPOLICY_TESTS_SUPPORT_WORLD_ENV_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "server/src/app/config.h"

namespace mxpolicy::testing {

struct WorldEnv {
  std::string dir;
  uint16_t dns_port = 0;
  uint16_t https_port = 0;
  std::string unbound_conf;
  std::string ca_file;
  std::string trust_anchor;
};

// Reads the world's env file; FAILED_PRECONDITION when the world is not up.
absl::StatusOr<WorldEnv> LoadWorldEnv();

// An mxpolicyd config pointed at the world (its unbound config, trust
// anchor, CA and HTTPS port), listening on a free loopback port. Tests set
// their own timeouts on top.
ServerConfig WorldServerConfig(const WorldEnv& env);

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_WORLD_ENV_H_
