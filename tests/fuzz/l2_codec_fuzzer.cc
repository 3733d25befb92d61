// Fuzzes the L2 value decoder (issue 7: Redis "returning garbage"; what a
// shared tier holds is untrusted). Invariants: an accepted value is within
// the size limits and not yet expired; re-encoding what was decoded and
// decoding again gives the same fields (no lossy or ambiguous parse).
// Authenticated values (codec.h): the input read as a tagged value opens
// under a fixed key only with a valid tag, and then decodes within limits;
// the input sealed under that key opens back to itself, and for small
// inputs every single-byte change, a truncation, an extension, another key
// name or another key makes the tag check fail.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/src/l2/codec.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace l2 = mxpolicy::l2;

// A fixed "now" so that runs are reproducible (2026-01-01T00:00:00Z).
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

void CheckPolicy(absl::string_view value) {
  absl::StatusOr<mxpolicy::StoredPolicy> p = l2::DecodePolicy(value, kNow);
  if (!p.ok()) return;
  FUZZ_CHECK(p->expires_at > kNow);
  FUZZ_CHECK(p->fetched_at <= p->expires_at);
  FUZZ_CHECK(p->id.size() <= l2::kMaxIdBytes);
  FUZZ_CHECK(p->body.size() <= l2::kMaxPolicyBodyBytes);
  absl::StatusOr<std::string> again = l2::EncodePolicy(*p);
  FUZZ_CHECK(again.ok());
  absl::StatusOr<mxpolicy::StoredPolicy> q = l2::DecodePolicy(*again, kNow);
  FUZZ_CHECK(q.ok() && q->id == p->id && q->body == p->body &&
             q->fetched_at == p->fetched_at && q->expires_at == p->expires_at);
}

void CheckDecision(absl::string_view value) {
  absl::StatusOr<mxpolicy::StoredDecision> d = l2::DecodeDecision(value, kNow);
  if (!d.ok()) return;
  FUZZ_CHECK(d->expires_at > kNow);
  FUZZ_CHECK(d->response.size() <= l2::kMaxDecisionBytes);
  absl::StatusOr<std::string> again = l2::EncodeDecision(*d);
  FUZZ_CHECK(again.ok());
  absl::StatusOr<mxpolicy::StoredDecision> e = l2::DecodeDecision(*again, kNow);
  FUZZ_CHECK(e.ok() && e->response == d->response &&
             e->expires_at == d->expires_at);
}

constexpr absl::string_view kKey = "fuzz-hmac-key-0123456789";
constexpr absl::string_view kOtherKey = "fuzz-hmac-key-0123456788";
constexpr absl::string_view kDomain = "example.com";
// Each byte of a sealed value up to this size is flipped (the tagged seeds
// are smaller): one HMAC of at most this many bytes per position is cheap.
constexpr size_t kFlipAllBelow = 160;

bool Opens(absl::string_view key, absl::string_view name,
           absl::string_view sealed) {
  return l2::OpenValue(key, name, sealed).ok();
}

// The input as read from Redis by a keyed tier: decoded only after its tag
// verifies (the seeds hold tagged values under kKey for kDomain).
void CheckOpened(absl::string_view input) {
  const std::string policy_key = l2::PolicyKey(kDomain);
  const std::string decision_key = l2::DecisionKey(kDomain);
  absl::StatusOr<absl::string_view> p = l2::OpenValue(kKey, policy_key, input);
  if (p.ok()) {
    FUZZ_CHECK(p->size() + l2::kMacBytes == input.size());
    FUZZ_CHECK(p->data() == input.data());
    FUZZ_CHECK(!Opens(kKey, decision_key, input));
    FUZZ_CHECK(!Opens(kOtherKey, policy_key, input));
    CheckPolicy(*p);
  }
  absl::StatusOr<absl::string_view> d =
      l2::OpenValue(kKey, decision_key, input);
  if (d.ok()) {
    FUZZ_CHECK(!p.ok());
    CheckDecision(*d);
  }
}

// The input as a codec value written by a keyed tier.
void CheckSealed(absl::string_view value) {
  const std::string name = l2::PolicyKey(kDomain);
  absl::StatusOr<std::string> sealed = l2::SealValue(kKey, name, value);
  FUZZ_CHECK(sealed.ok());
  FUZZ_CHECK(sealed->size() == value.size() + l2::kMacBytes);
  absl::StatusOr<absl::string_view> opened = l2::OpenValue(kKey, name, *sealed);
  FUZZ_CHECK(opened.ok() && *opened == value);
  // What verifies decodes within limits (CheckPolicy's invariants).
  CheckPolicy(*opened);

  FUZZ_CHECK(!Opens(kOtherKey, name, *sealed));
  FUZZ_CHECK(!Opens(kKey, l2::DecisionKey(kDomain), *sealed));
  FUZZ_CHECK(!Opens(kKey, l2::PolicyKey("example.co"), *sealed));
  FUZZ_CHECK(!Opens(kKey, name,
                    absl::string_view(*sealed).substr(0, sealed->size() - 1)));
  FUZZ_CHECK(!Opens(kKey, name, *sealed + std::string(1, '\0')));

  std::vector<size_t> positions;
  if (sealed->size() <= kFlipAllBelow) {
    for (size_t i = 0; i < sealed->size(); ++i) positions.push_back(i);
  } else {
    // First, last, the value/tag boundary, and a spread in between.
    for (size_t i = 0; i < sealed->size(); i += sealed->size() / 16) {
      positions.push_back(i);
    }
    positions.push_back(value.size() - 1);
    positions.push_back(value.size());
    positions.push_back(sealed->size() - 1);
  }
  std::string flipped = *sealed;
  for (size_t i : positions) {
    // A fuzz-chosen non-zero xor, so not only the low bit is exercised.
    const char x = static_cast<char>(
        value.empty() ? 1 : (static_cast<unsigned char>(value[0]) | 1));
    flipped[i] ^= x;
    FUZZ_CHECK(!Opens(kKey, name, flipped));
    flipped[i] ^= x;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view value(reinterpret_cast<const char*>(data), size);
  CheckPolicy(value);
  CheckDecision(value);
  CheckOpened(value);
  CheckSealed(value);
  return 0;
}
