#include "server/src/l2/codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mxpolicy::l2 {
namespace {

constexpr absl::string_view kMagic = "MXP1";
constexpr size_t kMaxDigits = 15;  // ms up to year ~33 000: no overflow

// The decoded header and payload, before kind-specific checks.
struct Parsed {
  int64_t fetched_ms = 0;
  int64_t expires_ms = 0;
  absl::string_view id;
  absl::string_view data;
};

bool ParseNumber(absl::string_view text, int64_t* out) {
  if (text.empty() || text.size() > kMaxDigits) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, out);
}

std::string Encode(absl::string_view kind, absl::Time fetched_at,
                   absl::Time expires_at, absl::string_view id,
                   absl::string_view data) {
  const int64_t fetched = std::max<int64_t>(0, absl::ToUnixMillis(fetched_at));
  const int64_t expires = std::max<int64_t>(0, absl::ToUnixMillis(expires_at));
  return absl::StrCat(kMagic, " ", kind, " ", fetched, " ", expires, " ",
                      id.size(), " ", data.size(), "\n", id, data);
}

absl::StatusOr<Parsed> Parse(absl::string_view value, absl::string_view kind,
                             size_t max_id, size_t max_data, absl::Time now) {
  const size_t eol = value.substr(0, kMaxHeaderBytes).find('\n');
  if (eol == absl::string_view::npos) {
    return absl::DataLossError("no header line");
  }
  const std::vector<absl::string_view> fields =
      absl::StrSplit(value.substr(0, eol), ' ');
  if (fields.size() != 6 || fields[0] != kMagic) {
    return absl::DataLossError("not a version-1 value");
  }
  if (fields[1] != kind) {
    return absl::DataLossError(absl::StrCat("kind ", fields[1], " where ",
                                            kind, " was expected"));
  }
  Parsed p;
  int64_t id_len = 0;
  int64_t data_len = 0;
  if (!ParseNumber(fields[2], &p.fetched_ms) ||
      !ParseNumber(fields[3], &p.expires_ms) ||
      !ParseNumber(fields[4], &id_len) || !ParseNumber(fields[5], &data_len)) {
    return absl::DataLossError("non-numeric header field");
  }
  if (static_cast<uint64_t>(id_len) > max_id ||
      static_cast<uint64_t>(data_len) > max_data) {
    return absl::DataLossError(
        absl::StrCat("lengths ", id_len, "/", data_len, " over the limit"));
  }
  const absl::string_view payload = value.substr(eol + 1);
  if (payload.size() != static_cast<uint64_t>(id_len + data_len)) {
    return absl::DataLossError(absl::StrCat("payload of ", payload.size(),
                                            " bytes, header says ",
                                            id_len + data_len));
  }
  if (p.fetched_ms > p.expires_ms) {
    return absl::DataLossError("fetched after it expires");
  }
  if (absl::FromUnixMillis(p.expires_ms) <= now) {
    return absl::DataLossError("expired");
  }
  p.id = payload.substr(0, static_cast<size_t>(id_len));
  p.data = payload.substr(static_cast<size_t>(id_len));
  return p;
}

// HMAC-SHA256(hmac_key, len(name) as 8 bytes big-endian || name || value)
// into `tag`. false only if OpenSSL fails.
bool ComputeTag(absl::string_view hmac_key, absl::string_view name,
                absl::string_view value, unsigned char (&tag)[kMacBytes]) {
  if (hmac_key.size() > INT_MAX) return false;
  // One contiguous message for the one-shot HMAC() (HMAC_CTX is deprecated
  // in OpenSSL 3); a copy of at most ~256 KiB per Redis round trip.
  std::string message;
  message.reserve(8 + name.size() + value.size());
  const uint64_t name_len = name.size();
  for (int shift = 56; shift >= 0; shift -= 8) {
    message.push_back(static_cast<char>((name_len >> shift) & 0xff));
  }
  message.append(name.data(), name.size());
  message.append(value.data(), value.size());
  unsigned int tag_len = 0;
  const unsigned char* out =
      HMAC(EVP_sha256(), hmac_key.data(), static_cast<int>(hmac_key.size()),
           reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), tag, &tag_len);
  return out != nullptr && tag_len == kMacBytes;
}

}  // namespace

std::string PolicyKey(absl::string_view domain) {
  return absl::StrCat("mxpolicy:v1:policy:", domain);
}

std::string DecisionKey(absl::string_view domain) {
  return absl::StrCat("mxpolicy:v1:decision:", domain);
}

bool IsKeySafeDomain(absl::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  for (char c : domain) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::string> EncodePolicy(const StoredPolicy& policy) {
  if (policy.id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy id of ", policy.id.size(), " bytes (max ",
                     kMaxIdBytes, ")"));
  }
  if (policy.body.size() > kMaxPolicyBodyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy body of ", policy.body.size(), " bytes (max ",
                     kMaxPolicyBodyBytes, ")"));
  }
  return Encode("P", policy.fetched_at, policy.expires_at, policy.id,
                policy.body);
}

absl::StatusOr<std::string> EncodeDecision(const StoredDecision& decision) {
  if (decision.response.size() > kMaxDecisionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("decision of ", decision.response.size(), " bytes (max ",
                     kMaxDecisionBytes, ")"));
  }
  return Encode("D", absl::UnixEpoch(), decision.expires_at, "",
                decision.response);
}

absl::StatusOr<StoredPolicy> DecodePolicy(absl::string_view value,
                                          absl::Time now) {
  absl::StatusOr<Parsed> p =
      Parse(value, "P", kMaxIdBytes, kMaxPolicyBodyBytes, now);
  if (!p.ok()) return p.status();
  return StoredPolicy{std::string(p->id), std::string(p->data),
                      absl::FromUnixMillis(p->fetched_ms),
                      absl::FromUnixMillis(p->expires_ms)};
}

absl::StatusOr<StoredDecision> DecodeDecision(absl::string_view value,
                                              absl::Time now) {
  absl::StatusOr<Parsed> p = Parse(value, "D", 0, kMaxDecisionBytes, now);
  if (!p.ok()) return p.status();
  return StoredDecision{std::string(p->data),
                        absl::FromUnixMillis(p->expires_ms)};
}

absl::StatusOr<std::string> SealValue(absl::string_view hmac_key,
                                      absl::string_view name,
                                      absl::string_view value) {
  unsigned char tag[kMacBytes];
  if (!ComputeTag(hmac_key, name, value, tag)) {
    return absl::InternalError("HMAC-SHA256 failed");
  }
  std::string sealed;
  sealed.reserve(value.size() + kMacBytes);
  sealed.append(value.data(), value.size());
  sealed.append(reinterpret_cast<const char*>(tag), kMacBytes);
  return sealed;
}

absl::StatusOr<absl::string_view> OpenValue(absl::string_view hmac_key,
                                            absl::string_view name,
                                            absl::string_view sealed) {
  if (sealed.size() < kMacBytes) return absl::DataLossError("MAC mismatch");
  const absl::string_view value = sealed.substr(0, sealed.size() - kMacBytes);
  unsigned char tag[kMacBytes];
  if (!ComputeTag(hmac_key, name, value, tag)) {
    return absl::InternalError("HMAC-SHA256 failed");
  }
  if (CRYPTO_memcmp(tag, sealed.data() + value.size(), kMacBytes) != 0) {
    return absl::DataLossError("MAC mismatch");
  }
  return value;
}

}  // namespace mxpolicy::l2
