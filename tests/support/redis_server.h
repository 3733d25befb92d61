// RedisServer: a private redis-server (Debian's /usr/bin/redis-server) on
// 127.0.0.1 and a free port, for integration tests of the L2 tier. No
// persistence, its own temporary directory (under $TMPDIR, else /tmp); it
// can be killed, restarted on the same port, and paused (SIGSTOP) to play a
// hung Redis.
#ifndef MXPOLICY_TESTS_SUPPORT_REDIS_SERVER_H_
#define MXPOLICY_TESTS_SUPPORT_REDIS_SERVER_H_

#include <sys/types.h>

#include <string>

namespace mxpolicy::testing {

// Not thread-safe; one test thread drives it.
class RedisServer {
 public:
  // `password` non-empty: started with --requirepass.
  explicit RedisServer(std::string password = "");
  ~RedisServer();  // kills the server, removes its directory
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts it and waits (up to 10 s) until it answers PING. false if not.
  bool Start();
  // SIGKILL (no goodbye to clients) and reap.
  void Stop();
  // Stop() then Start() on the same port.
  bool Restart();
  // SIGSTOP / SIGCONT: connections are accepted by the kernel but nothing
  // answers, as with a hung server.
  void Pause();
  void Resume();

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  // redis://[:password@]127.0.0.1:<port>[/db] (db < 0: no path).
  std::string url(int db = -1) const;

 private:
  bool AnswersPing() const;

  const std::string password_;
  const int port_;
  std::string dir_;
  pid_t pid_ = -1;
  bool paused_ = false;
};

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_REDIS_SERVER_H_
