#include "tests/support/silent_dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace mxpolicy::testing {

SilentDns::SilentDns(const std::string& dir) {
  fd_ = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return;
  }
  const std::string path =
      absl::StrCat(dir, "/silent-", ntohs(addr.sin_port), ".conf");
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) return;
  fprintf(f,
          "server:\n  do-not-query-localhost: no\n  local-zone: \"test.\" "
          "nodefault\n  module-config: \"iterator\"\nstub-zone:\n  name: "
          "\"test.\"\n  stub-addr: 127.0.0.1@%d\n",
          ntohs(addr.sin_port));
  fclose(f);
  conf_ = path;
}

SilentDns::~SilentDns() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace mxpolicy::testing
