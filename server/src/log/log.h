// Structured logging: one line per event on stderr, as `key=value` text or
// as one JSON object per line (--log-format). Values are escaped, so
// untrusted data (domains, reasons, policy text) can never forge a line or a
// field. A line is written with a single write(2): lines from concurrent
// threads never interleave.
//
//   if (LogEnabled(LogLevel::kInfo)) {
//     LogLine(LogLevel::kInfo, "decision").Add("domain", d).Add("ttl_s", 60);
//   }
//
// The check first keeps disabled levels free of formatting work.
#ifndef MXPOLICY_LOG_LOG_H_
#define MXPOLICY_LOG_LOG_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace mxpolicy {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

absl::string_view LogLevelName(LogLevel level);

struct LogOptions {
  LogLevel level = LogLevel::kInfo;
  bool json = false;
  int fd = 2;  // tests point it at a pipe
};

// Process-wide; call once at start (before threads log), or in tests.
void ConfigureLogging(const LogOptions& options);

bool LogEnabled(LogLevel level);

// Builds one line; written when destroyed (if its level is enabled).
// Field order is kept. Keys are code constants ([a-z0-9_]).
class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Add(absl::string_view key, absl::string_view value);
  LogLine& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  LogLine& Add(absl::string_view key, const std::string& value) {
    return Add(key, absl::string_view(value));
  }
  LogLine& Add(absl::string_view key, int64_t value);
  LogLine& Add(absl::string_view key, int value) {
    return Add(key, static_cast<int64_t>(value));
  }
  LogLine& Add(absl::string_view key, uint64_t value);
  LogLine& Add(absl::string_view key, double value);
  LogLine& Add(absl::string_view key, bool value);

 private:
  void AddRaw(absl::string_view key, absl::string_view raw_value);

  bool enabled_;
  bool json_;
  std::string line_;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_LOG_LOG_H_
