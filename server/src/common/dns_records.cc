#include "server/src/common/dns_records.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mxpolicy {

absl::string_view DnssecStateName(DnssecState state) {
  switch (state) {
    case DnssecState::kSecure:
      return "secure";
    case DnssecState::kInsecure:
      return "insecure";
    case DnssecState::kBogus:
      return "bogus";
    case DnssecState::kIndeterminate:
      return "indeterminate";
  }
  return "?";
}

absl::string_view RrTypeName(RrType type) {
  switch (type) {
    case RrType::kA:
      return "A";
    case RrType::kCname:
      return "CNAME";
    case RrType::kMx:
      return "MX";
    case RrType::kTxt:
      return "TXT";
    case RrType::kAaaa:
      return "AAAA";
    case RrType::kTlsa:
      return "TLSA";
  }
  return "?";
}

std::string TxtRecord::Joined() const { return absl::StrJoin(strings, ""); }

bool LookupFailed(const DnsResult& result) {
  return !result.ok() || result->outcome == DnsOutcome::kError;
}

DnssecState StateOf(const DnsResult& result) {
  return result.ok() ? result->dnssec : DnssecState::kIndeterminate;
}

std::string FailureText(const DnsResult& result) {
  if (!result.ok()) return absl::StrCat("failed: ", result.status().message());
  if (result->dnssec == DnssecState::kBogus) {
    return absl::StrCat("bogus: ", result->error);
  }
  return absl::StrCat("failed: ", result->error);
}

}  // namespace mxpolicy
