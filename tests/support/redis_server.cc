#include "tests/support/redis_server.h"

#include <signal.h>
#include <stdlib.h>  // mkdtemp

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace mxpolicy::testing {
namespace {

// $TMPDIR, like the rest of the tests (a read-only / is common in CI).
std::string TempBase() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp ? tmp : "/tmp";
}

}  // namespace

RedisServer::RedisServer(std::string password)
    : password_(std::move(password)), port_(FreePort()) {
  std::string pattern = absl::StrCat(TempBase(), "/mxpolicy-redis-XXXXXX");
  if (mkdtemp(pattern.data()) != nullptr) dir_ = std::move(pattern);
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
      "--dir", dir_.empty() ? TempBase() : dir_, "--logfile", "",
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
  const std::string userinfo =
      password_.empty() ? "" : absl::StrCat(":", password_, "@");
  return absl::StrCat("redis://", userinfo, "127.0.0.1:", port_,
                      db < 0 ? "" : absl::StrCat("/", db));
}

// An inline PING; with --requirepass an unauthenticated PING gets -NOAUTH,
// which shows the server is up just as well.
bool RedisServer::AnswersPing() const {
  const std::string reply = LoopbackExchange(
      port_, "PING\r\n", /*first_line_only=*/true, absl::Milliseconds(200));
  return absl::StartsWith(reply, "+PONG") ||
         absl::StartsWith(reply, "-NOAUTH");
}

}  // namespace mxpolicy::testing
