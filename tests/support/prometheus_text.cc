#include "tests/support/prometheus_text.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace mxpolicy::testing {

MetricValues::MetricValues(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == absl::string_view::npos) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(sp + 1), &v)) {
      values_[std::string(line.substr(0, sp))] = v;
    }
  }
}

double MetricValues::operator[](const std::string& series) const {
  auto it = values_.find(series);
  return it == values_.end() ? -1 : it->second;
}

}  // namespace mxpolicy::testing
