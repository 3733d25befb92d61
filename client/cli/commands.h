// The mxpolicy CLI's commands. Each takes the arguments after its name and
// returns the process exit code.
#ifndef MXPOLICY_CLIENT_CLI_COMMANDS_H_
#define MXPOLICY_CLIENT_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace mxpolicy::cli {

extern const char kResolveUsage[];
extern const char kWarmUsage[];
extern const char kCheckUsage[];

// mxpolicy resolve [--server=ADDR] [--json] [--deadline=D] DOMAIN...
// 0 every domain answered; 1 some RPC failed (INVALID_ARGUMENT too); 2 usage.
int RunResolve(const std::vector<std::string>& args);

// mxpolicy warm [--server=ADDR] [--concurrency=N] [--deadline=D] FILE|-
// 0 no RPC failed; 1 some failed (bad domains too); 2 usage, unreadable file.
int RunWarm(const std::vector<std::string>& args);

// mxpolicy check [--server=ADDR] [--deadline=D] [--json] DOMAIN
// 0 no FAIL; 1 some FAIL; 2 usage or RPC error.
int RunCheck(const std::vector<std::string>& args);

}  // namespace mxpolicy::cli

#endif  // MXPOLICY_CLIENT_CLI_COMMANDS_H_
