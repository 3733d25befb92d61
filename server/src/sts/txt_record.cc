#include "server/src/sts/txt_record.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/src/sts/grammar.h"

namespace mxpolicy::sts {
namespace {

// sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E) — printable, no SP ";" "=".
bool IsExtensionValue(absl::string_view value) {
  if (value.empty()) return false;
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7E || c == ';' || c == '=') return false;
  }
  return true;
}

absl::Status Invalid(absl::string_view what, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", why));
}

using Field = std::pair<absl::string_view, absl::string_view>;  // name, value

// Splits "v=<version>; n1=v1; n2=v2;" into its name=value fields after the
// version token, enforcing the delimiter grammar *WSP ";" *WSP.
absl::StatusOr<std::vector<Field>> Fields(absl::string_view record,
                                          absl::string_view version,
                                          absl::string_view what) {
  for (unsigned char c : record) {
    if (c > 0x7E || (c < 0x20 && c != '\t')) {
      return Invalid(what, "not printable US-ASCII");  // SPEC A6
    }
  }
  if (!absl::StartsWith(record, version)) {
    return Invalid(what, absl::StrCat("does not start with ", version));
  }
  absl::string_view rest = record.substr(version.size());
  std::vector<Field> fields;
  while (!rest.empty()) {
    // Delimiter: *WSP ";" *WSP
    size_t i = 0;
    while (i < rest.size() && IsWsp(rest[i])) ++i;
    if (i == rest.size()) break;  // trailing WSP after a field
    if (rest[i] != ';') return Invalid(what, "fields must be separated by ';'");
    ++i;
    while (i < rest.size() && IsWsp(rest[i])) ++i;
    rest.remove_prefix(i);
    if (rest.empty()) break;  // trailing delimiter
    size_t end = 0;
    while (end < rest.size() && rest[end] != ';' && !IsWsp(rest[end])) ++end;
    const absl::string_view field = rest.substr(0, end);
    const size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return Invalid(what, absl::StrCat("field without '=': ", field));
    }
    fields.emplace_back(field.substr(0, eq), field.substr(eq + 1));
    rest.remove_prefix(end);
  }
  if (fields.empty()) return Invalid(what, "no fields after the version");
  return fields;
}

}  // namespace

bool IsValidPolicyId(absl::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<std::string> ParseStsTxt(absl::string_view record) {
  constexpr absl::string_view kWhat = "_mta-sts TXT record";
  absl::StatusOr<std::vector<Field>> fields = Fields(record, "v=STSv1", kWhat);
  if (!fields.ok()) return fields.status();
  std::string id;
  bool have_id = false;
  for (const auto& [name, value] : *fields) {
    if (name == "id") {
      if (!IsValidPolicyId(value)) {
        return Invalid(kWhat, value.empty() || value.size() > 32
                                  ? "id must be 1 to 32 characters"
                                  : "id must be letters and digits only");
      }
      if (!have_id) id = std::string(value);  // SPEC A7: first wins
      have_id = true;
      continue;
    }
    if (!IsExtensionName(name) || !IsExtensionValue(value)) {
      return Invalid(kWhat,
                     absl::StrCat("malformed field: ", name, "=", value));
    }
  }
  if (!have_id) return Invalid(kWhat, "no id field");
  return id;
}

absl::StatusOr<std::string> ParseStsTxtRecords(
    const std::vector<TxtRecord>& records) {
  std::vector<std::string> candidates;
  for (const TxtRecord& r : records) {
    std::string joined = r.Joined();  // SPEC A3
    if (absl::StartsWith(joined, "v=STSv1")) candidates.push_back(joined);
  }
  if (candidates.empty()) {
    return absl::InvalidArgumentError("no v=STSv1 TXT record");
  }
  if (candidates.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        candidates.size(), " v=STSv1 TXT records: no available policy"));
  }
  return ParseStsTxt(candidates.front());
}

absl::StatusOr<std::vector<std::string>> ParseTlsRptRecords(
    const std::vector<TxtRecord>& records) {
  constexpr absl::string_view kWhat = "_smtp._tls TXT record";
  std::vector<std::string> candidates;
  for (const TxtRecord& r : records) {
    std::string joined = r.Joined();
    if (absl::StartsWith(joined, "v=TLSRPTv1;")) candidates.push_back(joined);
  }
  if (candidates.size() != 1) {
    return Invalid(kWhat, absl::StrCat(candidates.size(),
                                       " v=TLSRPTv1 records (need exactly 1)"));
  }
  absl::StatusOr<std::vector<Field>> fields =
      Fields(candidates.front(), "v=TLSRPTv1", kWhat);
  if (!fields.ok()) return fields.status();
  std::vector<std::string> rua;
  bool have_rua = false;
  for (const auto& [name, value] : *fields) {
    if (name != "rua") {
      if (!IsExtensionName(name) || !IsExtensionValue(value)) {
        return Invalid(kWhat,
                       absl::StrCat("malformed field: ", name, "=", value));
      }
      continue;
    }
    if (have_rua) continue;  // first occurrence wins
    have_rua = true;
    for (absl::string_view uri : absl::StrSplit(value, ',')) {
      const bool scheme_ok =
          absl::StartsWith(uri, "mailto:") || absl::StartsWith(uri, "https:");
      if (!scheme_ok || uri.find('!') != absl::string_view::npos ||
          uri.size() <= 7) {
        return Invalid(kWhat, absl::StrCat("bad rua URI: ", uri));
      }
      rua.emplace_back(uri);
    }
  }
  if (!have_rua) return Invalid(kWhat, "no rua field");
  return rua;
}

}  // namespace mxpolicy::sts
