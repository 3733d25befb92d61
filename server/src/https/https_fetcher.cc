#include "server/src/https/https_fetcher.h"

namespace mxpolicy {

absl::string_view FetchErrorName(FetchError error) {
  switch (error) {
    case FetchError::kOk:
      return "ok";
    case FetchError::kConnect:
      return "connect";
    case FetchError::kTimeout:
      return "timeout";
    case FetchError::kTlsNameMismatch:
      return "tls-name-mismatch";
    case FetchError::kTlsExpired:
      return "tls-expired";
    case FetchError::kTlsUntrusted:
      return "tls-untrusted";
    case FetchError::kTlsOther:
      return "tls-other";
    case FetchError::kTooLarge:
      return "too-large";
    case FetchError::kProtocol:
      return "protocol";
    case FetchError::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace mxpolicy
