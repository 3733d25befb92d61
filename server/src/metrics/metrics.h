// Prometheus metrics without a client library (Debian 12 has no
// prometheus-cpp): counters and histograms that cost one relaxed atomic add
// on the request path, values owned elsewhere read at scrape time through
// callbacks, and the text exposition format 0.0.4.
#ifndef MXPOLICY_METRICS_METRICS_H_
#define MXPOLICY_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mxpolicy::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonic counter. Thread-safe, lock-free.
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A histogram of durations in seconds with fixed bucket bounds.
// Thread-safe, lock-free.
class Histogram {
 public:
  // `bounds`: ascending upper bounds in seconds (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);

  void Observe(absl::Duration d);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_ns_{0};
};

// Latency buckets from 100 µs (a cache hit) to 30 s (a slow policy fetch).
std::vector<double> LatencyBuckets();

enum class Type { kCounter, kGauge, kHistogram };

struct Sample {
  Labels labels;
  double value = 0;
};

// Contract: instruments and callbacks are added at start-up (Add* take a
// lock; the returned references live as long as the registry); Render() may
// run concurrently with updates. Names and label names are code constants
// following Prometheus conventions; label values are escaped.
class Registry {
 public:
  Counter& AddCounter(const std::string& name, const std::string& help,
                      Labels labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          Labels labels, std::vector<double> bounds);
  // A family whose samples are read at scrape time (a gauge such as cache
  // entries, or a counter kept by another component).
  void AddCallback(const std::string& name, const std::string& help, Type type,
                   std::function<std::vector<Sample>()> collect);

  // The text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    Type type = Type::kCounter;
    std::vector<std::pair<Labels, Counter*>> counters;
    std::vector<std::pair<Labels, Histogram*>> histograms;
    std::vector<std::function<std::vector<Sample>()>> callbacks;
  };
  Family& GetFamily(const std::string& name, const std::string& help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
  std::deque<Counter> counter_store_ ABSL_GUARDED_BY(mu_);
  std::deque<Histogram> histogram_store_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxpolicy::metrics

#endif  // MXPOLICY_METRICS_METRICS_H_
