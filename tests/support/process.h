// Helpers for integration tests that run the shipped binaries as processes
// (mxpolicyd, the mxpolicy CLI, mxpolicy-postfix) on loopback.
#ifndef MXPOLICY_TESTS_SUPPORT_PROCESS_H_
#define MXPOLICY_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "tests/support/world_env.h"

namespace mxpolicy::testing {

// A loopback TCP port that was free a moment ago.
int FreePort();

// Starts args[0] with args (no shell); `quiet` sends its stdout to
// /dev/null. The caller reaps it.
pid_t Spawn(const std::vector<std::string>& args, bool quiet = false);

// Waits for `pid`: its exit code, 128 + signal, or -1.
int Reap(pid_t pid);

// The mxpolicyd flags that point it at the world (as WorldServerConfig).
std::vector<std::string> WorldDaemonFlags(const WorldEnv& env);

// Polls the gRPC health service at `target` until SERVING (up to 20 s).
bool WaitServing(const std::string& target);

// Runs `binary` with `args` (each single-quoted) through the shell, stdin
// from /dev/null and stderr dropped; returns its stdout and sets
// *exit_code.
std::string RunBinary(const std::string& binary,
                      const std::vector<std::string>& args, int* exit_code);

// Sends `request` to 127.0.0.1:`port` and returns the reply: its first line
// (through "\n") when `first_line_only`, else everything until the peer
// closes. "" when the connection fails; waits at most `timeout` for data.
std::string LoopbackExchange(int port, absl::string_view request,
                             bool first_line_only,
                             absl::Duration timeout = absl::Seconds(5));

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_PROCESS_H_
