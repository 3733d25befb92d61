#include "server/src/resolver/policy_fetcher.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/src/log/log.h"

namespace mxpolicy {
namespace {

bool IsTlsError(FetchError e) {
  return e == FetchError::kTlsNameMismatch || e == FetchError::kTlsExpired ||
         e == FetchError::kTlsUntrusted || e == FetchError::kTlsOther;
}

constexpr const char* kFailureKinds[] = {
    "policy_host_no_address", "https_connect",  "https_timeout",
    "https_tls",              "https_too_large", "https_protocol",
    "https_internal",         "https_status",    "https_media_type",
    "policy_syntax"};

// The metrics kind of a failed exchange (see PolicyFetcher::failures).
const char* FailureKind(const FetchResult& r) {
  switch (r.error) {
    case FetchError::kOk:
      if (r.http_status != 200) return "https_status";
      if (r.media_type != "text/plain") return "https_media_type";
      return "policy_syntax";
    case FetchError::kConnect:
      return "https_connect";
    case FetchError::kTimeout:
      return "https_timeout";
    case FetchError::kTooLarge:
      return "https_too_large";
    case FetchError::kProtocol:
      return "https_protocol";
    case FetchError::kInternal:
      return "https_internal";
    default:
      return IsTlsError(r.error) ? "https_tls" : "https_internal";
  }
}

}  // namespace

absl::StatusOr<sts::Policy> CheckPolicyResponse(const FetchResult& result) {
  if (!result.ok()) {
    return absl::UnavailableError(absl::StrCat(
        IsTlsError(result.error) ? "sts-webpki-invalid: "
                                 : "sts-policy-fetch-error: ",
        FetchErrorName(result.error), ": ", result.error_detail));
  }
  if (result.http_status != 200) {  // B5: 3xx never followed
    return absl::UnavailableError(absl::StrCat(
        "sts-policy-fetch-error: HTTP status ", result.http_status,
        result.http_status >= 300 && result.http_status < 400
            ? " (redirects are not followed, RFC 8461 §3.3)"
            : ""));
  }
  if (result.media_type != "text/plain") {  // B7
    return absl::UnavailableError(absl::StrCat(
        "sts-policy-fetch-error: media type \"",
        result.media_type.empty() ? "(none)" : result.media_type,
        "\" is not text/plain"));
  }
  absl::StatusOr<sts::Policy> policy = sts::ParsePolicy(result.body);
  if (!policy.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sts-policy-invalid: ", policy.status().message()));
  }
  return policy;
}

void PolicyFetcher::Fetch(absl::string_view domain, absl::string_view id,
                          Callback done) {
  const std::string key = absl::StrCat(domain, "\n", id);
  bool first;
  {
    absl::MutexLock lock(&mu_);
    std::vector<Callback>& waiters = waiting_[key];
    first = waiters.empty();
    waiters.push_back(std::move(done));
    if (first) ++started_;
  }
  // A fetch for a domain that has a policy: a daily refresh or an id change.
  if (first && store_.Get(domain).has_value()) {
    refreshes_started_.fetch_add(1, std::memory_order_relaxed);
  }
  if (first) Start(std::string(domain), std::string(id));
}

uint64_t PolicyFetcher::fetches_started() const {
  absl::MutexLock lock(&mu_);
  return started_;
}

std::vector<std::pair<std::string, uint64_t>> PolicyFetcher::failures() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const char* kind : kFailureKinds) {
    auto it = failures_.find(kind);
    out.emplace_back(kind, it == failures_.end() ? 0 : it->second);
  }
  return out;
}

void PolicyFetcher::Start(std::string domain, std::string id) {
  // B1/B2: the policy host, resolved by our own validating resolver (a
  // CNAME to a provider is followed; the name checked stays ours, §8.2).
  struct Addresses {
    absl::Mutex mu;
    int pending = 2;
    std::vector<std::string> v4, v6;
    std::string error;
  };
  auto addrs = std::make_shared<Addresses>();
  const std::string host = absl::StrCat("mta-sts.", domain);
  for (RrType type : {RrType::kA, RrType::kAaaa}) {
    dns_.Lookup(host, type, [this, addrs, host, domain, id,
                             type](DnsResult answer) {
      std::optional<HttpsRequest> request;
      std::string error;
      {
        absl::MutexLock lock(&addrs->mu);
        if (!LookupFailed(answer) && answer->outcome == DnsOutcome::kData) {
          auto& into = type == RrType::kA ? addrs->v4 : addrs->v6;
          into = answer->addresses;
        } else if (LookupFailed(answer)) {
          addrs->error = FailureText(answer);
        }
        if (--addrs->pending > 0) return;
        const std::vector<std::string>& use =
            !addrs->v4.empty() ? addrs->v4 : addrs->v6;
        if (use.empty()) {
          error = addrs->error.empty() ? "no address" : addrs->error;
        } else {
          request = HttpsRequest{.host = host,
                                 .connect_address = use.front(),
                                 .port = https_port_};
        }
      }
      if (!request) {
        if (error == "no address") {  // failed lookups: counted as DNS errors
          absl::MutexLock lock(&mu_);
          ++failures_["policy_host_no_address"];
        }
        Complete(domain, id,
                 {false, std::nullopt,
                  absl::StrCat("sts-policy-fetch-error: ", host, ": ", error)});
        return;
      }
      https_.Fetch(*std::move(request), [this, domain, id](FetchResult r) {
        absl::StatusOr<sts::Policy> policy = CheckPolicyResponse(r);
        if (!policy.ok()) {
          {
            absl::MutexLock lock(&mu_);
            ++failures_[FailureKind(r)];
          }
          Complete(domain, id,
                   {false, std::nullopt, std::string(policy.status().message())});
          return;
        }
        sts::CachedPolicy cached =
            store_.FetchSucceeded(domain, id, *std::move(policy));
        if (tier_ != nullptr) {
          // The raw body: whoever reads it back parses it again.
          tier_->PutPolicy(domain, StoredPolicy{.id = id,
                                                .body = std::move(r.body),
                                                .fetched_at = cached.fetched_at,
                                                .expires_at = cached.expires_at});
        }
        Complete(domain, id, {true, std::move(cached), ""});
      });
    });
  }
}

void PolicyFetcher::Complete(const std::string& domain, const std::string& id,
                             PolicyFetchOutcome outcome) {
  if (!outcome.ok && store_.FetchFailed(domain, id)) {
    // SPEC D5 / RFC 8461 §10.2: a non-`none` policy could not be refreshed.
    LogLine(LogLevel::kWarning, "sts_refresh_failed")
        .Add("domain", domain)
        .Add("id", id)
        .Add("error", outcome.detail)
        .Add("note", "the cached policy stays in force until it expires");
  } else if (!outcome.ok && LogEnabled(LogLevel::kInfo)) {
    LogLine(LogLevel::kInfo, "sts_fetch_failed")
        .Add("domain", domain)
        .Add("id", id)
        .Add("error", outcome.detail);
  }
  std::vector<Callback> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiting_.find(absl::StrCat(domain, "\n", id));
    if (it != waiting_.end()) {
      waiters = std::move(it->second);
      waiting_.erase(it);
    }
  }
  for (Callback& cb : waiters) std::move(cb)(outcome);
}

}  // namespace mxpolicy
