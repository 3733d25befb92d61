// The findings of `mxpolicy check`: a validator's reading of one
// ResolveResponse for the owner of the domain — what is right, what is
// risky and what is broken in its DNSSEC, DANE, MTA-STS and TLSRPT set-up.
// Pure: no I/O, so every rule can be tested on hand-made responses.
#ifndef MXPOLICY_CLIENT_CLI_CHECK_REPORT_H_
#define MXPOLICY_CLIENT_CLI_CHECK_REPORT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "mxpolicy/v1/mxpolicy.pb.h"

namespace mxpolicy::cli {

enum class Level {
  kOk,
  kInfo,  // a note; never counts for or against the domain
  kWarn,  // works, but weaker than it could be or likely to break
  kFail,  // senders that follow the RFCs will defer or refuse mail
};

// "OK", "INFO", "WARN", "FAIL".
const char* LevelName(Level level);

struct Finding {
  Level level = Level::kInfo;
  std::string section;  // "DNSSEC and DANE", "MTA-STS", "TLSRPT", "result"
  std::string check;    // short name, e.g. "TLSA"
  std::string subject;  // the MX host or pattern concerned; may be empty
  std::string detail;   // why, and what to do
};

// The findings for `r` (a successful Resolve answer), in reading order.
std::vector<Finding> CheckResponse(const v1::ResolveResponse& r);

// The MTA-STS note inside the service's reason text: for "no MTA-STS policy
// (no MTA-STS TXT record); ..." it is "no MTA-STS TXT record"; for
// "MTA-STS enforce (id x; fetching the policy): ..." "fetching the policy".
// Empty when the reason carries none (e.g. DANE decided).
std::string StsNoteFromReason(absl::string_view reason);

}  // namespace mxpolicy::cli

#endif  // MXPOLICY_CLIENT_CLI_CHECK_REPORT_H_
