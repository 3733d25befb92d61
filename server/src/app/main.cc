// mxpolicyd: flags → config → Daemon; waits for SIGTERM/SIGINT, drains
// in-flight calls, exits 0. SIGHUP reloads the TLS files (issue 7), as does
// a change of their bytes seen by the check every --tls-check-interval.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/src/app/config.h"
#include "server/src/app/daemon.h"
#include "server/src/log/log.h"

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

  using mxpolicy::LogLevel;
  using mxpolicy::LogLine;
  mxpolicy::ConfigureLogging({.level = config->log_level,
                              .json = config->log_json});
  if (geteuid() == 0) {
    LogLine(LogLevel::kWarning, "running_as_root")
        .Add("note", "mxpolicyd needs no privileges: run it as an "
                     "unprivileged user (the container image uses 65532)");
  }
  absl::StatusOr<std::unique_ptr<mxpolicy::Daemon>> daemon =
      mxpolicy::Daemon::Create(*config);
  if (!daemon.ok()) {
    LogLine(LogLevel::kError, "start_failed")
        .Add("error", daemon.status().ToString());
    return 1;
  }
  const bool tls = !config->tls_cert.empty();
  LogLine(LogLevel::kInfo, "serving")
      .Add("port", (*daemon)->port())
      .Add("listen", config->listen)
      .Add("metrics_port", (*daemon)->metrics_port())
      .Add("tls", tls)
      .Add("mtls", !config->tls_client_ca.empty())
      .Add("redis", !config->redis_url.empty());

  const timespec check = absl::ToTimespec(config->tls_check_interval);
  int sig = 0;
  while (true) {
    // Without TLS there is nothing to re-check: wait for a signal only.
    sig = tls ? sigtimedwait(&signals, nullptr, &check)
              : sigwaitinfo(&signals, nullptr);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGHUP && !tls) {
      LogLine(LogLevel::kInfo, "sighup_ignored").Add("note", "no TLS configured");
      continue;
    }
    absl::StatusOr<bool> reloaded = false;
    if (sig == SIGHUP) {
      absl::Status s = (*daemon)->ReloadTls();
      reloaded = s.ok() ? absl::StatusOr<bool>(true) : s;
    } else if (sig < 0 && errno == EAGAIN) {
      reloaded = (*daemon)->ReloadTlsIfChanged();
    }
    const char* trigger = sig == SIGHUP ? "sighup" : "file_change";
    if (!reloaded.ok()) {
      // A refused reload keeps the old credentials: keep serving.
      LogLine(LogLevel::kWarning, "tls_reload_refused")
          .Add("trigger", trigger)
          .Add("error", reloaded.status().message())
          .Add("note", "still serving the previous credentials");
    } else if (*reloaded) {
      LogLine(LogLevel::kInfo, "tls_reloaded").Add("trigger", trigger);
    }
  }
  LogLine(LogLevel::kInfo, "shutdown")
      .Add("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT")
      .Add("grace_s", absl::ToDoubleSeconds(config->shutdown_grace));
  (*daemon)->Shutdown(config->shutdown_grace);
  daemon->reset();
  LogLine(LogLevel::kInfo, "stopped");
  return 0;
}
