// mxpolicy warm: resolves a list of domains through the service so that its
// cache holds them (before a cut-over, after a restart), with a bounded
// number of calls in flight, and reports what came back.
//
// The calls are asynchronous (Client::ResolveAsync): one thread reads the
// list and starts calls while fewer than --concurrency are in flight; the
// answers arrive on gRPC's threads and are only counted there. No thread
// per request, and the service never sees more than N calls of ours at once
// (its --max-cold-resolutions refuses the excess with RESOURCE_EXHAUSTED).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "mxpolicy/client.h"

namespace mxpolicy::cli {

const char kWarmUsage[] =
    "Usage: mxpolicy warm [--server=ADDR] [--concurrency=N] [--deadline=D] "
    "FILE\n"
    "  Resolves every domain in FILE (one per line; blank lines and # "
    "comments\n"
    "  skipped; - reads standard input) through mxpolicyd, so that its cache\n"
    "  holds them, and prints a summary.\n"
    "  --server=ADDR     mxpolicyd address (default 127.0.0.1:8460)\n"
    "  --concurrency=N   calls in flight at most (default 32, 1-10000)\n"
    "  --deadline=D      per-call deadline, e.g. 10s (default 30s)\n"
    "Exit codes: 0 every domain answered, 1 some failed (bad domains too),\n"
    "2 usage error or unreadable FILE.\n";

namespace {

constexpr int kMaxConcurrency = 10000;
// Failing domains listed per error code in the summary.
constexpr size_t kExamplesPerCode = 3;

struct Item {
  int line = 0;
  std::string domain;
};

struct ReadResult {
  std::vector<Item> items;
  int lines = 0;
  int skipped = 0;  // blank or comment
};

// Reads the whole list first: the progress bar needs the total, and a list
// of a million domains is a few tens of MB.
absl::StatusOr<ReadResult> ReadDomains(const std::string& path) {
  const bool stdin_input = path == "-";
  FILE* f = stdin_input ? stdin : std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  ReadResult out;
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  errno = 0;
  while ((n = getline(&buf, &cap, f)) >= 0) {
    ++out.lines;
    absl::string_view line(buf, static_cast<size_t>(n));
    // A domain never contains '#', so everything after one is a comment.
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = absl::StripAsciiWhitespace(line);  // also the CR of CRLF files
    if (line.empty()) {
      ++out.skipped;
      continue;
    }
    out.items.push_back(Item{out.lines, std::string(line)});
  }
  const int read_errno = std::ferror(f) ? errno : 0;
  std::free(buf);
  if (!stdin_input) std::fclose(f);
  if (read_errno != 0) {
    return absl::DataLossError(
        absl::StrCat("cannot read ", stdin_input ? "standard input" : path,
                     ": ", std::strerror(read_errno)));
  }
  return out;
}

struct Failure {
  int line = 0;
  std::string domain;
  std::string message;
};

// What the answers add up to; filled on gRPC's threads.
class Tally {
 public:
  explicit Tally(int concurrency) : concurrency_(concurrency) {}

  // Blocks until a call may start, redrawing the progress bar meanwhile
  // (outside the lock: the bar reads the counts).
  void Acquire(const std::function<void()>& redraw) {
    const absl::Condition room(this, &Tally::HasRoom);
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(room, absl::Milliseconds(100))) {
          ++in_flight_;
          return;
        }
      }
      redraw();
    }
  }

  // Blocks until every started call has been answered.
  void Drain(const std::function<void()>& redraw) {
    const absl::Condition idle(this, &Tally::Idle);
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(idle, absl::Milliseconds(100))) return;
      }
      redraw();
    }
  }

  void Record(const Item& item, const absl::StatusOr<Policy>& result,
              absl::Duration latency) {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    ++done_;
    if (result.ok()) {
      ++decisions_[result->response.decision()];
      ++sources_[result->response.source()];
      latencies_.push_back(latency);
      return;
    }
    ++failed_;
    std::pair<int, std::vector<Failure>>& group =
        errors_[result.status().code()];
    ++group.first;
    if (group.second.size() < kExamplesPerCode) {
      group.second.push_back(Failure{item.line, item.domain,
                                     std::string(result.status().message())});
    }
  }

  // For the progress bar.
  std::pair<size_t, size_t> DoneAndFailed() const {
    absl::MutexLock lock(&mu_);
    return {done_, failed_};
  }

  // Called once everything is drained (no more writers).
  void PrintSummary(const ReadResult& input, const std::string& source,
                    const std::string& server, absl::Duration elapsed) {
    absl::MutexLock lock(&mu_);
    const double secs = std::max(absl::ToDoubleSeconds(elapsed), 1e-6);
    std::printf("mxpolicy warm: %s against %s, concurrency %d\n",
                source.c_str(), server.c_str(), concurrency_);
    std::printf("  %-10s %zu (%d lines, %d blank or comment)\n", "total",
                input.items.size(), input.lines, input.skipped);
    std::printf("  %-10s %zu\n", "answered", done_ - failed_);
    std::printf("  %-10s %zu\n", "failed", failed_);
    std::printf("  %-10s %.3fs\n", "time", absl::ToDoubleSeconds(elapsed));
    std::printf("  %-10s %.1f domains/s\n", "rate",
                static_cast<double>(done_) / secs);
    if (!latencies_.empty()) {
      std::sort(latencies_.begin(), latencies_.end());
      auto at = [&](double q) {
        const size_t i = std::min(
            latencies_.size() - 1,
            static_cast<size_t>(q * static_cast<double>(latencies_.size())));
        return absl::StrFormat("%.1fms",
                               absl::ToDoubleMilliseconds(latencies_[i]));
      };
      std::printf("  %-10s p50 %s  p90 %s  p99 %s  max %s\n", "latency",
                  at(0.50).c_str(), at(0.90).c_str(), at(0.99).c_str(),
                  at(1.0).c_str());
    }
    if (!decisions_.empty()) {
      std::printf("decisions:\n");
      for (const auto& [decision, count] : decisions_) {
        std::printf("  %-16s %zu\n",
                    DecisionName(static_cast<v1::Decision>(decision)).c_str(),
                    count);
      }
      // fresh = resolved now; cache = the service already had it.
      std::printf("sources:\n");
      for (const auto& [src, count] : sources_) {
        std::printf("  %-16s %zu\n",
                    SourceName(static_cast<v1::Source>(src)).c_str(), count);
      }
    }
    if (!errors_.empty()) {
      std::printf("errors by code:\n");
      for (const auto& [code, group] : errors_) {
        std::printf("  %-18s %d\n", absl::StatusCodeToString(code).c_str(),
                    group.first);
        for (const Failure& f : group.second) {
          std::printf("      line %d: %s: %s\n", f.line,
                      Printable(f.domain, 80).c_str(),
                      Printable(f.message, 200).c_str());
        }
        if (static_cast<size_t>(group.first) > group.second.size()) {
          std::printf("      ... and %zu more\n",
                      static_cast<size_t>(group.first) - group.second.size());
        }
      }
    }
  }

 private:
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ < concurrency_;
  }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  }

  const int concurrency_;
  mutable absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t done_ ABSL_GUARDED_BY(mu_) = 0;
  size_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, size_t> decisions_ ABSL_GUARDED_BY(mu_);
  std::map<int, size_t> sources_ ABSL_GUARDED_BY(mu_);
  std::map<absl::StatusCode, std::pair<int, std::vector<Failure>>> errors_
      ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> latencies_ ABSL_GUARDED_BY(mu_);
};

// A one-line bar on stderr, redrawn in place with '\r'; only for a terminal,
// so logs and pipes get just the summary.
class Progress {
 public:
  Progress(size_t total, absl::Time start)
      : enabled_(isatty(STDERR_FILENO) == 1), total_(total), start_(start) {}

  void Draw(size_t done, size_t failed) {
    if (!enabled_) return;
    const absl::Time now = absl::Now();
    // ~10 redraws a second are enough for a human and cheap on a slow tty.
    if (done != total_ && now - last_ < absl::Milliseconds(100)) return;
    last_ = now;
    constexpr int kWidth = 30;
    const double frac =
        total_ == 0 ? 1.0
                    : static_cast<double>(done) / static_cast<double>(total_);
    const int filled = static_cast<int>(frac * kWidth);
    const double secs = std::max(absl::ToDoubleSeconds(now - start_), 1e-3);
    std::fprintf(stderr, "\r[%s%s] %zu/%zu %3d%%  %.0f/s  %zu failed\033[K",
                 std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), done, total_,
                 static_cast<int>(frac * 100), static_cast<double>(done) / secs,
                 failed);
    std::fflush(stderr);
  }

  // Clears the bar so the summary starts on a clean line.
  void Finish() {
    if (!enabled_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }

 private:
  const bool enabled_;
  const size_t total_;
  const absl::Time start_;
  absl::Time last_ = absl::InfinitePast();
};

}  // namespace

int RunWarm(const std::vector<std::string>& args) {
  CommonFlags flags;
  int concurrency = 32;
  std::vector<std::string> files;
  auto own = [&concurrency](absl::string_view arg, std::string* error) {
    absl::string_view a = arg;
    if (absl::ConsumePrefix(&a, "--concurrency=")) {
      if (absl::SimpleAtoi(a, &concurrency) && concurrency >= 1 &&
          concurrency <= kMaxConcurrency) {
        return FlagParse::kOk;
      }
      *error = absl::StrCat("bad --concurrency \"", Printable(a, 64),
                            "\": want a whole number from 1 to ",
                            kMaxConcurrency);
      return FlagParse::kError;
    }
    if (arg == "--concurrency") {
      *error = "--concurrency needs a value: --concurrency=N";
      return FlagParse::kError;
    }
    return FlagParse::kNotMine;
  };
  if (std::optional<int> done = ParseCommandArgs("mxpolicy warm", kWarmUsage,
                                                 args, flags, own, files)) {
    return *done;
  }
  if (files.size() != 1) {
    std::fprintf(stderr, "mxpolicy warm: %s\n%s",
                 files.empty() ? "missing FILE (use - for standard input)"
                               : "takes exactly one FILE",
                 kWarmUsage);
    return 2;
  }
  const std::string& path = files[0];
  absl::StatusOr<ReadResult> input = ReadDomains(path);
  if (!input.ok()) {
    std::fprintf(stderr, "mxpolicy warm: %s\n",
                 std::string(input.status().message()).c_str());
    return 2;
  }
  if (input->items.empty()) {
    std::fprintf(stderr, "mxpolicy warm: no domains in %s\n",
                 path == "-" ? "standard input" : path.c_str());
  }
  std::unique_ptr<Client> client = MakeClientOrReport("mxpolicy warm", flags);
  if (client == nullptr) return 2;

  Tally tally(concurrency);
  const absl::Time start = absl::Now();
  Progress progress(input->items.size(), start);
  auto redraw = [&] {
    auto [done, failed] = tally.DoneAndFailed();
    progress.Draw(done, failed);
  };
  for (const Item& item : input->items) {
    tally.Acquire(redraw);
    // Not under the tally's lock: a bad domain is answered inline, and the
    // callback takes the lock.
    const absl::Time started = absl::Now();
    client->ResolveAsync(
        item.domain, flags.deadline,
        [&tally, &item, started](absl::StatusOr<Policy> result) {
          tally.Record(item, result, absl::Now() - started);
        });
    redraw();
  }
  tally.Drain(redraw);
  const absl::Duration elapsed = absl::Now() - start;
  progress.Finish();

  tally.PrintSummary(*input, path == "-" ? "standard input" : path,
                     flags.server, elapsed);
  return tally.DoneAndFailed().second == 0 ? 0 : 1;
}

}  // namespace mxpolicy::cli
