#include "tests/bench/load_generator.h"

#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace mxpolicy::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A run that does not drain within this bound has lost calls: the slots
// cannot be freed safely, so the benchmark stops loudly.
constexpr absl::Duration kDrainBound = absl::Seconds(30);
constexpr auto kCallDeadline = std::chrono::seconds(10);

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

void DrainOrDie(absl::Mutex& mu, const bool& drained) {
  if (!mu.AwaitWithTimeout(absl::Condition(&drained), kDrainBound)) {
    std::fprintf(stderr, "load generator: calls did not drain within %s\n",
                 absl::FormatDuration(kDrainBound).c_str());
    std::abort();
  }
}

// --- closed loop ---

struct ClosedRun;

struct ClosedSlot {
  ClosedRun* run = nullptr;
  grpc::GenericStub* stub = nullptr;
  size_t next = 0;
  std::unique_ptr<grpc::ClientContext> context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

struct ClosedRun {
  const std::string* method = nullptr;
  std::vector<grpc::ByteBuffer> requests;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> errors{0};
  absl::Mutex mu;
  int running ABSL_GUARDED_BY(mu) = 0;
  bool drained ABSL_GUARDED_BY(mu) = false;
  std::string first_error ABSL_GUARDED_BY(mu);
};

void StartClosed(ClosedSlot* slot);

void ClosedCompleted(ClosedSlot* slot, const grpc::Status& status) {
  ClosedRun* run = slot->run;
  if (status.ok()) {
    run->ok.fetch_add(1, std::memory_order_relaxed);
  } else {
    run->errors.fetch_add(1, std::memory_order_relaxed);
    absl::MutexLock lock(&run->mu);
    if (run->first_error.empty()) {
      run->first_error = FromGrpc(status).ToString();
    }
  }
  // Starting the next call from the completion is what gRPC's own callback
  // QPS client does: it never blocks.
  if (!run->stop.load(std::memory_order_acquire)) {
    StartClosed(slot);
    return;
  }
  absl::MutexLock lock(&run->mu);
  if (--run->running == 0) run->drained = true;
}

void StartClosed(ClosedSlot* slot) {
  ClosedRun* run = slot->run;
  slot->context = std::make_unique<grpc::ClientContext>();
  slot->context->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  slot->request = run->requests[slot->next++ % run->requests.size()];
  slot->response.Clear();
  slot->stub->UnaryCall(slot->context.get(), *run->method, grpc::StubOptions(),
                        &slot->request, &slot->response,
                        [slot](grpc::Status s) { ClosedCompleted(slot, s); });
}

// --- open loop and bursts: one slot per call ---

struct OneShotRun;

struct OneShot {
  OneShotRun* run = nullptr;
  SteadyClock::time_point scheduled;
  int64_t latency_ns = -1;
  grpc::Status status;
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

struct OneShotRun {
  absl::Mutex mu;
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  bool drained ABSL_GUARDED_BY(mu) = false;
};

void StartOneShot(OneShot* call, grpc::GenericStub* stub,
                  const std::string& method, absl::Duration deadline) {
  call->context.set_deadline(DeadlineIn(deadline));
  stub->UnaryCall(&call->context, method, grpc::StubOptions(), &call->request,
                  &call->response, [call](grpc::Status s) {
                    call->latency_ns =
                        std::chrono::duration_cast<std::chrono::nanoseconds>(
                            SteadyClock::now() - call->scheduled)
                            .count();
                    call->status = std::move(s);
                    OneShotRun* run = call->run;
                    absl::MutexLock lock(&run->mu);
                    if (--run->pending == 0) run->drained = true;
                  });
}

std::vector<std::unique_ptr<OneShot>> MakeOneShots(OneShotRun* run, size_t n) {
  std::vector<std::unique_ptr<OneShot>> calls;
  calls.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    calls.push_back(std::make_unique<OneShot>());
    calls.back()->run = run;
  }
  absl::MutexLock lock(&run->mu);
  run->pending = n;
  run->drained = n == 0;
  return calls;
}

absl::Duration Quantile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return absl::ZeroDuration();
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  i = std::min(i, sorted.size() - 1);
  return absl::Nanoseconds(sorted[i]);
}

}  // namespace

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

LoadGenerator::LoadGenerator(const std::string& address, int channels) {
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    // Channels with identical arguments share one connection (STYLE.md).
    args.SetInt("mxpolicy.bench.channel", i);
    channels_.push_back(grpc::CreateCustomChannel(
        address, grpc::InsecureChannelCredentials(), args));
    stubs_.push_back(std::make_unique<grpc::GenericStub>(channels_.back()));
  }
  for (const auto& channel : channels_) {
    connected_ =
        connected_ && channel->WaitForConnected(DeadlineIn(absl::Seconds(5)));
  }
}

LoadGenerator::~LoadGenerator() = default;

ClosedLoopResult LoadGenerator::ClosedLoop(const Workload& workload,
                                           int concurrency,
                                           absl::Duration warmup,
                                           absl::Duration duration) {
  ClosedRun run;
  run.method = &workload.method;
  for (const std::string& r : workload.requests) {
    run.requests.push_back(ToByteBuffer(r));
  }
  std::vector<std::unique_ptr<ClosedSlot>> slots;
  for (int i = 0; i < concurrency; ++i) {
    auto slot = std::make_unique<ClosedSlot>();
    slot->run = &run;
    slot->stub = stubs_[static_cast<size_t>(i) % stubs_.size()].get();
    slot->next = static_cast<size_t>(i);  // spread the requests
    slots.push_back(std::move(slot));
  }
  {
    absl::MutexLock lock(&run.mu);
    run.running = concurrency;
  }
  for (auto& slot : slots) StartClosed(slot.get());
  absl::SleepFor(warmup);
  const uint64_t ok0 = run.ok.load();
  const absl::Time t0 = absl::Now();
  absl::SleepFor(duration);
  const uint64_t ok1 = run.ok.load();
  const absl::Time t1 = absl::Now();
  run.stop.store(true, std::memory_order_release);
  ClosedLoopResult result;
  {
    absl::MutexLock lock(&run.mu);
    DrainOrDie(run.mu, run.drained);
    result.first_error = run.first_error;
  }
  result.calls = ok1 - ok0;
  result.calls_per_second =
      static_cast<double>(result.calls) / absl::ToDoubleSeconds(t1 - t0);
  result.errors = run.errors.load();
  return result;
}

OpenLoopResult LoadGenerator::OpenLoop(const Workload& workload, double rate,
                                       absl::Duration warmup,
                                       absl::Duration duration) {
  const size_t total = static_cast<size_t>(
      rate * absl::ToDoubleSeconds(warmup + duration));
  const size_t skipped =
      static_cast<size_t>(rate * absl::ToDoubleSeconds(warmup));
  OneShotRun run;
  std::vector<std::unique_ptr<OneShot>> calls = MakeOneShots(&run, total);
  for (size_t i = 0; i < total; ++i) {
    calls[i]->request =
        ToByteBuffer(workload.requests[i % workload.requests.size()]);
  }
  // The pacer sleeps between calls; the default 50 µs timer slack would be
  // half the gap at 10 000/s.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  // On 2 shared cores the pacer itself starts calls milliseconds late when
  // it waits behind gRPC's threads; as root it runs SCHED_FIFO (it sleeps
  // between calls, so it cannot starve them). Reported in the result.
  sched_param old_param{};
  const int old_policy = sched_getscheduler(0);
  sched_getparam(0, &old_param);
  sched_param rt{};
  rt.sched_priority = 1;
  const bool realtime = sched_setscheduler(0, SCHED_FIFO, &rt) == 0;
  const auto interval = std::chrono::nanoseconds(
      static_cast<int64_t>(1e9 / rate));
  const SteadyClock::time_point t0 =
      SteadyClock::now() + std::chrono::milliseconds(5);
  std::vector<int64_t> lags(total);
  for (size_t i = 0; i < total; ++i) {
    const SteadyClock::time_point at = t0 + interval * static_cast<int64_t>(i);
    SteadyClock::time_point now = SteadyClock::now();
    if (now < at) {
      std::this_thread::sleep_until(at);
      now = SteadyClock::now();
    }
    lags[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(now - at)
                  .count();
    // Latency counts from the schedule: a late start is the system's delay.
    calls[i]->scheduled = at;
    StartOneShot(calls[i].get(), stubs_[i % stubs_.size()].get(),
                 workload.method, absl::FromChrono(kCallDeadline));
  }
  {
    absl::MutexLock lock(&run.mu);
    DrainOrDie(run.mu, run.drained);
  }
  prctl(PR_SET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);  // back to the default
  if (realtime) sched_setscheduler(0, old_policy, &old_param);
  OpenLoopResult result;
  result.realtime_pacer = realtime;
  result.offered_rate = rate;
  std::vector<int64_t> latencies;
  for (size_t i = 0; i < total; ++i) {
    const OneShot& call = *calls[i];
    if (!call.status.ok()) {
      ++result.errors;
      if (result.first_error.empty()) {
        result.first_error = FromGrpc(call.status).ToString();
      }
      continue;
    }
    if (i >= skipped) latencies.push_back(call.latency_ns);
  }
  std::sort(latencies.begin(), latencies.end());
  lags.erase(lags.begin(), lags.begin() + static_cast<ptrdiff_t>(skipped));
  std::sort(lags.begin(), lags.end());
  result.start_lag_p99 = Quantile(lags, 0.99);
  result.calls = latencies.size();
  result.p50 = Quantile(latencies, 0.50);
  result.p99 = Quantile(latencies, 0.99);
  result.p999 = Quantile(latencies, 0.999);
  result.max = latencies.empty() ? absl::ZeroDuration()
                                 : absl::Nanoseconds(latencies.back());
  return result;
}

std::vector<absl::StatusOr<std::string>> LoadGenerator::Burst(
    const std::string& method, const std::string& request, int n,
    absl::Duration deadline) {
  OneShotRun run;
  std::vector<std::unique_ptr<OneShot>> calls =
      MakeOneShots(&run, static_cast<size_t>(n));
  for (auto& call : calls) call->request = ToByteBuffer(request);
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i]->scheduled = SteadyClock::now();
    StartOneShot(calls[i].get(), stubs_[i % stubs_.size()].get(), method,
                 deadline);
  }
  {
    absl::MutexLock lock(&run.mu);
    DrainOrDie(run.mu, run.drained);
  }
  std::vector<absl::StatusOr<std::string>> answers;
  for (const auto& call : calls) {
    if (call->status.ok()) {
      answers.push_back(ToString(call->response));
    } else {
      answers.push_back(FromGrpc(call->status));
    }
  }
  return answers;
}

absl::StatusOr<std::string> LoadGenerator::Call(const std::string& method,
                                                const std::string& request,
                                                absl::Duration deadline) {
  return std::move(Burst(method, request, 1, deadline)[0]);
}

}  // namespace mxpolicy::bench
