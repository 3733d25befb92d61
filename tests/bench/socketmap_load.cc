// socketmap_load: a closed-loop load generator for Postfix socketmap servers
// (socketmap_table(5)), used by the socketmap benchmark
// (tests/bench/socketmap_bench.sh: mxpolicy-postfix against
// postfix-mta-sts-resolver's mta-sts-daemon).
//
//   socketmap_load --target=127.0.0.1:PORT|unix:PATH --connections=N --seconds=S
//       [--warmup=0.5] --request='postfix sts-crlf.test' [--max-reply=100000]
//
// Each of the N persistent TCP connections does what a Postfix smtp(8)
// process does with its socketmap connection: send one netstring request,
// read the whole netstring reply, send the next. The load is therefore set
// by the server's own speed (closed loop), and N is the number of delivery
// agents asking at once. One thread drives every connection through epoll
// with nonblocking sockets: a thread per connection would put N runnable
// threads on the same (two) cores the server needs, and their wake-ups
// would be measured as the server's latency.
//
// Timeline: connect all N (5 s limit); then a warm-up (default 0.5 s)
// whose replies are checked but not counted (first requests, lazily built
// server state); then the sample of S seconds. rps = replies completed in
// the sample / S; a latency runs from the request's first byte written to
// its reply's last byte read, for each reply completed in the sample.
// Requests still open when the sample ends are abandoned: the program stops
// by itself even when a server stops answering.
//
// Output: one line on stdout, e.g.
//   socketmap: target=127.0.0.1:8461 connections=16 seconds=3 rps=12345
//   p50_ms=0.120 p99_ms=0.800 max_ms=2.104 replies=OK:37035
//   first_reply="OK secure match=mx.example"
// `replies` counts the sample's replies by first word (the socketmap
// statuses OK, NOTFOUND, TEMP, TIMEOUT, PERM, else `other`); `first_reply`
// is the first reply of the run (warm-up included), escaped.
// Exit: 0 ran; 1 connect failure, a malformed reply, data nobody asked for,
// a connection closed by the server, or no reply in the sample; 2 usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tests/bench/local_address.h"

namespace mxpolicy::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "usage: socketmap_load --target=127.0.0.1:PORT|unix:PATH --connections=N "
    "--seconds=S [--warmup=0.5] --request='MAPNAME KEY' "
    "[--max-reply=100000]\n";

// Postfix's socketmap client refuses replies longer than this
// (socketmap_table(5)); a longer reply would fail in production too.
constexpr size_t kDefaultMaxReply = 100000;
constexpr auto kConnectLimit = std::chrono::seconds(5);

struct Options {
  std::string target;
  sockaddr_storage address{};
  socklen_t address_length = 0;
  int connections = 0;
  double seconds = 0;
  double warmup = 0.5;
  std::string request;
  size_t max_reply = kDefaultMaxReply;
};

bool ParseInt(std::string_view s, long long min, long long max,
              long long* out) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < min || v > max) {
    return false;
  }
  *out = v;
  return true;
}

bool ParseSeconds(std::string_view s, double* out) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) ||
      v < 0 || v > 3600) {
    return false;
  }
  *out = v;
  return true;
}

bool ParseFlags(int argc, char** argv, Options* o) {
  bool have_target = false, have_connections = false, have_seconds = false,
       have_request = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    const size_t eq = a.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view name = a.substr(0, eq), value = a.substr(eq + 1);
    long long n = 0;
    bool ok = true;
    if (name == "--target") {
      o->target = std::string(value);
      ok = have_target =
          ParseLocalAddress(value, &o->address, &o->address_length);
    } else if (name == "--connections") {
      // 10000: far above any Postfix process limit; keeps the epoll event
      // array and the file descriptor count sane.
      ok = have_connections = ParseInt(value, 1, 10000, &n);
      o->connections = static_cast<int>(n);
    } else if (name == "--seconds") {
      ok = have_seconds = ParseSeconds(value, &o->seconds) && o->seconds > 0;
    } else if (name == "--warmup") {
      ok = ParseSeconds(value, &o->warmup);
    } else if (name == "--request") {
      o->request = std::string(value);
      // Postfix sends "<mapname> <key>"; an empty one cannot be a lookup.
      ok = have_request = !value.empty();
    } else if (name == "--max-reply") {
      ok = ParseInt(value, 1, 1 << 30, &n);
      o->max_reply = static_cast<size_t>(n);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "socketmap_load: bad argument %s\n", argv[i]);
      return false;
    }
  }
  if (!have_target || !have_connections || !have_seconds || !have_request) {
    std::fprintf(stderr, "socketmap_load: missing a required flag\n");
    return false;
  }
  return true;
}

enum class Parse { kNeedMore, kComplete, kMalformed };

// One netstring (cr.yp.to/proto/netstrings.txt): "<length>:<data>,".
// Stricter than Postfix's reader (util/netstring.c also takes leading
// zeros): a server that passes here passes there, and a leading zero from a
// new server is a bug worth seeing. `buffer` holds what was received so
// far; on kComplete, `payload` is the data and `consumed` the netstring's
// length; on kMalformed, `error` says why.
Parse ParseNetstring(std::string_view buffer, size_t max_length,
                     std::string_view* payload, size_t* consumed,
                     std::string* error) {
  size_t length = 0, i = 0;
  for (; i < buffer.size() && buffer[i] != ':'; ++i) {
    const char c = buffer[i];
    if (c < '0' || c > '9') {
      *error = "non-digit in the netstring length";
      return Parse::kMalformed;
    }
    if (i == 1 && buffer[0] == '0') {
      *error = "leading zero in the netstring length";
      return Parse::kMalformed;
    }
    length = length * 10 + static_cast<size_t>(c - '0');
    if (length > max_length) {
      *error = "reply longer than " + std::to_string(max_length) + " bytes";
      return Parse::kMalformed;
    }
  }
  if (i == buffer.size()) return Parse::kNeedMore;
  if (i == 0) {
    *error = "empty netstring length";
    return Parse::kMalformed;
  }
  const size_t start = i + 1;
  if (buffer.size() < start + length + 1) return Parse::kNeedMore;
  if (buffer[start + length] != ',') {
    *error = "netstring not terminated by ','";
    return Parse::kMalformed;
  }
  *payload = buffer.substr(start, length);
  *consumed = start + length + 1;
  return Parse::kComplete;
}

// The reply statuses of socketmap_table(5), counted separately; `other`
// (index kOther) is anything else, which Postfix would treat as an error.
constexpr std::array<std::string_view, 5> kStatuses = {"OK", "NOTFOUND", "TEMP",
                                                       "TIMEOUT", "PERM"};
constexpr size_t kOther = kStatuses.size();

size_t StatusIndex(std::string_view reply) {
  const std::string_view word = reply.substr(0, reply.find(' '));
  for (size_t i = 0; i < kStatuses.size(); ++i) {
    if (word == kStatuses[i]) return i;
  }
  return kOther;
}

// For first_reply="...": printable ASCII as is, '"' and '\' escaped,
// anything else as \xNN, so the output stays one parseable line whatever a
// server sends.
std::string Escape(std::string_view s) {
  constexpr size_t kMaxShown = 300;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

struct Connection {
  int fd = -1;
  bool connected = false;
  bool want_write = false;  // EPOLLOUT is registered
  size_t sent = 0;          // bytes of the current request written
  std::string received;     // bytes of the current reply read so far
  Clock::time_point start;  // first byte of the current request written
};

class LoadRun {
 public:
  explicit LoadRun(const Options& options)
      : options_(options),
        request_(std::to_string(options.request.size()) + ":" +
                 options.request + ","),
        connections_(static_cast<size_t>(options.connections)) {}

  ~LoadRun() {
    for (Connection& c : connections_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  // Connects, warms up, samples, prints the result line. Returns the exit
  // status.
  int Run() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) {
      Fail("epoll_create1", errno);
      return 1;
    }
    events_.resize(std::min<size_t>(connections_.size(), 1024));
    if (!ConnectAll()) return 1;

    const Clock::time_point t0 = Clock::now();
    sample_start_ = t0 + ToDuration(options_.warmup);
    sample_end_ = sample_start_ + ToDuration(options_.seconds);
    // Sized for ~100k replies/s (capped: --seconds may be long) so that
    // recording a latency does not reallocate inside a typical sample.
    latencies_ns_.reserve(std::min<size_t>(
        static_cast<size_t>(options_.seconds * 100000), size_t{10} << 20));
    for (size_t i = 0; i < connections_.size(); ++i) {
      if (!StartRequest(i, t0)) return 1;
    }
    while (true) {
      const Clock::time_point now = Clock::now();
      if (now >= sample_end_) break;
      if (!Poll(TimeoutMs(now, sample_end_))) return 1;
    }
    return Report();
  }

 private:
  static Clock::duration ToDuration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(seconds));
  }

  // Rounded up: epoll_wait takes milliseconds, and waking just before the
  // deadline would only spin.
  static int TimeoutMs(Clock::time_point now, Clock::time_point deadline) {
    const auto left = deadline - now;
    return static_cast<int>(
        std::chrono::ceil<std::chrono::milliseconds>(left).count());
  }

  bool Fail(const std::string& what, int error) {
    std::fprintf(stderr, "socketmap_load: %s: %s: %s\n",
                 options_.target.c_str(), what.c_str(), std::strerror(error));
    return false;
  }

  bool FailConnection(size_t index, const std::string& what) {
    std::fprintf(stderr, "socketmap_load: %s: connection %zu: %s\n",
                 options_.target.c_str(), index, what.c_str());
    return false;
  }

  bool SetEvents(size_t index, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = index;
    if (epoll_ctl(epoll_fd_, op, connections_[index].fd, &ev) != 0) {
      return FailConnection(index,
                            std::string("epoll_ctl: ") + std::strerror(errno));
    }
    return true;
  }

  // All connections are opened before the clock starts, so that connection
  // set-up (and a Python server's accept path) is not part of the figures.
  bool ConnectAll() {
    const int family = options_.address.ss_family;
    size_t pending = 0;
    for (size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = connections_[i];
      c.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) return Fail("socket", errno);
      // A request that had to be written in two parts must not wait for
      // an ACK (Nagle); normally each request is a single write anyway.
      if (family != AF_UNIX) {
        const int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      }
      if (connect(c.fd, reinterpret_cast<const sockaddr*>(&options_.address),
                  options_.address_length) == 0) {
        c.connected = true;
        if (!SetEvents(i, EPOLLIN, EPOLL_CTL_ADD)) return false;
      } else if (errno == EINPROGRESS) {
        ++pending;
        if (!SetEvents(i, EPOLLOUT, EPOLL_CTL_ADD)) return false;
      } else {
        return Fail("connect", errno);
      }
    }
    const Clock::time_point deadline = Clock::now() + kConnectLimit;
    while (pending > 0) {
      const Clock::time_point now = Clock::now();
      if (now >= deadline) {
        std::fprintf(stderr,
                     "socketmap_load: %s: %zu connections not established "
                     "after 5 s\n",
                     options_.target.c_str(), pending);
        return false;
      }
      const int n = epoll_wait(epoll_fd_, events_.data(),
                               static_cast<int>(events_.size()),
                               TimeoutMs(now, deadline));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail("epoll_wait", errno);
      }
      for (int k = 0; k < n; ++k) {
        const size_t i = events_[k].data.u64;
        Connection& c = connections_[i];
        if (c.connected) continue;
        int error = 0;
        socklen_t length = sizeof(error);
        if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
          error = errno;
        }
        if (error != 0) return Fail("connect", error);
        c.connected = true;
        --pending;
        if (!SetEvents(i, EPOLLIN, EPOLL_CTL_MOD)) return false;
      }
    }
    return true;
  }

  bool StartRequest(size_t index, Clock::time_point now) {
    Connection& c = connections_[index];
    c.sent = 0;
    c.received.clear();
    c.start = now;
    return Send(index);
  }

  // Writes what the socket takes; the rest goes out on EPOLLOUT.
  bool Send(size_t index) {
    Connection& c = connections_[index];
    while (c.sent < request_.size()) {
      const ssize_t n = send(c.fd, request_.data() + c.sent,
                             request_.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.want_write) {
          c.want_write = true;
          return SetEvents(index, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        }
        return true;
      } else {
        return FailConnection(index,
                              std::string("send: ") + std::strerror(errno));
      }
    }
    if (c.want_write) {
      c.want_write = false;
      return SetEvents(index, EPOLLIN, EPOLL_CTL_MOD);
    }
    return true;
  }

  bool Poll(int timeout_ms) {
    const int n = epoll_wait(epoll_fd_, events_.data(),
                             static_cast<int>(events_.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return true;
      return Fail("epoll_wait", errno);
    }
    for (int k = 0; k < n; ++k) {
      const size_t i = events_[k].data.u64;
      const uint32_t ev = events_[k].events;
      // Errors and hang-ups surface as a failed or empty recv below.
      if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && !Receive(i)) {
        return false;
      }
      if ((ev & EPOLLOUT) != 0 && !Send(i)) return false;
    }
    return true;
  }

  // One recv per readiness event (level-triggered: anything left is
  // reported again); a reply of a few dozen bytes arrives in one piece.
  bool Receive(size_t index) {
    Connection& c = connections_[index];
    char buffer[4096];
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return true;
      }
      return FailConnection(index,
                            std::string("recv: ") + std::strerror(errno));
    }
    if (n == 0) return FailConnection(index, "closed by the server");
    if (c.sent < request_.size()) {
      return FailConnection(index, "data before the request was complete");
    }
    c.received.append(buffer, static_cast<size_t>(n));
    std::string_view payload;
    size_t consumed = 0;
    std::string error;
    switch (ParseNetstring(c.received, options_.max_reply, &payload, &consumed,
                           &error)) {
      case Parse::kNeedMore:
        return true;
      case Parse::kMalformed:
        return FailConnection(index, "malformed reply (" + error + "): \"" +
                                         Escape(c.received) + "\"");
      case Parse::kComplete:
        break;
    }
    // Closed loop: the server may only answer what was asked. Bytes after
    // the reply would be a second answer to one request.
    if (consumed != c.received.size()) {
      return FailConnection(
          index, "data after the reply: \"" + Escape(c.received) + "\"");
    }
    const Clock::time_point now = Clock::now();
    if (!have_first_reply_) {
      first_reply_ = std::string(payload);
      have_first_reply_ = true;
    }
    if (now >= sample_start_ && now < sample_end_) {
      latencies_ns_.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.start)
              .count());
      ++status_counts_[StatusIndex(payload)];
    }
    return StartRequest(index, now);
  }

  int Report() {
    std::vector<int64_t>& v = latencies_ns_;
    std::sort(v.begin(), v.end());
    // Nearest rank: the smallest latency with at least p of the sample at
    // or below it.
    auto percentile_ms = [&v](double p) {
      if (v.empty()) return 0.0;
      size_t rank = static_cast<size_t>(std::ceil(p * v.size()));
      rank = std::clamp<size_t>(rank, 1, v.size());
      return static_cast<double>(v[rank - 1]) / 1e6;
    };
    std::string replies;
    for (size_t i = 0; i <= kOther; ++i) {
      if (status_counts_[i] == 0) continue;
      if (!replies.empty()) replies += ',';
      replies += std::string(i == kOther ? "other" : kStatuses[i]) + ":" +
                 std::to_string(status_counts_[i]);
    }
    if (replies.empty()) replies = "none";
    std::printf(
        "socketmap: target=%s connections=%d seconds=%g rps=%.0f "
        "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f replies=%s first_reply=\"%s\"\n",
        options_.target.c_str(), options_.connections, options_.seconds,
        static_cast<double>(v.size()) / options_.seconds, percentile_ms(0.50),
        percentile_ms(0.99), v.empty() ? 0.0 : v.back() / 1e6, replies.c_str(),
        Escape(first_reply_).c_str());
    std::fflush(stdout);
    if (v.empty()) {
      std::fprintf(stderr, "socketmap_load: %s: no reply in the sample\n",
                   options_.target.c_str());
      return 1;
    }
    return 0;
  }

  const Options& options_;
  const std::string request_;  // the request as a netstring
  std::vector<Connection> connections_;
  std::vector<epoll_event> events_;
  int epoll_fd_ = -1;
  Clock::time_point sample_start_, sample_end_;
  std::vector<int64_t> latencies_ns_;
  std::array<uint64_t, kOther + 1> status_counts_{};
  std::string first_reply_;
  bool have_first_reply_ = false;
};

}  // namespace
}  // namespace mxpolicy::bench

int main(int argc, char** argv) {
  mxpolicy::bench::Options options;
  if (!mxpolicy::bench::ParseFlags(argc, argv, &options)) {
    std::fputs(mxpolicy::bench::kUsage, stderr);
    return 2;
  }
  mxpolicy::bench::LoadRun run(options);
  return run.Run();
}
