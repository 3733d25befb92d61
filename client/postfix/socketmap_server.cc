#include "client/postfix/socketmap_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace mxpolicy::postfix {
namespace {

// Set while a thread runs SocketmapServer::Run(): a completion arriving on
// that thread (a local cache hit answers inline) is filled in directly.
thread_local const void* loop_of_thread = nullptr;

constexpr uint64_t kListenTag = 0;
constexpr uint64_t kWakeTag = ~uint64_t{0};

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Binds and listens on `listen`; returns the fd and the bound port.
absl::StatusOr<std::pair<int, int>> Listen(const std::string& listen) {
  absl::string_view spec = listen;
  if (absl::ConsumePrefix(&spec, "unix:")) {
    sockaddr_un addr{};
    if (spec.empty() || spec.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen: bad Unix socket path in ", listen));
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, spec.data(), spec.size());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket");
    unlink(addr.sun_path);  // a stale socket file from a previous run
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd, SOMAXCONN) != 0) {
      absl::Status s = Errno(absl::StrCat("cannot listen on ", listen));
      close(fd);
      return s;
    }
    return std::make_pair(fd, 0);
  }
  // "host:port" or "[v6]:port"
  const size_t colon = spec.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(spec.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen: want HOST:PORT, [V6]:PORT or unix:PATH, got ", listen));
  }
  std::string host(spec.substr(0, colon));
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) port = -1;
    len = sizeof(*a6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) port = -1;
    len = sizeof(*a4);
  }
  if (port < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: not an IP address: ", listen));
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    absl::Status s = Errno(absl::StrCat("cannot listen on ", listen));
    close(fd);
    return s;
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(ss.ss_family == AF_INET6
                   ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return std::make_pair(fd, port);
}

}  // namespace

struct SocketmapServer::Connection {
  Connection(uint64_t id, int fd, size_t max_query)
      : id(id), fd(fd), decoder(max_query) {}
  const uint64_t id;
  const int fd;
  NetstringDecoder decoder;
  // Encoded replies owed, in request order; nullopt while the lookup runs.
  std::deque<std::optional<std::string>> slots;
  uint64_t first_seq = 0;  // seq of slots.front()
  std::string out;         // encoded replies; written up to out_offset
  size_t out_offset = 0;
  size_t owed() const { return out.size() - out_offset; }
  uint32_t mask = EPOLLIN | EPOLLRDHUP;  // registered epoll events
  bool closing = false;    // malformed input: close once replies are out
  absl::Time last_active;
};

absl::StatusOr<std::unique_ptr<SocketmapServer>> SocketmapServer::Create(
    const ServerOptions& options, Client& client) {
  absl::StatusOr<std::pair<int, int>> listening = Listen(options.listen);
  if (!listening.ok()) return listening.status();
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd < 0 || wake_fd < 0) {
    absl::Status s = Errno("epoll/eventfd");
    close(listening->first);
    if (epoll_fd >= 0) close(epoll_fd);
    if (wake_fd >= 0) close(wake_fd);
    return s;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listening->first, &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
  absl::string_view path = options.listen;
  std::string unix_path =
      absl::ConsumePrefix(&path, "unix:") ? std::string(path) : "";
  return std::unique_ptr<SocketmapServer>(
      new SocketmapServer(options, client, listening->first, epoll_fd, wake_fd,
                          listening->second, std::move(unix_path)));
}

SocketmapServer::SocketmapServer(const ServerOptions& options, Client& client,
                                 int listen_fd, int epoll_fd, int wake_fd,
                                 int port, std::string unix_path)
    : options_(options),
      client_(client),
      listen_fd_(listen_fd),
      epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      port_(port),
      unix_path_(std::move(unix_path)),
      last_sweep_(absl::Now()),
      memo_(options.memo_entries, options.memo_bytes) {}

SocketmapServer::~SocketmapServer() {
  // Lookups still running hold `this`; each ends by its deadline.
  absl::MutexLock lock(&done_mu_);
  done_mu_.AwaitWithTimeout(
      absl::Condition(
          +[](std::atomic<int>* n) { return n->load() == 0; }, &in_flight_),
      options_.deadline + absl::Seconds(5));
  for (auto& [id, c] : connections_) close(c->fd);
  close(listen_fd_);
  close(epoll_fd_);
  close(wake_fd_);
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
}

void SocketmapServer::Shutdown() {
  stop_.store(true);
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

SocketmapServer::Stats SocketmapServer::stats() const {
  return Stats{accepted_.load(), requests_.load(), malformed_.load()};
}

void SocketmapServer::Run() {
  loop_of_thread = this;
  epoll_event events[256];
  while (!stop_.load()) {
    const int n = epoll_wait(epoll_fd_, events, 256, 1000);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        Accept();
        continue;
      }
      if (tag == kWakeTag) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
        continue;
      }
      auto it = connections_.find(tag);
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        Close(c);
        continue;
      }
      if (events[i].events & EPOLLOUT) OnWritable(c);
      if ((events[i].events & (EPOLLIN | EPOLLRDHUP)) &&
          connections_.contains(tag)) {
        OnReadable(c);
      }
    }
    DrainDone();
    if (absl::Now() - last_sweep_ > absl::Seconds(1)) SweepIdle();
  }
  loop_of_thread = nullptr;
}

void SocketmapServer::Accept() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or an error the next event retries
    if (connections_.size() >= options_.max_connections) {
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails on Unix sockets: harmless
    const uint64_t id = next_id_++;
    auto c = std::make_unique<Connection>(id, fd, options_.max_query_bytes);
    c->last_active = absl::Now();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    connections_.emplace(id, std::move(c));
    accepted_.fetch_add(1, std::memory_order_relaxed);
  }
}

void SocketmapServer::OnReadable(Connection& c) {
  char buf[16384];
  // A client that sends without reading stops being read once this much is
  // owed to it (Flush reads on again when it has taken its replies).
  while (!c.closing && c.owed() < options_.max_buffered_reply_bytes) {
    const ssize_t n = read(c.fd, buf, sizeof(buf));
    if (n == 0) {  // EOF: send what is still owed, then close
      c.closing = true;
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      Close(c);
      return;
    }
    const absl::Time now = absl::Now();
    c.last_active = now;
    items_.clear();
    const absl::Status fed =
        c.decoder.Feed(absl::string_view(buf, static_cast<size_t>(n)), items_);
    const uint64_t id = c.id;
    for (NetstringDecoder::Item& item : items_) {
      if (item.oversized) {  // SPEC I6: a too-long query is "not found"
        Queue(c, EncodeNetstring(kNotFound));
        continue;
      }
      if (const std::string* memo = memo_.Find(item.payload, now)) {
        requests_.fetch_add(1, std::memory_order_relaxed);
        Queue(c, *memo);
        continue;
      }
      Handle(c, std::move(item.payload));
      if (!connections_.contains(id)) return;
    }
    if (!fed.ok() || c.slots.size() > options_.max_pending_per_connection) {
      // Answer what was well-formed, then close only this connection.
      malformed_.fetch_add(1, std::memory_order_relaxed);
      c.closing = true;
    }
    // A short read drained the socket: no second read() just to see EAGAIN
    // (a third of the syscalls of a closed-loop request); epoll is
    // level-triggered and reports whatever arrives next, EOF included.
    if (static_cast<size_t>(n) < sizeof(buf)) break;
  }
  Flush(c);
}

void SocketmapServer::Handle(Connection& c, std::string payload) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t seq = c.first_seq + c.slots.size();
  absl::StatusOr<Request> request = ParseRequest(payload);
  if (!request.ok()) {
    Queue(c, EncodeNetstring(
                 absl::StrCat("PERM mxpolicy: ", request.status().message())));
    return;
  }
  std::optional<std::string> domain = DomainForKey(request->key);
  if (!domain) {
    Queue(c, EncodeNetstring(kNotFound));
    return;
  }
  c.slots.emplace_back(std::nullopt);
  Lookup(c, seq, *std::move(domain), std::move(payload));
}

void SocketmapServer::Lookup(Connection& c, uint64_t seq, std::string domain,
                             std::string request) {
  in_flight_.fetch_add(1);
  client_.ResolveAsync(
      domain, options_.deadline,
      [this, id = c.id, seq, request = std::move(request)](
          absl::StatusOr<Policy> policy) mutable {
        Answer answer;
        if (policy.ok()) {
          answer.reply = PolicyReply(policy->response, options_.reply);
          answer.request = std::move(request);
          answer.fresh_until = policy->fresh_until;  // past when stale
        } else {
          answer.reply = FailureReply(policy.status());
        }
        if (loop_of_thread == this) {
          Fill(id, seq, std::move(answer));
        } else {
          {
            absl::MutexLock lock(&done_mu_);
            done_.push_back(Done{id, seq, std::move(answer)});
          }
          const uint64_t one = 1;
          (void)!write(wake_fd_, &one, sizeof(one));
        }
        absl::MutexLock lock(&done_mu_);  // wakes a waiting destructor
        in_flight_.fetch_sub(1);
      });
}

std::string SocketmapServer::FailureReply(const absl::Status& status) const {
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    return std::string(kNotFound);  // not a domain the service answers for
  }
  if (options_.unavailable_notfound) return std::string(kNotFound);
  return TempReply(absl::StrCat("mxpolicy service: ",
                                absl::StatusCodeToString(status.code()), ": ",
                                status.message()));
}

void SocketmapServer::DrainDone() {
  std::vector<Done> done;
  {
    absl::MutexLock lock(&done_mu_);
    done.swap(done_);
  }
  for (Done& d : done) Fill(d.connection, d.seq, std::move(d.answer));
}

void SocketmapServer::Queue(Connection& c, absl::string_view encoded) {
  if (c.slots.empty()) {
    c.out.append(encoded.data(), encoded.size());
  } else {
    c.slots.emplace_back(std::string(encoded));
  }
}

void SocketmapServer::Fill(uint64_t id, uint64_t seq, Answer answer) {
  std::string encoded = EncodeNetstring(answer.reply);
  memo_.Put(answer.request, encoded, answer.fresh_until, absl::Now());
  auto it = connections_.find(id);
  if (it == connections_.end()) return;  // closed meanwhile
  Connection& c = *it->second;
  if (seq < c.first_seq || seq - c.first_seq >= c.slots.size()) return;
  c.slots[seq - c.first_seq] = std::move(encoded);
  Flush(c);
}

void SocketmapServer::Flush(Connection& c) {
  while (!c.slots.empty() && c.slots.front().has_value()) {
    c.out += *c.slots.front();
    c.slots.pop_front();
    ++c.first_seq;
  }
  while (c.out_offset < c.out.size()) {
    const ssize_t n = write(c.fd, c.out.data() + c.out_offset,
                            c.out.size() - c.out_offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        Close(c);
        return;
      }
      break;
    }
    c.out_offset += static_cast<size_t>(n);
  }
  if (c.out_offset == c.out.size()) {
    if (c.out.capacity() > 65536) {
      std::string().swap(c.out);  // a burst is over: give its memory back
    } else {
      c.out.clear();
    }
    c.out_offset = 0;
  } else if (c.out_offset >= 65536) {  // a slow reader: drop what it took
    c.out.erase(0, c.out_offset);
    c.out_offset = 0;
  }
  if (c.closing && c.slots.empty() && c.out.empty()) {
    Close(c);
    return;
  }
  // Closing: stop reading (EOF or malformed input stays signalled) and
  // wait for the owed replies only.
  const bool reading =
      !c.closing && c.owed() < options_.max_buffered_reply_bytes;
  const uint32_t mask = (reading ? EPOLLIN | EPOLLRDHUP : 0u) |
                        (c.out.empty() ? 0u : EPOLLOUT);
  if (mask != c.mask) {
    c.mask = mask;
    epoll_event ev{};
    ev.events = mask;
    ev.data.u64 = c.id;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  }
}

void SocketmapServer::OnWritable(Connection& c) { Flush(c); }

void SocketmapServer::Close(Connection& c) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  connections_.erase(c.id);  // destroys c
}

void SocketmapServer::SweepIdle() {
  const absl::Time now = absl::Now();
  last_sweep_ = now;
  std::vector<uint64_t> idle;
  for (auto& [id, c] : connections_) {
    if (c->slots.empty() && now - c->last_active > options_.idle_timeout) {
      idle.push_back(id);
    }
  }
  for (uint64_t id : idle) Close(*connections_.at(id));
}

}  // namespace mxpolicy::postfix
