#include "server/src/log/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mxpolicy {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};
std::atomic<int> g_fd{2};

// JSON string escaping; bytes outside printable ASCII become \u00XX, so the
// output is ASCII whatever the input (invalid UTF-8 included).
void AppendJsonString(std::string& out, absl::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

// Text values: bare when made of safe characters, else quoted with the
// same escapes as JSON (so one line stays one line).
void AppendTextValue(std::string& out, absl::string_view s) {
  bool bare = !s.empty();
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=') {
      bare = false;
      break;
    }
  }
  if (bare) {
    out.append(s.data(), s.size());
  } else {
    AppendJsonString(out, s);
  }
}

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

void ConfigureLogging(const LogOptions& options) {
  g_level.store(static_cast<int>(options.level), std::memory_order_relaxed);
  g_json.store(options.json, std::memory_order_relaxed);
  g_fd.store(options.fd, std::memory_order_relaxed);
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

LogLine::LogLine(LogLevel level, absl::string_view event)
    : enabled_(LogEnabled(level)),
      json_(g_json.load(std::memory_order_relaxed)) {
  if (!enabled_) return;
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                          absl::UTCTimeZone());
  if (json_) {
    line_ = absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"",
                         LogLevelName(level), "\",\"event\":");
    AppendJsonString(line_, event);
  } else {
    line_ = absl::StrCat(ts, " ", LogLevelName(level), " ");
    AppendTextValue(line_, event);
  }
}

void LogLine::AddRaw(absl::string_view key, absl::string_view raw_value) {
  if (json_) {
    line_.push_back(',');
    AppendJsonString(line_, key);
    line_.push_back(':');
    line_.append(raw_value.data(), raw_value.size());
  } else {
    absl::StrAppend(&line_, " ", key, "=", raw_value);
  }
}

LogLine& LogLine::Add(absl::string_view key, absl::string_view value) {
  if (!enabled_) return *this;
  std::string v;
  if (json_) {
    AppendJsonString(v, value);
  } else {
    AppendTextValue(v, value);
  }
  AddRaw(key, v);
  return *this;
}

LogLine& LogLine::Add(absl::string_view key, int64_t value) {
  if (enabled_) AddRaw(key, absl::StrCat(value));
  return *this;
}

LogLine& LogLine::Add(absl::string_view key, uint64_t value) {
  if (enabled_) AddRaw(key, absl::StrCat(value));
  return *this;
}

LogLine& LogLine::Add(absl::string_view key, double value) {
  if (!enabled_) return *this;
  // JSON has no inf or nan: those go as strings.
  if (!std::isfinite(value)) return Add(key, absl::StrFormat("%g", value));
  AddRaw(key, absl::StrFormat("%.6g", value));
  return *this;
}

LogLine& LogLine::Add(absl::string_view key, bool value) {
  if (enabled_) AddRaw(key, value ? "true" : "false");
  return *this;
}

LogLine::~LogLine() {
  if (!enabled_) return;
  line_.append(json_ ? "}\n" : "\n");
  const int fd = g_fd.load(std::memory_order_relaxed);
  const char* p = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report a failing log
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace mxpolicy
