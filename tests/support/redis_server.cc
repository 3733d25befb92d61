#include "tests/support/redis_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace mxpolicy::testing {

RedisServer::RedisServer(std::string password)
    : password_(std::move(password)), port_(FreePort()) {
  char tmpl[] = "/tmp/mxpolicy-redis-XXXXXX";
  if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
}

RedisServer::~RedisServer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

bool RedisServer::Start() {
  if (pid_ > 0) return true;
  std::vector<std::string> args = {
      "/usr/bin/redis-server", "--port",  absl::StrCat(port_),
      "--bind", "127.0.0.1", "--protected-mode", "no",
      "--save", "", "--appendonly", "no",
      "--dir", dir_.empty() ? "/tmp" : dir_, "--logfile", "",
      "--daemonize", "no"};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  pid_ = Spawn(args, /*quiet=*/true);
  paused_ = false;
  if (pid_ <= 0) return false;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    if (AnswersPing()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  Stop();
  return false;
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);  // also ends a stopped process
  Reap(pid_);
  pid_ = -1;
  paused_ = false;
}

bool RedisServer::Restart() {
  Stop();
  return Start();
}

void RedisServer::Pause() {
  if (pid_ > 0 && !paused_) {
    kill(pid_, SIGSTOP);
    paused_ = true;
  }
}

void RedisServer::Resume() {
  if (pid_ > 0 && paused_) {
    kill(pid_, SIGCONT);
    paused_ = false;
  }
}

std::string RedisServer::url(int db) const {
  return absl::StrCat("redis://",
                      password_.empty() ? "" : absl::StrCat(":", password_, "@"),
                      "127.0.0.1:", port_,
                      db < 0 ? "" : absl::StrCat("/", db));
}

// An inline PING; with --requirepass an unauthenticated PING gets -NOAUTH,
// which shows the server is up just as well.
bool RedisServer::AnswersPing() const {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval tv{0, 200 * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  bool up = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    char buf[64];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    const std::string reply(buf, n > 0 ? static_cast<size_t>(n) : 0);
    up = absl::StartsWith(reply, "+PONG") || absl::StartsWith(reply, "-NOAUTH");
  }
  close(fd);
  return up;
}

}  // namespace mxpolicy::testing
