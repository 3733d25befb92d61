// socketmap_null_server: a socketmap server that does no work, as the
// ceiling of the socketmap benchmark (tests/bench/socketmap_bench.sh). It
// answers every request "NOTFOUND " without looking at the key: one thread,
// one epoll loop, one read and one write per closed-loop request, no
// allocation per request. The rate the load generator reaches against it
// is what the kernel's sockets and the load generator itself allow on this
// machine; a real server can only match it (within the machine's drift).
//
//   socketmap_null_server --listen=127.0.0.1:PORT | --listen=unix:PATH
//   (loopback addresses only)
//
// Runs until SIGTERM/SIGINT. Netstrings are checked (digits, ':', ','): a
// malformed one, or a request over 10 000 bytes, closes its connection.
// Exit: 0 stopped by a signal; 1 cannot listen; 2 usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/bench/local_address.h"

namespace {

constexpr std::string_view kReply = "9:NOTFOUND ,";
constexpr size_t kMaxRequest = 10000;
volatile std::sig_atomic_t g_stop = 0;

// A listening socket on `spec` (local addresses only), or -1.
int Listen(std::string_view spec) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!mxpolicy::bench::ParseLocalAddress(spec, &ss, &len)) {
    errno = EINVAL;
    return -1;
  }
  if (ss.ss_family == AF_UNIX) unlink(reinterpret_cast<sockaddr_un*>(&ss)->sun_path);
  const int family = ss.ss_family;
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Counts the complete requests at the front of `in` and drops them; false
// when the stream is malformed.
bool TakeRequests(std::string& in, size_t* count) {
  size_t pos = 0;
  *count = 0;
  while (pos < in.size()) {
    size_t length = 0, i = pos;
    for (; i < in.size() && in[i] >= '0' && in[i] <= '9'; ++i) {
      length = length * 10 + static_cast<size_t>(in[i] - '0');
      if (length > kMaxRequest) return false;
    }
    if (i == in.size()) break;  // length not complete yet
    if (i == pos || in[i] != ':') return false;
    if (in.size() < i + 1 + length + 1) break;  // payload not complete yet
    if (in[i + 1 + length] != ',') return false;
    pos = i + 1 + length + 1;
    ++*count;
  }
  in.erase(0, pos);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string_view(argv[1]).substr(0, 9) != "--listen=") {
    std::fputs("usage: socketmap_null_server --listen=127.0.0.1:PORT|unix:PATH\n",
               stderr);
    return 2;
  }
  const int listen_fd = Listen(std::string_view(argv[1]).substr(9));
  if (listen_fd < 0) {
    std::fprintf(stderr, "socketmap_null_server: cannot listen on %s: %s\n",
                 argv[1] + 9, std::strerror(errno));
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
  // Partial requests, by connection fd (closed-loop clients leave none).
  std::vector<std::string> pending;
  std::string replies;
  char buf[16384];
  epoll_event events[256];
  while (!g_stop) {
    const int n = epoll_wait(epoll_fd, events, 256, 1000);
    for (int k = 0; k < n; ++k) {
      const int fd = events[k].data.fd;
      if (fd == listen_fd) {
        int c;
        while ((c = accept4(listen_fd, nullptr, nullptr,
                            SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          const int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          ev.events = EPOLLIN;
          ev.data.fd = c;
          epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c, &ev);
          if (static_cast<size_t>(c) >= pending.size()) pending.resize(c + 1);
          pending[c].clear();
        }
        continue;
      }
      const ssize_t got = read(fd, buf, sizeof(buf));
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      std::string& in = pending[fd];
      in.append(buf, got > 0 ? static_cast<size_t>(got) : 0);
      size_t count = 0;
      if (got <= 0 || !TakeRequests(in, &count)) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        continue;
      }
      replies.clear();
      for (size_t i = 0; i < count; ++i) replies += kReply;
      // Closed-loop clients owe one small reply at a time: the socket
      // buffer always takes it, so a short write only means a client that
      // pipelines without reading, which this ceiling does not serve.
      if (!replies.empty() &&
          write(fd, replies.data(), replies.size()) !=
              static_cast<ssize_t>(replies.size())) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
      }
    }
  }
  return 0;
}
