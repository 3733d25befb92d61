// ParseLocalAddress: the one address syntax of the socketmap benchmark's
// programs (socketmap_load's --target, socketmap_null_server's --listen):
// HOST:PORT with HOST 127.x.y.z or [::1], or unix:PATH (Postfix's
// socketmap:unix:PATH:NAME). Anything else is refused: the benchmark never
// sends load off the machine nor listens beyond it. Header-only, so that
// both programs stay free of project libraries.
#ifndef MXPOLICY_TESTS_BENCH_LOCAL_ADDRESS_H_
#define MXPOLICY_TESTS_BENCH_LOCAL_ADDRESS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

namespace mxpolicy::bench {

// Fills `address` and `length`; false when `spec` is not a local address.
inline bool ParseLocalAddress(std::string_view spec, sockaddr_storage* address,
                              socklen_t* length) {
  *address = sockaddr_storage{};
  if (spec.substr(0, 5) == "unix:") {
    auto* un = reinterpret_cast<sockaddr_un*>(address);
    const std::string_view path = spec.substr(5);
    if (path.empty() || path.size() >= sizeof(un->sun_path)) return false;
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    *length = sizeof(sockaddr_un);
    return true;
  }
  const size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos) return false;
  int port = 0;
  const char* end = spec.data() + spec.size();
  auto [last, ec] = std::from_chars(spec.data() + colon + 1, end, port);
  if (ec != std::errc() || last != end || port < 1 || port > 65535) return false;
  const std::string host(spec.substr(0, colon));
  if (host == "[::1]") {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(address);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    a6->sin6_addr = in6addr_loopback;
    *length = sizeof(sockaddr_in6);
    return true;
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(address);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return false;
  if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) return false;
  a4->sin_family = AF_INET;
  a4->sin_port = htons(static_cast<uint16_t>(port));
  *length = sizeof(sockaddr_in);
  return true;
}

}  // namespace mxpolicy::bench

#endif  // MXPOLICY_TESTS_BENCH_LOCAL_ADDRESS_H_
