// LoadGenerator: the gRPC load generator of the benchmarks (make bench). It
// drives any unary method by name with raw request bytes over the callback
// API, so a candidate and its baseline get exactly the same client-side
// work, and offers the three shapes the benchmarks need: a closed loop
// (fixed concurrency for a fixed time → calls per second), an open loop
// (a fixed request rate for a fixed time → latency percentiles measured from
// each call's *scheduled* start, so a stalled server cannot hide behind a
// stalled client) and a burst (n calls started at once, all answers kept).
// Everything is bounded: every call has a deadline and every run a length.
#ifndef MXPOLICY_TESTS_BENCH_LOAD_GENERATOR_H_
#define MXPOLICY_TESTS_BENCH_LOAD_GENERATOR_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mxpolicy::bench {

// What to call: a full method name ("/mxpolicy.v1.PolicyResolver/Resolve")
// and serialized requests, sent in rotation.
struct Workload {
  std::string method;
  std::vector<std::string> requests;
};

struct ClosedLoopResult {
  double calls_per_second = 0;
  uint64_t calls = 0;   // completed OK inside the measured window
  uint64_t errors = 0;  // non-OK completions over the whole run
  std::string first_error;
};

struct OpenLoopResult {
  double offered_rate = 0;  // calls scheduled per second
  uint64_t calls = 0;       // measured calls (after the warm-up)
  uint64_t errors = 0;
  std::string first_error;
  absl::Duration p50, p99, p999, max;
  // Whether the pacer ran SCHED_FIFO (as root).
  bool realtime_pacer = false;
  // How late the pacer started calls (client-side delay, included above).
  absl::Duration start_lag_p99;
};

// Contract: the constructor opens `channels` channels to `address`, each
// with a distinct channel argument (identical arguments would share one
// connection) and waits up to 5 s for them to connect. One run at a time;
// runs block the calling thread until every call has completed.
class LoadGenerator {
 public:
  LoadGenerator(const std::string& address, int channels);
  ~LoadGenerator();

  // True when every channel connected.
  bool connected() const { return connected_; }

  // `concurrency` calls in flight for warmup + duration; each completion
  // starts the next call. Counts OK completions inside `duration`.
  ClosedLoopResult ClosedLoop(const Workload& workload, int concurrency,
                              absl::Duration warmup, absl::Duration duration);

  // Starts calls at `rate` per second (independent of completions) for
  // warmup + duration; latencies of the calls scheduled after the warm-up.
  OpenLoopResult OpenLoop(const Workload& workload, double rate,
                          absl::Duration warmup, absl::Duration duration);

  // Starts `n` calls of `request` as fast as they can be started (spread
  // over the channels) and returns every answer, in start order.
  std::vector<absl::StatusOr<std::string>> Burst(const std::string& method,
                                                 const std::string& request,
                                                 int n,
                                                 absl::Duration deadline);

  // One call; the response bytes or the call's status.
  absl::StatusOr<std::string> Call(const std::string& method,
                                   const std::string& request,
                                   absl::Duration deadline);

 private:
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  bool connected_ = true;
};

// Byte string ↔ ByteBuffer.
grpc::ByteBuffer ToByteBuffer(const std::string& bytes);
std::string ToString(const grpc::ByteBuffer& buffer);

// Resident set size of this process (/proc/self/statm), in bytes.
int64_t ResidentBytes();

// Median of `values` (the upper one of the two middle values).
double Median(std::vector<double> values);

}  // namespace mxpolicy::bench

#endif  // MXPOLICY_TESTS_BENCH_LOAD_GENERATOR_H_
