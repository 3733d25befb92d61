// Reads Prometheus text exposition (what /metrics serves) into a map for
// tests: series ("name{labels}" exactly as written) → value.
#ifndef MXPOLICY_TESTS_SUPPORT_PROMETHEUS_TEXT_H_
#define MXPOLICY_TESTS_SUPPORT_PROMETHEUS_TEXT_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace mxpolicy::testing {

class MetricValues {
 public:
  explicit MetricValues(absl::string_view text);
  // -1 when the series is absent, so a missing family fails comparisons.
  double operator[](const std::string& series) const;

 private:
  std::map<std::string, double> values_;
};

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_PROMETHEUS_TEXT_H_
