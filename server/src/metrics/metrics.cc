#include "server/src/metrics/metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mxpolicy::metrics {
namespace {

void AppendEscaped(std::string& out, const std::string& value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  return absl::StrFormat("%.9g", v);
}

// {a="x",b="y"} with an optional extra label (le for histogram buckets).
std::string LabelText(const Labels& labels, const std::string& extra_name = "",
                      const std::string& extra_value = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!first) out.push_back(',');
    first = false;
    absl::StrAppend(&out, k, "=\"");
    AppendEscaped(out, v);
    out.push_back('"');
  };
  for (const auto& [k, v] : labels) add(k, v);
  if (!extra_name.empty()) add(extra_name, extra_value);
  out.push_back('}');
  return out;
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(absl::Duration d) {
  const double seconds = absl::ToDoubleSeconds(d);
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), seconds) -
      bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(
                        std::max<int64_t>(0, absl::ToInt64Nanoseconds(d))),
                    std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum_seconds =
      static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10,  30};
}

Registry::Family& Registry::GetFamily(const std::string& name,
                                      const std::string& help, Type type) {
  Family& f = families_[name];
  if (f.help.empty()) {
    f.help = help;
    f.type = type;
  }
  return f;
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help,
                              Labels labels) {
  absl::MutexLock lock(&mu_);
  Counter& c = counter_store_.emplace_back();
  GetFamily(name, help, Type::kCounter)
      .counters.emplace_back(std::move(labels), &c);
  return c;
}

Histogram& Registry::AddHistogram(const std::string& name,
                                  const std::string& help, Labels labels,
                                  std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  Histogram& h = histogram_store_.emplace_back(std::move(bounds));
  GetFamily(name, help, Type::kHistogram)
      .histograms.emplace_back(std::move(labels), &h);
  return h;
}

void Registry::AddCallback(const std::string& name, const std::string& help,
                           Type type,
                           std::function<std::vector<Sample>()> collect) {
  absl::MutexLock lock(&mu_);
  GetFamily(name, help, type).callbacks.push_back(std::move(collect));
}

std::string Registry::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n# TYPE ", name, " ",
                    TypeName(f.type), "\n");
    for (const auto& [labels, c] : f.counters) {
      absl::StrAppend(&out, name, LabelText(labels), " ", c->value(), "\n");
    }
    for (const auto& collect : f.callbacks) {
      for (const Sample& s : collect()) {
        absl::StrAppend(&out, name, LabelText(s.labels), " ",
                        FormatValue(s.value), "\n");
      }
    }
    for (const auto& [labels, h] : f.histograms) {
      const Histogram::Snapshot s = h->snapshot();
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        absl::StrAppend(&out, name, "_bucket",
                        LabelText(labels, "le", FormatValue(s.bounds[i])), " ",
                        s.cumulative[i], "\n");
      }
      absl::StrAppend(&out, name, "_bucket", LabelText(labels, "le", "+Inf"),
                      " ", s.count, "\n", name, "_sum", LabelText(labels), " ",
                      FormatValue(s.sum_seconds), "\n", name, "_count",
                      LabelText(labels), " ", s.count, "\n");
    }
  }
  return out;
}

}  // namespace mxpolicy::metrics
