// mxpolicy — the operator CLI.
//   mxpolicy resolve [--server=ADDR] [--json] [--deadline=D] DOMAIN...
//   mxpolicy warm [--server=ADDR] [--concurrency=N] [--deadline=D] FILE
//   mxpolicy check [--server=ADDR] [--deadline=D] [--json] DOMAIN
// Every command also takes --tls-ca, --tls-cert, --tls-key and
// --tls-server-name (TLS / mTLS to mxpolicyd; client/cli/common.h).
// Each command's exit codes are in client/cli/commands.h and its usage text.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"

namespace {

constexpr char kUsage[] =
    "Usage: mxpolicy COMMAND [FLAGS] ARGS\n"
    "Commands:\n"
    "  resolve   print mxpolicyd's answer for each DOMAIN (table or JSON)\n"
    "  warm      resolve every domain of a FILE concurrently, print a summary\n"
    "  check     validate one DOMAIN's DANE / MTA-STS / TLSRPT set-up\n"
    "`mxpolicy COMMAND --help` shows a command's flags.\n";

void PrintUsage(FILE* out) {
  std::fprintf(out, "%s\n%s\n%s\n%s\n%s", kUsage,
               mxpolicy::cli::kResolveUsage, mxpolicy::cli::kWarmUsage,
               mxpolicy::cli::kCheckUsage, mxpolicy::cli::kTlsFlagsUsage);
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil runs the deadlock detector on every lock (as mxpolicyd).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc < 2) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  const absl::string_view command = argv[1];
  if (command == "--help" || command == "help" || command == "-h") {
    PrintUsage(stdout);
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "resolve") return mxpolicy::cli::RunResolve(args);
  if (command == "warm") return mxpolicy::cli::RunWarm(args);
  if (command == "check") return mxpolicy::cli::RunCheck(args);
  std::fprintf(stderr, "mxpolicy: unknown command \"%s\"\n\n%s",
               mxpolicy::cli::Printable(command, 64).c_str(), kUsage);
  return 2;
}
