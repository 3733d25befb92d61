#include "server/src/https/curl_https_fetcher.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <climits>
#include <cstdint>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

static_assert(LIBCURL_VERSION_NUM >= 0x075500,
              "CURLOPT_PROTOCOLS_STR needs libcurl >= 7.85.0");

namespace mxpolicy {
namespace {

constexpr char kUserAgent[] = "mxpolicy/0.1";
constexpr char kShuttingDown[] = "fetcher shutting down";
// Upper bound on one curl_multi_poll() wait; curl shortens it to its own
// next timer, and curl_multi_wakeup() interrupts it.
constexpr int kMaxPollMs = 1000;

// curl_global_init() is not thread-safe and must run once per process. It is
// never undone: other libraries may share libcurl/OpenSSL state.
CURLcode GlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_FAILED_INIT;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}

long ToCurlMillis(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return ms > LONG_MAX ? LONG_MAX : static_cast<long>(ms);
}

// A host name that can go into a URL and a CONNECT_TO entry unescaped: dot-
// separated non-empty labels of letters, digits, '-' and '_', no trailing dot
// (the certificate name check would not match one).
bool IsPlainHostName(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
          c != '_') {
        return false;
      }
    }
  }
  return true;
}

// An absolute path of printable ASCII without spaces.
bool IsPlainPath(absl::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  for (char c : path) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

// "<address>" or "[<address>]" for CURLOPT_CONNECT_TO; empty when `address`
// is not an IPv4 or IPv6 literal.
std::string ConnectToAddress(const std::string& address) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, address.c_str(), buf) == 1) return address;
  if (inet_pton(AF_INET6, address.c_str(), buf) == 1) {
    return absl::StrCat("[", address, "]");
  }
  return "";
}

// Content-Type "Text/Plain ; Charset=\"UTF-8\"" -> "text/plain", "utf-8".
void ParseContentType(const char* content_type, std::string* media_type,
                      std::string* charset) {
  if (content_type == nullptr) return;
  std::vector<absl::string_view> parts =
      absl::StrSplit(content_type, absl::MaxSplits(';', 64));
  *media_type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    if (absl::AsciiStrToLower(absl::StripAsciiWhitespace(kv.first)) !=
        "charset") {
      continue;
    }
    absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = absl::StripAsciiWhitespace(value.substr(1, value.size() - 2));
    }
    *charset = absl::AsciiStrToLower(value);
    return;
  }
}

// Splits a TLS failure by the OpenSSL verification result, so TLSRPT can
// report the precise sts-webpki-invalid cause (RFC 8460 §4.3.2).
FetchError ClassifyTls(CURLcode code, long verify_result) {
  switch (verify_result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return FetchError::kTlsExpired;
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return FetchError::kTlsNameMismatch;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return FetchError::kTlsUntrusted;
    case X509_V_OK:
      // The chain verified, yet the peer failed verification: only libcurl's
      // own host name check (run after the handshake) does that.
      return code == CURLE_PEER_FAILED_VERIFICATION
                 ? FetchError::kTlsNameMismatch
                 : FetchError::kTlsOther;
    default:
      return FetchError::kTlsOther;
  }
}

FetchError Classify(CURLcode code, long verify_result) {
  switch (code) {
    case CURLE_OK:
      return FetchError::kOk;
    case CURLE_OPERATION_TIMEDOUT:
      return FetchError::kTimeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:  // cannot happen with a pinned literal
      return FetchError::kConnect;
    case CURLE_FILESIZE_EXCEEDED:
      return FetchError::kTooLarge;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return ClassifyTls(code, verify_result);
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return FetchError::kInternal;
    default:
      return FetchError::kProtocol;
  }
}

FetchResult Failure(FetchError error, std::string detail) {
  FetchResult result;
  result.error = error;
  result.error_detail = std::move(detail);
  return result;
}

absl::Status CheckCaFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA file ", path, " is not a readable regular file"));
  }
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return absl::InternalError("X509_STORE_new failed");
  const bool loaded = X509_STORE_load_file(store, path.c_str()) == 1;
  X509_STORE_free(store);
  ERR_clear_error();  // the failure reason stays on this thread otherwise
  if (!loaded) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CA file ", path, " cannot be read as a PEM certificate bundle"));
  }
  return absl::OkStatus();
}

// The part of a transfer that libcurl's callbacks touch (on the worker
// thread, during curl_multi_perform()).
struct TransferIo {
  std::string host;  // for the certificate name check
  size_t max_body = 0;
  std::string body;
  bool too_large = false;       // the write callback refused a chunk
  bool ssl_ctx_failed = false;  // the name check could not be installed
};

// CURLOPT_WRITEFUNCTION: the streamed half of the size cap (SPEC B8). The
// Content-Length half is CURLOPT_MAXFILESIZE_LARGE; this one also catches
// chunked bodies and counts decoded bytes.
size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* io = static_cast<TransferIo*>(user);
  const size_t n = size * count;
  if (n > io->max_body - io->body.size()) {
    io->too_large = true;
    return 0;  // != n: curl aborts with CURLE_WRITE_ERROR
  }
  io->body.append(data, n);
  return n;
}

// CURLOPT_SSL_CTX_FUNCTION: SPEC B3 / RFC 8461 §3.3 (names per RFC 6125): the
// name is matched against SAN DNS-IDs only (no RFC 6125 §6.4.4 CN fallback,
// which libcurl 7.88's own check still does for SAN-less certificates), and a
// wildcard only as the whole left-most label (§6.4.3). OpenSSL enforces this
// in the handshake (X509_V_ERR_HOSTNAME_MISMATCH); libcurl's own later check
// then only sees certificates that already passed. The SSL object curl
// creates from this context right after the callback inherits the parameters.
CURLcode InstallNameCheck(CURL* /*easy*/, void* ssl_ctx, void* user) {
  auto* io = static_cast<TransferIo*>(user);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(static_cast<SSL_CTX*>(ssl_ctx));
  if (param == nullptr) {
    io->ssl_ctx_failed = true;
    return CURLE_ABORTED_BY_CALLBACK;
  }
  X509_VERIFY_PARAM_set_hostflags(param,
                                  X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                      X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_host(param, io->host.data(), io->host.size()) !=
      1) {
    io->ssl_ctx_failed = true;
    return CURLE_ABORTED_BY_CALLBACK;
  }
  return CURLE_OK;
}

}  // namespace

// One request in flight: the easy handle and everything its callbacks and
// options point to, so it lives at a stable address until curl is done.
struct CurlHttpsFetcher::Transfer {
  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(connect_to);  // after the handle that used it
  }

  HttpsRequest request;
  Callback done;
  CURL* easy = nullptr;
  curl_slist* connect_to = nullptr;
  TransferIo io;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

absl::StatusOr<std::unique_ptr<CurlHttpsFetcher>> CurlHttpsFetcher::Create(
    const Options& options) {
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.total_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("fetch timeouts must be positive");
  }
  if (!options.ca_file.empty()) {
    if (absl::Status status = CheckCaFile(options.ca_file); !status.ok()) {
      return status;
    }
  }
  if (CURLcode rc = GlobalInit(); rc != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init: ", curl_easy_strerror(rc)));
  }
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  if (info == nullptr || info->version_num < 0x075500 ||
      info->ssl_version == nullptr ||
      !absl::StartsWith(info->ssl_version, "OpenSSL/")) {
    return absl::InternalError(absl::StrCat(
        "libcurl >= 7.85 built with OpenSSL is required, found ",
        info == nullptr ? "?" : info->version, " with ",
        info == nullptr || info->ssl_version == nullptr ? "no TLS"
                                                        : info->ssl_version));
  }
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return absl::InternalError("curl_multi_init failed");
  return std::unique_ptr<CurlHttpsFetcher>(
      new CurlHttpsFetcher(options, multi));
}

CurlHttpsFetcher::CurlHttpsFetcher(const Options& options, void* multi)
    : options_(options), multi_(multi) {
  worker_ = std::thread([this] { Run(); });
}

CurlHttpsFetcher::~CurlHttpsFetcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(multi_);
  worker_.join();
  FailAll();  // nothing left unless Fetch() raced with destruction
  curl_multi_cleanup(multi_);
}

void CurlHttpsFetcher::Fetch(HttpsRequest request, Callback done) {
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(Pending{std::move(request), std::move(done)});
  }
  curl_multi_wakeup(multi_);
}

void CurlHttpsFetcher::Run() {
  std::vector<Pending> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      batch.swap(queue_);
    }
    for (Pending& pending : batch) Start(std::move(pending));
    batch.clear();

    int running = 0;
    curl_multi_perform(multi_, &running);
    int queued_messages = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued_messages)) {
      if (msg->msg != CURLMSG_DONE) continue;
      // Copy out first: Finish() removes the handle, which frees `msg`.
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      Finish(easy, code);
    }

    if (curl_multi_poll(multi_, nullptr, 0, kMaxPollMs, nullptr) != CURLM_OK) {
      // Should not happen; avoid a hot loop if it does.
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  FailAll();
}

void CurlHttpsFetcher::Start(Pending pending) {
  auto transfer = std::make_unique<Transfer>();
  transfer->request = std::move(pending.request);
  transfer->done = std::move(pending.done);
  transfer->io.max_body = options_.max_body_bytes;
  const HttpsRequest& req = transfer->request;
  transfer->io.host = req.host;

  const std::string address = ConnectToAddress(req.connect_address);
  if (!IsPlainHostName(req.host) || !IsPlainPath(req.path) || address.empty()) {
    std::move(transfer->done)(Failure(
        FetchError::kInternal,
        absl::StrCat("invalid request: host \"", absl::CEscape(req.host),
                     "\" path \"", absl::CEscape(req.path), "\" address \"",
                     absl::CEscape(req.connect_address), "\"")));
    return;
  }
  // The URL keeps the real name, so SNI (RFC 8461 §7.1), Host and the
  // certificate check use it; only the TCP destination is pinned.
  const std::string url = absl::StrCat("https://", req.host, req.path);
  const std::string connect_to =
      absl::StrCat(req.host, ":443:", address, ":", req.port);
  transfer->connect_to = curl_slist_append(nullptr, connect_to.c_str());
  transfer->easy = curl_easy_init();
  if (transfer->connect_to == nullptr || transfer->easy == nullptr) {
    std::move(transfer->done)(
        Failure(FetchError::kInternal, "cannot allocate a curl handle"));
    return;
  }

  CURL* easy = transfer->easy;
  Transfer* t = transfer.get();
  CURLcode rc = CURLE_OK;
  // Each option is checked, so a libcurl lacking one fails closed.
#define MXP_SETOPT(option, value) \
  if (rc == CURLE_OK) rc = curl_easy_setopt(easy, option, value)
  MXP_SETOPT(CURLOPT_ERRORBUFFER, t->error_buffer);
  MXP_SETOPT(CURLOPT_NOSIGNAL, 1L);
  MXP_SETOPT(CURLOPT_URL, url.c_str());
  MXP_SETOPT(CURLOPT_HTTPGET, 1L);
  // RFC 8461 §3.3: HTTPS only, and 3xx responses are never followed.
  MXP_SETOPT(CURLOPT_PROTOCOLS_STR, "https");
  MXP_SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
  MXP_SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
  // SPEC B4: TLS 1.2 minimum; RFC 8461 §3.3: PKIX validation.
  MXP_SETOPT(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  MXP_SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
  MXP_SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
  MXP_SETOPT(CURLOPT_SSL_CTX_FUNCTION, &InstallNameCheck);
  MXP_SETOPT(CURLOPT_SSL_CTX_DATA, &t->io);
  if (!options_.ca_file.empty()) {
    MXP_SETOPT(CURLOPT_CAINFO, options_.ca_file.c_str());
    MXP_SETOPT(CURLOPT_CAPATH, static_cast<char*>(nullptr));
  }
  // The connection is pinned: never a proxy from the environment.
  MXP_SETOPT(CURLOPT_CONNECT_TO, t->connect_to);
  MXP_SETOPT(CURLOPT_PROXY, "");
  MXP_SETOPT(CURLOPT_NOPROXY, "*");
  // SPEC B8: timeouts and the body cap (both on Content-Length and streamed;
  // decoded bytes count, so a compressed body cannot slip past the cap).
  MXP_SETOPT(CURLOPT_CONNECTTIMEOUT_MS, ToCurlMillis(options_.connect_timeout));
  MXP_SETOPT(CURLOPT_TIMEOUT_MS, ToCurlMillis(options_.total_timeout));
  MXP_SETOPT(CURLOPT_MAXFILESIZE_LARGE,
             static_cast<curl_off_t>(options_.max_body_bytes));
  MXP_SETOPT(CURLOPT_WRITEFUNCTION, &WriteBody);
  MXP_SETOPT(CURLOPT_WRITEDATA, &t->io);
  MXP_SETOPT(CURLOPT_ACCEPT_ENCODING, "");
  MXP_SETOPT(CURLOPT_USERAGENT, kUserAgent);
#undef MXP_SETOPT
  if (rc != CURLE_OK) {
    std::move(transfer->done)(
        Failure(FetchError::kInternal,
                absl::StrCat("curl_easy_setopt: ", curl_easy_strerror(rc))));
    return;
  }
  if (CURLMcode mc = curl_multi_add_handle(multi_, easy); mc != CURLM_OK) {
    std::move(transfer->done)(Failure(
        FetchError::kInternal,
        absl::StrCat("curl_multi_add_handle: ", curl_multi_strerror(mc))));
    return;
  }
  in_flight_.emplace(easy, std::move(transfer));
}

void CurlHttpsFetcher::Finish(void* easy, int code) {
  auto it = in_flight_.find(easy);
  if (it == in_flight_.end()) return;  // not ours; cannot happen
  std::unique_ptr<Transfer> transfer = std::move(it->second);
  in_flight_.erase(it);
  curl_multi_remove_handle(multi_, easy);

  const CURLcode curl_code = static_cast<CURLcode>(code);
  FetchResult result;
  if (transfer->io.ssl_ctx_failed) {
    result = Failure(FetchError::kInternal,
                     "cannot install the certificate name check");
  } else if (transfer->io.too_large) {
    result = Failure(FetchError::kTooLarge,
                     absl::StrCat("body exceeds ", transfer->io.max_body,
                                  " bytes (streamed)"));
  } else {
    long verify_result = X509_V_OK;
    curl_easy_getinfo(transfer->easy, CURLINFO_SSL_VERIFYRESULT,
                      &verify_result);
    result.error = Classify(curl_code, verify_result);
    if (result.ok()) {
      long status = 0;
      curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &status);
      result.http_status = static_cast<int>(status);
      char* content_type = nullptr;
      curl_easy_getinfo(transfer->easy, CURLINFO_CONTENT_TYPE, &content_type);
      ParseContentType(content_type, &result.media_type, &result.charset);
      result.body = std::move(transfer->io.body);
    } else {
      result.error_detail = transfer->error_buffer[0] != '\0'
                                ? std::string(transfer->error_buffer)
                                : std::string(curl_easy_strerror(curl_code));
    }
  }
  Callback done = std::move(transfer->done);
  transfer.reset();  // the handle is gone before the callback runs
  std::move(done)(std::move(result));
}

void CurlHttpsFetcher::FailAll() {
  std::unordered_map<void*, std::unique_ptr<Transfer>> transfers;
  transfers.swap(in_flight_);
  std::vector<Callback> callbacks;
  callbacks.reserve(transfers.size());
  for (auto& [easy, transfer] : transfers) {
    curl_multi_remove_handle(multi_, easy);
    callbacks.push_back(std::move(transfer->done));
  }
  transfers.clear();
  for (Callback& done : callbacks) {
    std::move(done)(Failure(FetchError::kInternal, kShuttingDown));
  }
  // Callbacks may have queued new requests; they fail the same way.
  while (true) {
    std::vector<Pending> batch;
    {
      absl::MutexLock lock(&mu_);
      batch.swap(queue_);
    }
    if (batch.empty()) break;
    for (Pending& pending : batch) {
      std::move(pending.done)(Failure(FetchError::kInternal, kShuttingDown));
    }
  }
}

}  // namespace mxpolicy
