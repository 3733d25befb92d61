// The `_mta-sts` TXT record (RFC 8461 §3.1; SPEC A3–A8) and the
// `_smtp._tls` TLSRPT record (RFC 8460 §3; SPEC H1). Pure parsers: records
// in, value or a reason out; no I/O.
#ifndef MXPOLICY_STS_TXT_RECORD_H_
#define MXPOLICY_STS_TXT_RECORD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/src/common/dns_records.h"

namespace mxpolicy::sts {

// Parses one joined TXT record against the §3.1 grammar: "v=STSv1" first
// (case-sensitive), then ";"-delimited fields (optional WSP around ";", a
// trailing delimiter allowed): `id=` 1–32 alphanumerics (required; the first
// occurrence wins, SPEC A7) and extensions (ignored). US-ASCII only (A6).
// Returns the id, or INVALID_ARGUMENT naming the first problem.
absl::StatusOr<std::string> ParseStsTxt(absl::string_view record);

// The §3.1 id grammar on its own: 1–32 ASCII letters and digits (SPEC A5).
bool IsValidPolicyId(absl::string_view id);

// The TXT RRset step (SPEC A3, A4): joins each record's strings, keeps those
// starting with "v=STSv1", and parses the single one left. INVALID_ARGUMENT
// ("no available policy") when none or several are left or it does not parse.
absl::StatusOr<std::string> ParseStsTxtRecords(
    const std::vector<TxtRecord>& records);

// The TLSRPT record set (SPEC H1): of the records starting with
// "v=TLSRPTv1;" exactly one must remain; its `rua=` holds one or more
// comma-separated `mailto:` or `https:` URIs. Returns the URIs, or
// INVALID_ARGUMENT.
absl::StatusOr<std::vector<std::string>> ParseTlsRptRecords(
    const std::vector<TxtRecord>& records);

}  // namespace mxpolicy::sts

#endif  // MXPOLICY_STS_TXT_RECORD_H_
