// Shared pieces of the mxpolicy CLI's commands: the common flags, the client
// they configure, enum names for humans and safe printing of remote data.
#ifndef MXPOLICY_CLIENT_CLI_COMMON_H_
#define MXPOLICY_CLIENT_CLI_COMMON_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "mxpolicy/client.h"
#include "mxpolicy/v1/mxpolicy.pb.h"

namespace mxpolicy::cli {

// The flags every command takes.
struct CommonFlags {
  std::string server = "127.0.0.1:8460";
  absl::Duration deadline = absl::Seconds(30);
  // TLS to mxpolicyd (issue 7): any of them set turns TLS on. `tls_ca`
  // verifies the server (empty: the system roots); `tls_cert` + `tls_key`
  // present a client certificate (mTLS).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
};

// The help text of the TLS flags, which every command takes; --help prints
// it after the command's usage.
extern const char kTlsFlagsUsage[];

enum class FlagParse {
  kNotMine,  // not --server= / --deadline=: the command's own argument
  kOk,
  kError,  // *error says what is wrong
};

// Parses `arg` if it is --server=ADDR, --deadline=D or one of the TLS flags.
FlagParse ParseCommonFlag(absl::string_view arg, CommonFlags& flags,
                          std::string* error);

// Parses a command's arguments: the common flags, --help (prints `usage`
// to stdout), the command's own flags through `own` (kNotMine for anything
// it does not know: an unknown "--…" is an error) and positional arguments,
// appended to `positional`. Errors go to stderr as "<command>: <error>".
// Returns the exit code when the command must end now (0 after --help, 2
// on a usage error), else nullopt.
std::optional<int> ParseCommandArgs(
    absl::string_view command, const char* usage,
    const std::vector<std::string>& args, CommonFlags& flags,
    absl::FunctionRef<FlagParse(absl::string_view arg, std::string* error)> own,
    std::vector<std::string>& positional);

// A client for the CLI: no local cache and no stale answers, because an
// operator asks for what the service says now, not what this process saw.
absl::StatusOr<std::unique_ptr<Client>> MakeClient(const CommonFlags& flags);

// MakeClient(), or nullptr after printing "<command>: <error>" to stderr.
std::unique_ptr<Client> MakeClientOrReport(absl::string_view command,
                                           const CommonFlags& flags);

// Prints "<command>: <domain>: <message> (code N)" to stderr.
void ReportResolveError(absl::string_view command, absl::string_view domain,
                        const absl::Status& status);

// Enum values as lowercase names without their type prefix:
// DNSSEC_STATE_SECURE → "secure", DECISION_DANE_REQUIRED → "dane_required"
// (as `resolve` has always printed them).
std::string DecisionName(v1::Decision d);
std::string DnssecName(v1::DnssecState s);
std::string TlsaStateName(v1::TlsaState s);
std::string RequirementName(v1::TlsRequirement r);
std::string SourceName(v1::Source s);
std::string StsModeName(v1::StsMode m);

// `s` made safe for a terminal: control characters (and DEL) become '?', so
// hostile DNS or policy data cannot move the cursor or recolour the screen.
// Longer than `max_len` bytes (0: no limit): cut, "..." appended.
std::string Printable(absl::string_view s, size_t max_len = 0);

// A JSON string literal (quotes included) for `s`.
std::string JsonQuote(absl::string_view s);

// The proto3 JSON mapping of `m` on one line, default values included.
std::string ToJson(const google::protobuf::Message& m);

// "1h", "5m30s", "300ms": a duration for humans.
std::string HumanDuration(absl::Duration d);

}  // namespace mxpolicy::cli

#endif  // MXPOLICY_CLIENT_CLI_COMMON_H_
