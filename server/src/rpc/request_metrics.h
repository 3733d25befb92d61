// What the Resolve RPC reports about each call: Prometheus counters by
// decision, source and status code, latency histograms by source, and one
// structured log line per answer (fresh decisions at info, cached ones at
// debug; the policy's text only at debug).
#ifndef MXPOLICY_RPC_REQUEST_METRICS_H_
#define MXPOLICY_RPC_REQUEST_METRICS_H_

#include <array>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "mxpolicy/v1/mxpolicy.pb.h"
#include "server/src/metrics/metrics.h"

namespace mxpolicy {

// The decision (field 2) and source (field 9) of a serialized
// ResolveResponse, read without parsing the message; the last occurrence
// wins, as in protobuf (the cache appends its source to the stored answer).
// Unknown or malformed input gives the UNSPECIFIED values.
struct AnswerLabels {
  v1::Decision decision = v1::DECISION_UNSPECIFIED;
  v1::Source source = v1::SOURCE_UNSPECIFIED;
};
AnswerLabels PeekAnswer(absl::string_view wire);

// Contract: thread-safe; Record() costs two relaxed atomic adds plus a log
// line when the level is enabled.
class RequestMetrics {
 public:
  // Registers mxpolicy_requests_total and mxpolicy_request_duration_seconds.
  explicit RequestMetrics(metrics::Registry& registry);

  // One finished Resolve call. `wire` is the serialized answer (status OK)
  // and `request_domain` the domain as asked (for the log of failures).
  void Record(absl::string_view request_domain, const absl::Status& status,
              absl::string_view wire, absl::Duration elapsed);

 private:
  static constexpr int kDecisions = 8;  // DECISION_UNSPECIFIED..NO_MAIL
  static constexpr int kSources = 4;    // SOURCE_UNSPECIFIED..STALE
  static constexpr int kCodes = 17;     // absl::StatusCode 0..16

  std::array<std::array<metrics::Counter*, kSources>, kDecisions> answers_{};
  std::array<metrics::Counter*, kCodes> errors_{};
  std::array<metrics::Histogram*, kSources> latency_{};
  metrics::Histogram* error_latency_ = nullptr;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_RPC_REQUEST_METRICS_H_
