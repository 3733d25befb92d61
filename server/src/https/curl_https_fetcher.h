// CurlHttpsFetcher: the production HttpsFetcher, built on the libcurl multi
// interface with OpenSSL. It fetches MTA-STS policies the way RFC 8461 §3.3
// demands: HTTPS only, PKIX-validated against the trust store, the name checked
// against SAN DNS-IDs only (SPEC B3), TLS >= 1.2 with SNI (SPEC B4), redirects
// never followed (SPEC B5), no HTTP cache (SPEC B6), a size cap enforced on
// Content-Length and while streaming, and connect/total timeouts (SPEC B8).
// The TCP connection is pinned to the address the service's own resolver
// found; no system resolver and no proxy is ever consulted.
#ifndef MXPOLICY_HTTPS_CURL_HTTPS_FETCHER_H_
#define MXPOLICY_HTTPS_CURL_HTTPS_FETCHER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/src/https/https_fetcher.h"

namespace mxpolicy {

// Contract: Fetch() only queues the request and wakes the fetcher's single
// worker thread, which drives every transfer with curl_multi_poll() and runs
// each `done` callback exactly once, on that thread. Callbacks may call Fetch()
// again but must not block and must not destroy the fetcher. Destruction stops
// the worker and completes every queued or in-flight request with
// FetchError::kInternal ("fetcher shutting down") before it returns.
// Thread-safety: Fetch() may be called concurrently from any thread; the
// destructor must not race with Fetch().
class CurlHttpsFetcher final : public HttpsFetcher {
 public:
  struct Options {
    // PEM bundle of trusted roots. When set it is the whole trust store (the
    // compiled-in CA path is disabled too), which keeps tests hermetic. Empty:
    // libcurl's compiled-in system store. SSL_CERT_FILE / CURL_CA_BUNDLE are
    // never consulted.
    std::string ca_file;
    // Covers TCP connect and the TLS handshake.
    absl::Duration connect_timeout = absl::Seconds(5);
    // The whole transfer (SPEC B8; RFC 8461 §3.3 suggests at most 60 s).
    absl::Duration total_timeout = absl::Seconds(20);
    // Largest accepted body after content decoding (SPEC B8: 64 KiB).
    size_t max_body_bytes = 65536;
  };

  // Initialises libcurl (once per process), creates the multi handle and
  // starts the worker thread. Errors: INVALID_ARGUMENT when `ca_file` is set
  // but cannot be read as a PEM certificate bundle, or when a timeout is not
  // positive; INTERNAL when libcurl cannot be initialised or is not the
  // OpenSSL build (the SAN-only name check needs OpenSSL).
  static absl::StatusOr<std::unique_ptr<CurlHttpsFetcher>> Create(
      const Options& options);

  ~CurlHttpsFetcher() override;
  CurlHttpsFetcher(const CurlHttpsFetcher&) = delete;
  CurlHttpsFetcher& operator=(const CurlHttpsFetcher&) = delete;

  // GET https://<request.host><request.path> over a connection to
  // request.connect_address:request.port. Never blocks. The result's `error`
  // is kOk whenever an HTTP response arrived, whatever its status; kInternal
  // also covers a request that cannot be expressed safely (a host that is not
  // a plain DNS name, a path that does not start with '/', an address that is
  // not an IP literal).
  void Fetch(HttpsRequest request, Callback done) override;

 private:
  struct Pending {
    HttpsRequest request;
    Callback done;
  };
  struct Transfer;  // one easy handle; defined in the .cc

  CurlHttpsFetcher(const Options& options, void* multi);

  void Run();
  // Creates the easy handle for `pending` and adds it to the multi handle;
  // completes it with kInternal when that fails.
  void Start(Pending pending);
  // Removes the finished easy handle, classifies `code` and runs the callback.
  void Finish(void* easy, int code);
  // Completes every in-flight and queued request with kInternal.
  void FailAll();

  const Options options_;
  void* const multi_;  // CURLM*; kept opaque so curl.h stays out of the header

  absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Owned by the worker thread (and by the destructor once it has joined it);
  // never touched under mu_, so curl is never called with the lock held.
  std::unordered_map<void*, std::unique_ptr<Transfer>> in_flight_;

  std::thread worker_;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_HTTPS_CURL_HTTPS_FETCHER_H_
