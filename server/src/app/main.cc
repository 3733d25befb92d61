// mxpolicyd: flags → config → Daemon; waits for SIGTERM/SIGINT, drains
// in-flight calls, exits 0.
#include <pthread.h>

#include <csignal>
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "server/src/app/config.h"
#include "server/src/app/daemon.h"

int main(int argc, char** argv) {
  // Debian's Abseil runs the deadlock detector on every lock (STYLE.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  bool help_shown = false;
  absl::StatusOr<mxpolicy::ServerConfig> config =
      mxpolicy::ParseServerFlags(argc, argv, &help_shown);
  if (!config.ok()) {
    std::fprintf(stderr, "mxpolicyd: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  if (help_shown) return 0;

  // Block the shutdown signals in every thread; main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<mxpolicy::Daemon>> daemon =
      mxpolicy::Daemon::Create(*config);
  if (!daemon.ok()) {
    std::fprintf(stderr, "mxpolicyd: %s\n", daemon.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "mxpolicyd: serving on port %d (listen %s)\n",
               (*daemon)->port(), config->listen.c_str());

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "mxpolicyd: %s, draining in-flight calls\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*daemon)->Shutdown(config->shutdown_grace);
  daemon->reset();
  std::fprintf(stderr, "mxpolicyd: stopped\n");
  return 0;
}
