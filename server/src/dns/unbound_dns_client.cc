#include "server/src/dns/unbound_dns_client.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unbound.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mxpolicy {

struct UnboundDnsClient::Query {
  std::string name;
  RrType type;
  Callback done;
  int async_id = 0;
  UnboundDnsClient* client = nullptr;
};

namespace {

constexpr int kClassIn = 1;
constexpr int kRcodeNxDomain = 3;

// Reads an uncompressed wire-format name starting at data[*pos]; advances
// *pos. Returns the name lowercased in presentation form without the final
// dot ("" for the root); bytes outside [a-z0-9-_] are written as \DDD so that
// hostile labels (spaces, dots, control bytes) can never pass an LDH check.
std::optional<std::string> ReadName(absl::string_view data, size_t* pos) {
  std::string out;
  size_t total = 0;
  while (true) {
    if (*pos >= data.size()) return std::nullopt;
    const uint8_t len = data[*pos];
    ++*pos;
    if (len == 0) break;
    if (len > 63) return std::nullopt;  // compression pointers not allowed here
    if (*pos + len > data.size()) return std::nullopt;
    total += len + 1;
    if (total > 255) return std::nullopt;
    if (!out.empty()) out.push_back('.');
    for (size_t i = 0; i < len; ++i) {
      const unsigned char c = absl::ascii_tolower(data[*pos + i]);
      if (absl::ascii_isalnum(c) || c == '-' || c == '_') {
        out.push_back(static_cast<char>(c));
      } else {
        absl::StrAppendFormat(&out, "\\%03d", c);
      }
    }
    *pos += len;
  }
  return out;
}

// Parses one RDATA of `type` into `answer`; false when malformed.
bool ParseRdata(RrType type, absl::string_view rdata, DnsAnswer& answer) {
  size_t pos = 0;
  switch (type) {
    case RrType::kA:
    case RrType::kAaaa: {
      const bool v4 = type == RrType::kA;
      if (rdata.size() != (v4 ? 4u : 16u)) return false;
      char buf[INET6_ADDRSTRLEN];
      if (inet_ntop(v4 ? AF_INET : AF_INET6, rdata.data(), buf, sizeof buf) ==
          nullptr) {
        return false;
      }
      answer.addresses.emplace_back(buf);
      return true;
    }
    case RrType::kMx: {
      if (rdata.size() < 3) return false;
      MxRecord mx;
      mx.preference =
          static_cast<uint16_t>((static_cast<uint8_t>(rdata[0]) << 8) |
                                static_cast<uint8_t>(rdata[1]));
      pos = 2;
      std::optional<std::string> name = ReadName(rdata, &pos);
      if (!name || pos != rdata.size()) return false;
      mx.exchange = *std::move(name);
      answer.mx.push_back(std::move(mx));
      return true;
    }
    case RrType::kCname: {
      std::optional<std::string> name = ReadName(rdata, &pos);
      if (!name || pos != rdata.size()) return false;
      answer.cname.push_back(*std::move(name));
      return true;
    }
    case RrType::kTxt: {
      TxtRecord txt;
      while (pos < rdata.size()) {
        const uint8_t len = rdata[pos++];
        if (pos + len > rdata.size()) return false;
        txt.strings.emplace_back(rdata.substr(pos, len));
        pos += len;
      }
      if (txt.strings.empty()) return false;
      answer.txt.push_back(std::move(txt));
      return true;
    }
    case RrType::kTlsa: {
      if (rdata.size() < 3) return false;
      TlsaRecord tlsa;
      tlsa.usage = rdata[0];
      tlsa.selector = rdata[1];
      tlsa.matching_type = rdata[2];
      tlsa.data = std::string(rdata.substr(3));
      answer.tlsa.push_back(std::move(tlsa));
      return true;
    }
  }
  return false;
}

std::string RcodeName(int rcode) {
  switch (rcode) {
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default:
      return absl::StrCat("rcode ", rcode);
  }
}

std::string Normalize(absl::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return absl::AsciiStrToLower(name);
}

}  // namespace

DnsAnswer ParseUnboundResult(absl::string_view qname, RrType qtype,
                             const ub_result& result) {
  DnsAnswer answer;
  answer.qname = Normalize(qname);
  answer.qtype = qtype;
  answer.rcode = result.rcode;
  answer.canonical_name =
      result.canonname != nullptr ? Normalize(result.canonname) : answer.qname;
  answer.ttl = absl::Seconds(result.ttl > 0 ? result.ttl : 0);

  // Bogus first: libunbound hands forged data over with rcode NOERROR.
  if (result.bogus) {
    answer.outcome = DnsOutcome::kError;
    answer.dnssec = DnssecState::kBogus;
    answer.error = result.why_bogus != nullptr
                       ? std::string(result.why_bogus)
                       : std::string("DNSSEC validation failed");
    return answer;
  }
  if (result.rcode != 0 && result.rcode != kRcodeNxDomain) {
    answer.outcome = DnsOutcome::kError;
    answer.dnssec = DnssecState::kIndeterminate;
    answer.error = RcodeName(result.rcode);
    return answer;
  }
  answer.dnssec = result.secure ? DnssecState::kSecure : DnssecState::kInsecure;
  if (result.nxdomain) {
    answer.outcome = DnsOutcome::kNxDomain;
    return answer;
  }
  if (!result.havedata) {
    answer.outcome = DnsOutcome::kNoData;
    return answer;
  }
  answer.outcome = DnsOutcome::kData;
  for (int i = 0; result.data != nullptr && result.data[i] != nullptr; ++i) {
    if (result.len[i] < 0 ||
        !ParseRdata(qtype, absl::string_view(result.data[i], result.len[i]),
                    answer)) {
      // Hostile or broken data: never half-parse an RRset.
      answer.outcome = DnsOutcome::kError;
      answer.error = absl::StrCat("malformed ", RrTypeName(qtype), " record");
      answer.addresses.clear();
      answer.mx.clear();
      answer.txt.clear();
      answer.tlsa.clear();
      answer.cname.clear();
      return answer;
    }
  }
  return answer;
}

absl::StatusOr<std::unique_ptr<UnboundDnsClient>> UnboundDnsClient::Create(
    const Options& options) {
  for (const std::string& file :
       {options.unbound_config_file, options.trust_anchor_file}) {
    if (!file.empty() && !std::ifstream(file).good()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read ", file, ": ", std::strerror(errno)));
    }
  }
  ub_ctx* ctx = ub_ctx_create();
  if (ctx == nullptr) return absl::InternalError("ub_ctx_create failed");
  auto fail = [ctx](absl::StatusCode code, absl::string_view what, int err) {
    ub_ctx_delete(ctx);
    return absl::Status(code, absl::StrCat(what, ": ", ub_strerror(err)));
  };
  if (int err = ub_ctx_async(ctx, /*dothread=*/1); err != 0) {
    return fail(absl::StatusCode::kInternal, "ub_ctx_async", err);
  }
  // Defaults first, so that the operator's config file can override them.
  if (int err = ub_ctx_set_option(ctx, "qname-minimisation:",
                                  options.qname_minimisation ? "yes" : "no");
      err != 0) {
    return fail(absl::StatusCode::kInternal, "qname-minimisation", err);
  }
  if (!options.unbound_config_file.empty()) {
    if (int err = ub_ctx_config(ctx, options.unbound_config_file.c_str());
        err != 0) {
      return fail(absl::StatusCode::kInvalidArgument,
                  absl::StrCat("unbound config ", options.unbound_config_file),
                  err);
    }
  }
  if (!options.trust_anchor_file.empty()) {
    if (int err = ub_ctx_add_ta_file(ctx, options.trust_anchor_file.c_str());
        err != 0) {
      return fail(absl::StatusCode::kInvalidArgument,
                  absl::StrCat("trust anchor ", options.trust_anchor_file),
                  err);
    }
  }
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    ub_ctx_delete(ctx);
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<UnboundDnsClient>(
      new UnboundDnsClient(ctx, wake_fd, options.timeout));
}

UnboundDnsClient::UnboundDnsClient(ub_ctx* ctx, int wake_fd,
                                   absl::Duration timeout)
    : ctx_(ctx), wake_fd_(wake_fd), timeout_(timeout) {
  thread_ = std::thread([this] { Run(); });
}

UnboundDnsClient::~UnboundDnsClient() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  thread_.join();
  ub_ctx_delete(ctx_);
  close(wake_fd_);
}

void UnboundDnsClient::Lookup(absl::string_view name, RrType type,
                              Callback done) {
  auto query = std::make_unique<Query>();
  query->name = std::string(name);
  query->type = type;
  query->done = std::move(done);
  query->client = this;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      pending_.push_back(std::move(query));
    }
  }
  if (query != nullptr) {  // not queued: shutting down
    std::move(query->done)(absl::UnavailableError("DNS client shutting down"));
    return;
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void UnboundDnsClient::Complete(Query* query,
                                absl::StatusOr<DnsAnswer> answer) {
  auto it = in_flight_.find(query);
  if (it == in_flight_.end()) return;
  std::unique_ptr<Query> owned = std::move(it->second);
  in_flight_.erase(it);
  std::move(owned->done)(std::move(answer));
}

void UnboundDnsClient::OnResult(void* mydata, int err, ub_result* result) {
  auto* query = static_cast<Query*>(mydata);
  absl::StatusOr<DnsAnswer> answer;
  if (err != 0 || result == nullptr) {
    answer = absl::InternalError(absl::StrCat("libunbound lookup ", query->name,
                                              "/", RrTypeName(query->type),
                                              ": ", ub_strerror(err)));
  } else {
    answer = ParseUnboundResult(query->name, query->type, *result);
  }
  if (result != nullptr) ub_resolve_free(result);
  query->client->Complete(query, std::move(answer));
}

void UnboundDnsClient::StartPending() {
  std::vector<std::unique_ptr<Query>> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(pending_);
  }
  const absl::Time deadline = absl::Now() + timeout_;
  for (std::unique_ptr<Query>& owned : batch) {
    Query* query = owned.get();
    in_flight_.emplace(query, std::move(owned));
    const std::string fqdn = absl::StrCat(query->name, ".");
    int err =
        ub_resolve_async(ctx_, fqdn.c_str(), static_cast<int>(query->type),
                         kClassIn, query, &OnResult, &query->async_id);
    if (err != 0) {
      Complete(query,
               absl::InternalError(absl::StrCat(
                   "ub_resolve_async ", query->name, ": ", ub_strerror(err))));
      continue;
    }
    deadlines_.emplace_back(deadline, query);
  }
}

void UnboundDnsClient::ExpireOverdue(absl::Time now) {
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    Query* query = deadlines_.front().second;
    deadlines_.pop_front();
    if (!in_flight_.contains(query)) continue;  // already answered
    ub_cancel(ctx_, query->async_id);
    Complete(query,
             absl::DeadlineExceededError(absl::StrCat(
                 "DNS lookup ", query->name, "/", RrTypeName(query->type),
                 " timed out after ", absl::FormatDuration(timeout_))));
  }
  // Drop entries of queries that were answered, so the deque stays small.
  while (!deadlines_.empty() &&
         !in_flight_.contains(deadlines_.front().second)) {
    deadlines_.pop_front();
  }
}

void UnboundDnsClient::Run() {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {ub_fd(ctx_), POLLIN, 0}};
  while (true) {
    int timeout_ms = -1;
    if (!deadlines_.empty()) {
      const absl::Duration left = deadlines_.front().first - absl::Now();
      timeout_ms = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(left) + 1));
    }
    const int n = poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      (void)!read(wake_fd_, &count, sizeof count);
    }
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    if (fds[1].revents & POLLIN) ub_process(ctx_);
    StartPending();
    ExpireOverdue(absl::Now());
  }
  // Shutdown: everything outstanding completes with UNAVAILABLE.
  std::vector<std::unique_ptr<Query>> rest;
  {
    absl::MutexLock lock(&mu_);
    rest.swap(pending_);
  }
  for (auto& [query, owned] : in_flight_) {
    ub_cancel(ctx_, query->async_id);
    rest.push_back(std::move(owned));
  }
  in_flight_.clear();
  deadlines_.clear();
  for (std::unique_ptr<Query>& query : rest) {
    std::move(query->done)(absl::UnavailableError("DNS client shutting down"));
  }
}

}  // namespace mxpolicy
