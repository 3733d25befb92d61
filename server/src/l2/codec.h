// The L2 value encoding: how StoredPolicy / StoredDecision are laid out in a
// Redis string, and the hostile-input-safe decoder. Pure functions, no I/O,
// so they can be fuzzed on their own.
//
// Layout (version 1), one ASCII header line then the payload bytes:
//
//   MXP1 <kind> <fetched_unix_ms> <expires_unix_ms> <id_len> <data_len>\n
//   <id bytes><data bytes>
//
// kind is "P" (policy: id = TXT id, data = policy body) or "D" (decision: id
// empty, fetched 0, data = serialized ResolveResponse). Numbers are plain
// decimal, 1-15 digits (no sign). The value's length must equal header +
// id_len + data_len exactly. A reader refuses any other version, so a
// future encoding can live beside this one under a new key prefix.
#ifndef MXPOLICY_L2_CODEC_H_
#define MXPOLICY_L2_CODEC_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/src/l2/shared_tier.h"

namespace mxpolicy::l2 {

// Size limits. The policy body cap matches the HTTPS fetch limit for
// policies (RFC 8461 §3.3 lets senders cap it; 64 KiB is plenty).
inline constexpr size_t kMaxPolicyBodyBytes = 64 * 1024;
inline constexpr size_t kMaxDecisionBytes = 256 * 1024;
// RFC 8461 §3.1: id is 1*32(ALPHA / DIGIT); slack for the caller to judge.
inline constexpr size_t kMaxIdBytes = 64;
inline constexpr size_t kMaxHeaderBytes = 96;
// The HMAC-SHA256 tag of an authenticated value.
inline constexpr size_t kMacBytes = 32;

// Redis keys: "mxpolicy:v1:policy:<domain>", "mxpolicy:v1:decision:<domain>".
std::string PolicyKey(absl::string_view domain);
std::string DecisionKey(absl::string_view domain);

// True for 1-253 bytes of [a-z0-9.-] (a normalised domain). Defensive: keys
// must never carry spaces, control bytes or glob characters.
bool IsKeySafeDomain(absl::string_view domain);

// INVALID_ARGUMENT when the id, body or response is over its limit.
absl::StatusOr<std::string> EncodePolicy(const StoredPolicy& policy);
absl::StatusOr<std::string> EncodeDecision(const StoredDecision& decision);

// DATA_LOSS with a short reason for anything but a well-formed version-1
// value of the right kind whose expiry is after `now`. Never crashes on any
// input.
absl::StatusOr<StoredPolicy> DecodePolicy(absl::string_view value,
                                          absl::Time now);
absl::StatusOr<StoredDecision> DecodeDecision(absl::string_view value,
                                              absl::Time now);

// The authenticated form of `value` stored at Redis key `name`: `value`
// followed by its kMacBytes tag under `hmac_key` (see the layout above).
// `hmac_key` should be non-empty (RedisTier requires 16+ bytes); INTERNAL
// only if OpenSSL fails.
absl::StatusOr<std::string> SealValue(absl::string_view hmac_key,
                                      absl::string_view name,
                                      absl::string_view value);

// The codec value inside `sealed`, read from Redis key `name`, once its tag
// verifies under `hmac_key` (constant-time compare). The result points into
// `sealed`. DATA_LOSS "MAC mismatch" for a value too short to hold a tag, a
// wrong tag, a value written for another name or under another key, or
// none at all; the message never carries the key. Never crashes on any
// input.
absl::StatusOr<absl::string_view> OpenValue(absl::string_view hmac_key,
                                            absl::string_view name,
                                            absl::string_view sealed);

}  // namespace mxpolicy::l2

#endif  // MXPOLICY_L2_CODEC_H_
