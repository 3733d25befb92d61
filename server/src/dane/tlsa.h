// TLSA record usability for SMTP (RFC 7672 §3.1; RFC 6698 §2.1; SPEC G8).
// Pure logic: records in, verdict out; no I/O.
#ifndef MXPOLICY_DANE_TLSA_H_
#define MXPOLICY_DANE_TLSA_H_

#include <vector>

#include "absl/strings/string_view.h"
#include "server/src/common/dns_records.h"

namespace mxpolicy::dane {

// RFC 7218 acronyms for the parameters that are usable for SMTP.
inline constexpr uint8_t kUsageDaneTa = 2;
inline constexpr uint8_t kUsageDaneEe = 3;
inline constexpr uint8_t kSelectorCert = 0;
inline constexpr uint8_t kSelectorSpki = 1;
inline constexpr uint8_t kMatchFull = 0;
inline constexpr uint8_t kMatchSha256 = 1;
inline constexpr uint8_t kMatchSha512 = 2;

// Why a record is unusable, or "" when it is usable. Usable: usage 2
// (DANE-TA) or 3 (DANE-EE) — usages 0/1 are unusable for MTA-to-MTA SMTP
// (RFC 7672 §3.1.3) — selector 0 or 1, matching type 0 (non-empty data), 1
// (exactly 32 octets) or 2 (exactly 64 octets). Full (0) data must be one
// DER SEQUENCE spanning exactly the data (a certificate or an SPKI).
absl::string_view TlsaUnusableReason(const TlsaRecord& record);

inline bool IsUsableTlsa(const TlsaRecord& record) {
  return TlsaUnusableReason(record).empty();
}

// The records a client uses (SPEC G8, G9): the usable ones, then — digest
// agility, RFC 7671 §9 — per (usage, selector) pair every Full(0) record and
// only the records of the strongest digest present (SHA2-512 over SHA2-256).
// Order is preserved.
std::vector<TlsaRecord> SelectUsable(const std::vector<TlsaRecord>& records);

}  // namespace mxpolicy::dane

#endif  // MXPOLICY_DANE_TLSA_H_
