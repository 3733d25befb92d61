#include "tests/support/world_env.h"

#include <cstdlib>
#include <fstream>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mxpolicy::testing {

absl::StatusOr<WorldEnv> LoadWorldEnv() {
  const char* dir = std::getenv("MXPOLICY_WORLD_DIR");
  if (dir == nullptr || *dir == '\0') {
    return absl::FailedPreconditionError(
        "MXPOLICY_WORLD_DIR is not set (run the test through ctest, which "
        "starts the world fixture)");
  }
  const std::string path = absl::StrCat(dir, "/world.env");
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", path, ": is the test world running?"));
  }
  std::map<std::string, std::string, std::less<>> kv;
  for (std::string line; std::getline(in, line);) {
    std::pair<std::string, std::string> p =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (!p.first.empty()) kv[p.first] = p.second;
  }
  WorldEnv env;
  env.dir = dir;
  uint32_t port = 0;
  if (!absl::SimpleAtoi(kv["DNS_PORT"], &port)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": no DNS_PORT"));
  }
  env.dns_port = static_cast<uint16_t>(port);
  if (!absl::SimpleAtoi(kv["HTTPS_PORT"], &port)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": no HTTPS_PORT"));
  }
  env.https_port = static_cast<uint16_t>(port);
  env.unbound_conf = kv["UNBOUND_CONF"];
  env.ca_file = kv["CA_FILE"];
  env.trust_anchor = kv["TRUST_ANCHOR"];
  return env;
}

ServerConfig WorldServerConfig(const WorldEnv& env) {
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  // Tests run side by side: never the fixed default metrics port.
  config.metrics_listen = "127.0.0.1:0";
  config.unbound_config = env.unbound_conf;
  config.trust_anchor_file = env.trust_anchor;
  config.sts_ca_file = env.ca_file;
  config.sts_https_port = env.https_port;
  return config;
}

}  // namespace mxpolicy::testing
