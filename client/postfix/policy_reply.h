// The socketmap side of the Postfix adapter, free of I/O: requests in,
// reply payloads out (SPEC I1–I6; DESIGN.md's decision table).
//
// Every byte of a reply that comes from remote data — the domain, MTA-STS
// `mx` patterns, policy lines — is checked here again against the strict
// grammar (LDH names, `*.` wildcards, printable policy lines without braces)
// even though mxpolicyd validated it: the adapter is its own trust boundary,
// and an attribute smuggled into a reply would change Postfix's TLS policy.
#ifndef MXPOLICY_CLIENT_POSTFIX_POLICY_REPLY_H_
#define MXPOLICY_CLIENT_POSTFIX_POLICY_REPLY_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mxpolicy/v1/mxpolicy.pb.h"

namespace mxpolicy::postfix {

struct PostfixVersion {
  int major = 3, minor = 7, patch = 0;
  bool AtLeast(int ma, int mi, int pa = 0) const;
};

// "3.7", "3.10.5", "3.4.0". INVALID_ARGUMENT otherwise (or below 2.x).
absl::StatusOr<PostfixVersion> ParsePostfixVersion(absl::string_view text);

struct ReplyOptions {
  PostfixVersion version;
  // `testing` policies answered like `enforce` (postfix-mta-sts-resolver's
  // strict_testing); off by default, as RFC 8461 §5 asks.
  bool testing_as_enforce = false;
  // socketmap_max_reply_size (SPEC I6): the reply payload stays below it.
  size_t max_reply_bytes = 100000;
};

struct Request {
  std::string map;  // any name is accepted
  std::string key;
};

// "<mapname> <key>" (SPEC I5). INVALID_ARGUMENT without a space or with an
// empty name or key.
absl::StatusOr<Request> ParseRequest(absl::string_view payload);

// The domain to ask the service about for a lookup key (SPEC I1): the key
// lowercased, without a trailing dot, UTF-8 turned into A-labels. nullopt
// for keys that never have a policy of ours: parent-domain lookups
// (".example.com"), next-hops with brackets or ports ("[relay]:587",
// "[192.0.2.1]", "relay:25"), IP literals and anything that is not a domain.
std::optional<std::string> DomainForKey(absl::string_view key);

// The reply payload for the service's answer: "OK dane-only", "OK dane",
// "OK secure match=… servername=hostname" (+ TLSRPT attributes on ≥ 3.10,
// mx_host_pattern on ≥ 3.10.5), "NOTFOUND " or "TEMP <reason>".
std::string PolicyReply(const v1::ResolveResponse& response,
                        const ReplyOptions& options);

// "TEMP <reason>" with the reason reduced to printable ASCII, ≤ 200 bytes.
std::string TempReply(absl::string_view reason);

inline constexpr absl::string_view kNotFound = "NOTFOUND ";

}  // namespace mxpolicy::postfix

#endif  // MXPOLICY_CLIENT_POSTFIX_POLICY_REPLY_H_
