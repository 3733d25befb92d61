#include "absl/strings/string_view.h"
#include "server/src/dane/tlsa.h"

namespace mxpolicy::dane {

absl::string_view TlsaUnusableReason(const TlsaRecord& record) {
  if (record.usage != kUsageDaneTa && record.usage != kUsageDaneEe) {
    return "certificate usage other than DANE-TA(2)/DANE-EE(3)";
  }
  if (record.selector != kSelectorCert && record.selector != kSelectorSpki) {
    return "unknown selector";
  }
  switch (record.matching_type) {
    case kMatchFull:
      return record.data.empty() ? "empty association data" : "";
    case kMatchSha256:
      return record.data.size() == 32 ? "" : "SHA2-256 data not 32 octets";
    case kMatchSha512:
      return record.data.size() == 64 ? "" : "SHA2-512 data not 64 octets";
    default:
      return "unknown matching type";
  }
}

}  // namespace mxpolicy::dane
