// Fuzzes the L2 value decoder (issue 7: Redis "returning garbage"; what a
// shared tier holds is untrusted). Invariants: an accepted value is within
// the size limits and not yet expired; re-encoding what was decoded and
// decoding again gives the same fields (no lossy or ambiguous parse).
#include <cstddef>
#include <cstdint>
#include <string>

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view value(reinterpret_cast<const char*>(data), size);
  CheckPolicy(value);
  CheckDecision(value);
  return 0;
}
