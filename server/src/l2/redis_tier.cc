#include "server/src/l2/redis_tier.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/src/l2/codec.h"

namespace mxpolicy {
namespace {

absl::StatusOr<std::string> PercentDecode(absl::string_view in,
                                          absl::string_view what) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    int value = 0;
    if (i + 2 >= in.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis URL: truncated %-escape in the ", what));
    }
    for (size_t j = i + 1; j <= i + 2; ++j) {
      const char c = in[j];
      int digit = 0;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("redis URL: bad %-escape in the ", what));
      }
      value = value * 16 + digit;
    }
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

// A socket timeout for the time left until `deadline`, at least 1 ms (0
// would mean "no timeout" to setsockopt).
timeval TimeLeft(absl::Time deadline) {
  return absl::ToTimeval(
      std::max(deadline - absl::Now(), absl::Milliseconds(1)));
}

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

absl::string_view ReplyText(const redisReply& reply) {
  return reply.str == nullptr ? absl::string_view()
                              : absl::string_view(reply.str, reply.len);
}

bool IsOkStatus(const redisReply& reply) {
  return reply.type == REDIS_REPLY_STATUS && ReplyText(reply) == "OK";
}

// hiredis writes with write(2): a peer that went away would raise SIGPIPE
// and kill the process. Worker threads block it, so write fails with EPIPE
// instead; the pending signal is consumed here.
void ConsumePendingSigpipe() {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  const timespec zero{};
  while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
  }
}

// A decoded get result: counted as a hit and handed to `done`, or the
// decoder's error returned for the caller to count and complete.
template <typename T, typename Callback>
absl::Status Deliver(absl::StatusOr<T> value, std::atomic<uint64_t>& hits,
                     Callback& done) {
  if (!value.ok()) return value.status();
  hits.fetch_add(1);
  std::move(done)(*std::move(value));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url) {
  constexpr absl::string_view kScheme = "redis://";
  if (absl::StartsWithIgnoreCase(url, "rediss://")) {
    return absl::InvalidArgumentError(
        "redis URL: rediss:// (TLS) is not supported: hiredis 0.14 (Debian 12) "
        "has no TLS; use redis:// on a trusted network or a local TLS tunnel");
  }
  if (!absl::StartsWithIgnoreCase(url, kScheme)) {
    // The URL is not echoed: it may carry a password.
    return absl::InvalidArgumentError(
        "redis URL: expected redis://[[user]:password@]host[:port][/db]");
  }
  absl::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "redis URL: query strings and fragments are not supported");
  }
  // No error below quotes the URL: without its '@' (a typo), the password
  // would be read as a port, a database or a host.
  RedisEndpoint endpoint;
  // Userinfo ends at the last '@' before the path.
  const size_t at = rest.rfind('@');
  const bool has_userinfo = at != absl::string_view::npos;
  if (has_userinfo) {
    const absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    absl::StatusOr<std::string> user =
        PercentDecode(userinfo.substr(0, colon), "user");
    if (!user.ok()) return user.status();
    if (colon == absl::string_view::npos) {
      // "user@": the password comes from elsewhere (Options::password).
      if (user->empty()) {
        return absl::InvalidArgumentError("redis URL: empty userinfo");
      }
      endpoint.user = *std::move(user);
    } else {
      absl::StatusOr<std::string> password =
          PercentDecode(userinfo.substr(colon + 1), "password");
      if (!password.ok()) return password.status();
      if (password->empty()) {
        return absl::InvalidArgumentError("redis URL: empty password");
      }
      endpoint.user = *std::move(user);
      endpoint.password = *std::move(password);
    }
  }
  absl::string_view hostport = rest;
  const size_t slash = rest.find('/');
  if (slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    const absl::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      const bool digits = db.size() <= 9 &&
                          std::all_of(db.begin(), db.end(), [](char c) {
                            return absl::ascii_isdigit(
                                static_cast<unsigned char>(c));
                          });
      if (!digits || !absl::SimpleAtoi(db, &endpoint.db)) {
        return absl::InvalidArgumentError(
            "redis URL: the database (after '/') is not a number");
      }
    }
  }
  absl::string_view port;
  if (absl::StartsWith(hostport, "[")) {
    const size_t close = hostport.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("redis URL: unclosed '[' in host");
    }
    endpoint.host = std::string(hostport.substr(1, close - 1));
    const absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return absl::InvalidArgumentError("redis URL: junk after ']'");
      }
      port = after.substr(1);
      if (port.empty()) {
        return absl::InvalidArgumentError("redis URL: empty port");
      }
    }
  } else {
    const size_t colon = hostport.find(':');
    endpoint.host = std::string(hostport.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port = hostport.substr(colon + 1);
      if (port.empty()) {
        return absl::InvalidArgumentError("redis URL: empty port");
      }
    }
  }
  if (endpoint.host.empty()) {
    return absl::InvalidArgumentError("redis URL: no host");
  }
  for (char c : endpoint.host) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '.' && c != '-' && c != ':' &&
        c != '_') {
      return absl::InvalidArgumentError(
          "redis URL: bad character in the host (letters, digits, '.', "
          "'-', '_'; an IPv6 address in brackets)");
    }
  }
  if (!port.empty()) {
    const bool digits = port.size() <= 5 &&
                        std::all_of(port.begin(), port.end(), [](char c) {
                          return absl::ascii_isdigit(
                              static_cast<unsigned char>(c));
                        });
    if (!digits || !absl::SimpleAtoi(port, &endpoint.port) ||
        endpoint.port < 1 || endpoint.port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "redis URL: the port is not a number in 1-65535",
          has_userinfo ? "" : " (a password needs an '@' after it)"));
    }
  }
  return endpoint;
}

// One worker's connection, its back-off, and the command helper. Used by its
// worker thread only.
class RedisTier::Connection {
 public:
  explicit Connection(RedisTier* tier)
      : tier_(tier), backoff_(tier->options_.min_backoff) {}
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return ctx_ != nullptr; }
  // While not connected: when the next attempt may be made.
  absl::Time retry_at() const { return retry_at_; }

  // Connects, AUTHs and SELECTs within `deadline`. false: failed, counted,
  // and the back-off started.
  bool Connect(absl::Time deadline) {
    const RedisEndpoint& ep = tier_->endpoint_;
    redisContext* ctx =
        redisConnectWithTimeout(ep.host.c_str(), ep.port, TimeLeft(deadline));
    if (ctx == nullptr || ctx->err != 0) {
      std::string text = absl::StrCat(
          "redis connect to ", ep.host, ":", ep.port, ": ",
          ctx == nullptr ? "out of memory" : ctx->errstr);
      if (ctx != nullptr) redisFree(ctx);
      ConnectFailed(std::move(text));
      return false;
    }
    ctx_ = ctx;
    if (!ep.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!ep.user.empty()) auth.push_back(ep.user);
      auth.push_back(ep.password);
      Reply reply = Command(deadline, auth);
      if (reply == nullptr) return CommandFailedWhileConnecting();
      if (!IsOkStatus(*reply)) {
        ConnectFailed(absl::StrCat("redis AUTH refused: ", ReplyText(*reply)));
        return false;
      }
    }
    if (ep.db != 0) {
      Reply reply = Command(deadline, {"SELECT", absl::StrCat(ep.db)});
      if (reply == nullptr) return CommandFailedWhileConnecting();
      if (!IsOkStatus(*reply)) {
        ConnectFailed(absl::StrCat("redis SELECT ", ep.db,
                                   " refused: ", ReplyText(*reply)));
        return false;
      }
    }
    if (ep.password.empty() && ep.db == 0) {
      // Nothing was asked of the server yet: a stopped (SIGSTOP) Redis still
      // completes TCP handshakes in the kernel. Only an answer proves it up.
      Reply reply = Command(deadline, {"PING"});
      if (reply == nullptr) return CommandFailedWhileConnecting();
      if (reply->type == REDIS_REPLY_ERROR) {
        ConnectFailed(absl::StrCat("redis PING refused: ", ReplyText(*reply)));
        return false;
      }
    }
    backoff_ = tier_->options_.min_backoff;
    if (failed_before_) tier_->counters_.reconnects.fetch_add(1);
    failed_before_ = false;
    return true;
  }

  // Runs one command within `deadline`. nullptr: the connection failed (I/O
  // error, timeout, protocol error); it is closed, the back-off started and
  // last_error set. Error replies are returned as replies.
  Reply Command(absl::Time deadline, const std::vector<std::string>& args) {
    if (redisSetTimeout(ctx_, TimeLeft(deadline)) != REDIS_OK) {
      Drop(absl::StrCat("redis: cannot set the socket timeout: ",
                        ctx_->errstr));
      return nullptr;
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    void* raw = redisCommandArgv(ctx_, static_cast<int>(argv.size()),
                                 argv.data(), lens.data());
    if (raw == nullptr) {
      ConsumePendingSigpipe();
      const bool timed_out = absl::Now() >= deadline;
      Drop(absl::StrCat("redis ", args[0], ": ",
                        timed_out ? "timed out: " : "", ctx_->errstr));
      return nullptr;
    }
    return Reply(static_cast<redisReply*>(raw));
  }

 private:
  void Close() {
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
  }

  // Closes the connection and schedules the next attempt.
  void Drop(std::string text) {
    Close();
    retry_at_ = absl::Now() + backoff_;
    backoff_ = std::min(backoff_ * 2, tier_->options_.max_backoff);
    failed_before_ = true;
    if (!text.empty()) tier_->SetLastError(std::move(text));
  }

  // Command() already dropped the connection and said why.
  bool CommandFailedWhileConnecting() {
    tier_->counters_.connect_failures.fetch_add(1);
    return false;
  }

  void ConnectFailed(std::string text) {
    tier_->counters_.connect_failures.fetch_add(1);
    Drop(std::move(text));
  }

  RedisTier* const tier_;
  redisContext* ctx_ = nullptr;
  absl::Time retry_at_ = absl::InfinitePast();
  absl::Duration backoff_;
  bool failed_before_ = false;
};

absl::StatusOr<std::unique_ptr<RedisTier>> RedisTier::Create(
    const Options& options) {
  absl::StatusOr<RedisEndpoint> endpoint = ParseRedisUrl(options.url);
  if (!endpoint.ok()) return endpoint.status();
  if (!options.password.empty()) endpoint->password = options.password;
  if (!endpoint->user.empty() && endpoint->password.empty()) {
    return absl::InvalidArgumentError(
        "redis URL: a user without a password (give user:password@, or "
        "user@ and the password apart)");
  }
  if (!options.hmac_key.empty() && options.hmac_key.size() < 16) {
    // Not quoted: it is a secret.
    return absl::InvalidArgumentError(
        "redis tier: the HMAC key must have at least 16 bytes");
  }
  if (options.timeout <= absl::ZeroDuration() || options.workers < 1 ||
      options.workers > 64 || options.max_queue < 1 ||
      options.min_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.min_backoff) {
    return absl::InvalidArgumentError(
        "redis tier: timeout and back-offs must be positive (max_backoff >= "
        "min_backoff), 1-64 workers, a queue of at least 1");
  }
  return std::unique_ptr<RedisTier>(
      new RedisTier(options, *std::move(endpoint)));
}

RedisTier::RedisTier(const Options& options, RedisEndpoint endpoint)
    : options_(options), endpoint_(std::move(endpoint)) {
  for (int i = 0; i < options_.workers; ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
}

RedisTier::~RedisTier() { Stop(); }

void RedisTier::Stop() {
  std::deque<Op> left;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      // A callback run by this Stop() (same thread) must not wait for it.
      if (stopper_ == std::this_thread::get_id()) return;
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    stopping_ = true;
    stopping_flag_.store(true);
    stopper_ = std::this_thread::get_id();
    left.swap(queue_);
  }
  // No lock held: these callbacks may call the tier, which now refuses
  // everything inline.
  for (Op& op : left) Fail(op, counters_.dropped);
  // Workers see stopping_ before taking more work; one in a command waits
  // for it, at most until the op's deadline.
  for (std::thread& t : threads_) t.join();
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

absl::Time RedisTier::ClockNow() const {
  return (options_.clock != nullptr ? options_.clock : &real_clock_)->Now();
}

void RedisTier::SetLastError(std::string text) {
  absl::MutexLock lock(&error_mu_);
  last_error_ = std::move(text);
}

std::string RedisTier::last_error() const {
  absl::MutexLock lock(&error_mu_);
  return last_error_;
}

bool RedisTier::HasWorkOrStopping() const {
  return stopping_ || !queue_.empty();
}

absl::string_view RedisTier::KindName(Op::Kind kind) {
  switch (kind) {
    case Op::Kind::kGetPolicy:
      return "get policy";
    case Op::Kind::kGetDecision:
      return "get decision";
    case Op::Kind::kPut:
      return "put";
    case Op::Kind::kForget:
      return "forget";
  }
  return "operation";
}

void RedisTier::Fail(Op& op, std::atomic<uint64_t>& counter) {
  counter.fetch_add(1);
  if (op.policy_done) std::move(op.policy_done)(std::nullopt);
  if (op.decision_done) std::move(op.decision_done)(std::nullopt);
}

void RedisTier::NoteRefused(absl::string_view what, absl::string_view domain,
                            absl::string_view why) {
  SetLastError(absl::StrCat("redis tier: ", what, " of \"",
                            absl::CHexEscape(domain.substr(0, 80)),
                            "\" refused: ", why));
}

void RedisTier::Enqueue(Op op) {
  // Checked first: after Stop() nothing is counted as an error or noted.
  if (stopping_flag_.load()) return Fail(op, counters_.dropped);
  if (!l2::IsKeySafeDomain(op.domain)) {
    NoteRefused(KindName(op.kind), op.domain, "not a normalised domain");
    return Fail(op, counters_.errors);
  }
  op.deadline = absl::Now() + options_.timeout;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && queue_.size() < options_.max_queue) {
      queue_.push_back(std::move(op));
      return;
    }
  }
  Fail(op, counters_.dropped);
}

void RedisTier::GetPolicy(std::string domain, PolicyCallback done) {
  Op op;
  op.kind = Op::Kind::kGetPolicy;
  op.domain = std::move(domain);
  op.policy_done = std::move(done);
  Enqueue(std::move(op));
}

void RedisTier::GetDecision(std::string domain, DecisionCallback done) {
  Op op;
  op.kind = Op::Kind::kGetDecision;
  op.domain = std::move(domain);
  op.decision_done = std::move(done);
  Enqueue(std::move(op));
}

void RedisTier::PutPolicy(std::string domain, StoredPolicy policy) {
  if (stopping_flag_.load()) return;
  std::string key = l2::PolicyKey(domain);
  Put(std::move(domain), std::move(key), "policy", policy.expires_at,
      l2::EncodePolicy(policy));
}

void RedisTier::PutDecision(std::string domain, StoredDecision decision) {
  if (stopping_flag_.load()) return;
  std::string key = l2::DecisionKey(domain);
  Put(std::move(domain), std::move(key), "decision", decision.expires_at,
      l2::EncodeDecision(decision));
}

void RedisTier::Put(std::string domain, std::string key,
                    absl::string_view what, absl::Time expires_at,
                    absl::StatusOr<std::string> value) {
  if (expires_at <= ClockNow()) return;
  if (!value.ok()) {
    counters_.errors.fetch_add(1);
    NoteRefused(absl::StrCat("put ", what), domain, value.status().message());
    return;
  }
  if (!options_.hmac_key.empty()) {
    value = l2::SealValue(options_.hmac_key, key, *value);
    if (!value.ok()) {
      counters_.errors.fetch_add(1);
      NoteRefused(absl::StrCat("put ", what), domain,
                  value.status().message());
      return;
    }
  }
  Op op;
  op.kind = Op::Kind::kPut;
  op.domain = std::move(domain);
  op.key = std::move(key);
  op.value = *std::move(value);
  op.expires_at = expires_at;
  Enqueue(std::move(op));
}

void RedisTier::Forget(std::string domain) {
  if (stopping_flag_.load()) return;
  Op op;
  op.kind = Op::Kind::kForget;
  op.domain = std::move(domain);
  Enqueue(std::move(op));
}

RedisTier::Stats RedisTier::stats() const {
  Stats s;
  s.policy_hits = counters_.policy_hits.load();
  s.policy_misses = counters_.policy_misses.load();
  s.decision_hits = counters_.decision_hits.load();
  s.decision_misses = counters_.decision_misses.load();
  s.errors = counters_.errors.load();
  s.timeouts = counters_.timeouts.load();
  s.dropped = counters_.dropped.load();
  s.unavailable = counters_.unavailable.load();
  s.connect_failures = counters_.connect_failures.load();
  s.reconnects = counters_.reconnects.load();
  return s;
}

void RedisTier::WorkerLoop() {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);

  Connection conn(this);
  for (;;) {
    std::optional<Op> op;
    {
      absl::MutexLock lock(&mu_);
      const absl::Condition ready(this, &RedisTier::HasWorkOrStopping);
      if (conn.connected()) {
        mu_.Await(ready);
      } else {
        // Reconnect by itself when the back-off ends, even with no traffic,
        // so that the first request after an outage already hits.
        mu_.AwaitWithTimeout(ready, conn.retry_at() - absl::Now());
      }
      if (stopping_) return;
      if (!queue_.empty()) {
        op.emplace(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (op.has_value()) {
      Run(conn, *op);
    } else if (!conn.connected() && absl::Now() >= conn.retry_at()) {
      conn.Connect(absl::Now() + options_.timeout);
    }
  }
}

void RedisTier::Run(Connection& conn, Op& op) {
  // Exactly one outcome counter per operation; gets always complete.
  auto fail = [&op](std::atomic<uint64_t>& counter) { Fail(op, counter); };
  // Taken just before Stop(): not sent, so Stop() waits for no new command.
  if (stopping_flag_.load()) return fail(counters_.dropped);
  if (absl::Now() >= op.deadline) return fail(counters_.timeouts);
  if (!conn.connected()) {
    if (absl::Now() < conn.retry_at()) return fail(counters_.unavailable);
    if (!conn.Connect(op.deadline)) {
      return fail(absl::Now() >= op.deadline ? counters_.timeouts
                                             : counters_.unavailable);
    }
  }

  std::vector<std::string> command;
  const size_t tag_bytes = options_.hmac_key.empty() ? 0 : l2::kMacBytes;
  switch (op.kind) {
    // GETRANGE, not GET: whatever sits at the key, no more than the largest
    // valid value (with its tag, if any) crosses the wire or lands in
    // memory. The end offset is inclusive, so one byte more is read and an
    // oversized value fails the tag or length check. A missing key reads
    // as "".
    case Op::Kind::kGetPolicy:
      command = {"GETRANGE", l2::PolicyKey(op.domain), "0",
                 absl::StrCat(l2::kMaxHeaderBytes + l2::kMaxIdBytes +
                              l2::kMaxPolicyBodyBytes + tag_bytes)};
      break;
    case Op::Kind::kGetDecision:
      command = {"GETRANGE", l2::DecisionKey(op.domain), "0",
                 absl::StrCat(l2::kMaxHeaderBytes + l2::kMaxDecisionBytes +
                              tag_bytes)};
      break;
    case Op::Kind::kPut: {
      // PX from the time left now, so queueing does not extend the life.
      const int64_t px =
          absl::ToInt64Milliseconds(op.expires_at - ClockNow());
      if (px <= 0) return;
      command = {"SET", op.key, std::move(op.value), "PX", absl::StrCat(px)};
      break;
    }
    case Op::Kind::kForget:
      command = {"DEL", l2::PolicyKey(op.domain), l2::DecisionKey(op.domain)};
      break;
  }
  Reply reply = conn.Command(op.deadline, command);
  if (reply == nullptr) {
    return fail(absl::Now() >= op.deadline ? counters_.timeouts
                                           : counters_.errors);
  }
  const std::string& key = command[1];
  if (reply->type == REDIS_REPLY_ERROR) {
    SetLastError(absl::StrCat("redis ", command[0], " ", key, ": ",
                              ReplyText(*reply)));
    return fail(counters_.errors);
  }
  switch (op.kind) {
    case Op::Kind::kGetPolicy:
    case Op::Kind::kGetDecision: {
      const bool policy = op.kind == Op::Kind::kGetPolicy;
      if (reply->type == REDIS_REPLY_NIL ||
          (reply->type == REDIS_REPLY_STRING && reply->len == 0)) {
        return fail(policy ? counters_.policy_misses
                           : counters_.decision_misses);
      }
      if (reply->type != REDIS_REPLY_STRING) {
        SetLastError(absl::StrCat("redis GETRANGE ", key, ": reply of type ",
                                  reply->type, ", not a string"));
        return fail(counters_.errors);
      }
      const absl::Status decoded =
          DecodeAndDeliver(op, key, ReplyText(*reply));
      if (!decoded.ok()) {
        SetLastError(
            absl::StrCat("redis GETRANGE ", key, ": ", decoded.message()));
        return fail(counters_.errors);
      }
      return;
    }
    case Op::Kind::kPut:
      if (!IsOkStatus(*reply)) {
        SetLastError(absl::StrCat("redis SET ", key, ": unexpected reply"));
        counters_.errors.fetch_add(1);
      }
      return;
    case Op::Kind::kForget:
      return;
  }
}

absl::Status RedisTier::DecodeAndDeliver(Op& op, absl::string_view key,
                                         absl::string_view text) {
  if (!options_.hmac_key.empty()) {
    // Before any parsing: a value without a valid tag is not looked at.
    absl::StatusOr<absl::string_view> opened =
        l2::OpenValue(options_.hmac_key, key, text);
    if (!opened.ok()) return opened.status();
    text = *opened;
  }
  const absl::Time now = ClockNow();
  if (op.kind == Op::Kind::kGetPolicy) {
    return Deliver(l2::DecodePolicy(text, now), counters_.policy_hits,
                   op.policy_done);
  }
  return Deliver(l2::DecodeDecision(text, now), counters_.decision_hits,
                 op.decision_done);
}

}  // namespace mxpolicy
