// HttpsFetcher: the small asynchronous interface through which the resolver
// fetches MTA-STS policies (RFC 8461 §3.3). The implementation lives behind it
// (CurlHttpsFetcher); tests of the resolver use a fake.
#ifndef MXPOLICY_HTTPS_HTTPS_FETCHER_H_
#define MXPOLICY_HTTPS_HTTPS_FETCHER_H_

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mxpolicy {

// One GET request. The URL is https://<host><path>; the TCP connection goes
// to `connect_address`:`port` (an address the service's own resolver found),
// while SNI, Host and the certificate name check use `host`.
struct HttpsRequest {
  std::string host;
  std::string path = "/.well-known/mta-sts.txt";
  std::string connect_address;  // IPv4 or IPv6 literal, no brackets
  uint16_t port = 443;
};

// Why a fetch produced no HTTP response. Kept apart so that TLSRPT can tell
// sts-webpki-invalid (the kTls* kinds) from sts-policy-fetch-error.
enum class FetchError {
  kOk,               // an HTTP response arrived (any status)
  kConnect,          // TCP connect failed or refused
  kTimeout,          // connect or total timeout
  kTlsNameMismatch,  // certificate not valid for `host` (SAN DNS-IDs only)
  kTlsExpired,       // certificate expired or not yet valid
  kTlsUntrusted,     // chain does not end at a trusted CA (incl. self-signed)
  kTlsOther,         // handshake failure, protocol version, other PKIX errors
  kTooLarge,         // body over the size cap (Content-Length or streamed)
  kProtocol,         // malformed HTTP, bad content encoding
  kInternal,         // the fetcher itself failed (shutting down, curl setup)
};

absl::string_view FetchErrorName(FetchError error);

struct FetchResult {
  FetchError error = FetchError::kInternal;
  // Library text of the failure, e.g. "SSL certificate problem: certificate
  // has expired". Empty when error == kOk.
  std::string error_detail;
  // The HTTP exchange; valid when error == kOk. Redirects are never followed,
  // so a 3xx arrives here as its status.
  int http_status = 0;
  // Media type lowercased without parameters ("text/plain"), "" if absent.
  std::string media_type;
  // The `charset` parameter lowercased, "" if absent.
  std::string charset;
  std::string body;

  bool ok() const { return error == FetchError::kOk; }
};

// Contract: Fetch() never blocks; `done` runs exactly once, on the fetcher's
// own thread, so it must not block either. Thread-safe.
class HttpsFetcher {
 public:
  using Callback = absl::AnyInvocable<void(FetchResult) &&>;
  virtual ~HttpsFetcher() = default;
  virtual void Fetch(HttpsRequest request, Callback done) = 0;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_HTTPS_HTTPS_FETCHER_H_
