// A minimal program using the mxpolicy client library: resolves each domain
// given on the command line and prints what the sending MTA must do.
//   mxpolicy_client_example [--target=127.0.0.1:8460] DOMAIN...
// Build: link the `mxpolicy_client` CMake target; include <mxpolicy/client.h>.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "mxpolicy/client.h"

int main(int argc, char** argv) {
  mxpolicy::ClientOptions options;
  int first = 1;
  if (argc > 1) {
    absl::string_view arg = argv[1];
    if (absl::ConsumePrefix(&arg, "--target=")) {
      options.target = std::string(arg);
      first = 2;
    }
  }
  if (first >= argc) {
    std::fprintf(stderr, "usage: %s [--target=HOST:PORT] DOMAIN...\n", argv[0]);
    return 2;
  }
  absl::StatusOr<std::unique_ptr<mxpolicy::Client>> client =
      mxpolicy::Client::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 2;
  }
  int rc = 0;
  for (int i = first; i < argc; ++i) {
    absl::StatusOr<mxpolicy::Policy> p =
        (*client)->Resolve(argv[i], absl::Seconds(10));
    if (!p.ok()) {
      std::printf("%s: error: %s\n", argv[i], p.status().ToString().c_str());
      rc = 1;
      continue;
    }
    std::printf("%s: %s (ttl %llds%s) — %s\n", p->response.domain().c_str(),
                mxpolicy::v1::Decision_Name(p->response.decision()).c_str(),
                static_cast<long long>(p->response.ttl().seconds()),
                p->stale ? ", STALE: service unreachable" : "",
                p->response.reason().c_str());
  }
  return rc;
}
