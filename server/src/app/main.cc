// mxpolicyd: flags → config → Daemon; waits for SIGTERM/SIGINT, drains
// in-flight calls, exits 0. SIGHUP reloads the TLS files (issue 7), as does
// a change of their bytes seen by the check every --tls-check-interval.
#include <pthread.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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

  // Block the shutdown and reload signals in every thread; main waits for
  // them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<mxpolicy::Daemon>> daemon =
      mxpolicy::Daemon::Create(*config);
  if (!daemon.ok()) {
    std::fprintf(stderr, "mxpolicyd: %s\n", daemon.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "mxpolicyd: serving on port %d (listen %s)\n",
               (*daemon)->port(), config->listen.c_str());

  const bool tls = !config->tls_cert.empty();
  const timespec check = absl::ToTimespec(config->tls_check_interval);
  int sig = 0;
  while (true) {
    // Without TLS there is nothing to re-check: wait for a signal only.
    sig = tls ? sigtimedwait(&signals, nullptr, &check)
              : sigwaitinfo(&signals, nullptr);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGHUP) {
      // A refused reload keeps the old credentials: keep serving.
      if (!tls) {
        std::fprintf(stderr, "mxpolicyd: SIGHUP: no TLS configured, nothing "
                             "to reload\n");
      } else if (absl::Status s = (*daemon)->ReloadTls(); s.ok()) {
        std::fprintf(stderr, "mxpolicyd: SIGHUP: TLS files reloaded\n");
      } else {
        std::fprintf(stderr,
                     "mxpolicyd: SIGHUP: TLS reload refused, still serving "
                     "the previous credentials: %s\n",
                     std::string(s.message()).c_str());
      }
    } else if (sig < 0 && errno == EAGAIN) {
      absl::StatusOr<bool> changed = (*daemon)->ReloadTlsIfChanged();
      if (!changed.ok()) {
        std::fprintf(stderr,
                     "mxpolicyd: TLS file check: reload refused, still "
                     "serving the previous credentials: %s\n",
                     std::string(changed.status().message()).c_str());
      } else if (*changed) {
        std::fprintf(stderr, "mxpolicyd: TLS files changed: reloaded\n");
      }
    }
  }
  std::fprintf(stderr, "mxpolicyd: %s, draining in-flight calls\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*daemon)->Shutdown(config->shutdown_grace);
  daemon->reset();
  std::fprintf(stderr, "mxpolicyd: stopped\n");
  return 0;
}
