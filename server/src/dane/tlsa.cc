#include "server/src/dane/tlsa.h"

#include <algorithm>

namespace mxpolicy::dane {
namespace {

// True when `der` is exactly one DER SEQUENCE (tag 0x30, definite length).
// A structural check only: enough to reject garbage "full" data without a
// certificate parser in this pure layer.
bool IsOneDerSequence(absl::string_view der) {
  if (der.size() < 2 || static_cast<uint8_t>(der[0]) != 0x30) return false;
  size_t pos = 1;
  const uint8_t first = der[pos++];
  size_t length = 0;
  if (first < 0x80) {
    length = first;
  } else {
    const size_t octets = first & 0x7F;
    if (octets == 0 || octets > 4 || pos + octets > der.size()) return false;
    for (size_t i = 0; i < octets; ++i) {
      length = (length << 8) | static_cast<uint8_t>(der[pos++]);
    }
    if (length < 0x80) return false;  // DER: shortest form
  }
  return pos + length == der.size();
}

}  // namespace

absl::string_view TlsaUnusableReason(const TlsaRecord& record) {
  if (record.usage != kUsageDaneTa && record.usage != kUsageDaneEe) {
    return "certificate usage other than DANE-TA(2)/DANE-EE(3)";
  }
  if (record.selector != kSelectorCert && record.selector != kSelectorSpki) {
    return "unknown selector";
  }
  switch (record.matching_type) {
    case kMatchFull:
      return IsOneDerSequence(record.data)
                 ? ""
                 : "full data is not a DER certificate or SPKI";
    case kMatchSha256:
      return record.data.size() == 32 ? "" : "SHA2-256 data not 32 octets";
    case kMatchSha512:
      return record.data.size() == 64 ? "" : "SHA2-512 data not 64 octets";
    default:
      return "unknown matching type";
  }
}

}  // namespace mxpolicy::dane

namespace mxpolicy::dane {

std::vector<TlsaRecord> SelectUsable(const std::vector<TlsaRecord>& records) {
  // Strongest digest per (usage, selector): 0 none, 1 SHA2-256, 2 SHA2-512.
  uint8_t strongest[4][2] = {};
  for (const TlsaRecord& r : records) {
    if (!IsUsableTlsa(r) || r.matching_type == kMatchFull) continue;
    uint8_t& s = strongest[r.usage][r.selector];
    s = std::max(s, r.matching_type);
  }
  std::vector<TlsaRecord> out;
  for (const TlsaRecord& r : records) {
    if (!IsUsableTlsa(r)) continue;
    if (r.matching_type == kMatchFull ||
        r.matching_type == strongest[r.usage][r.selector]) {
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace mxpolicy::dane
