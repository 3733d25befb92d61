#include "server/src/common/domain.h"

#include <idn2.h>

#include <cstdlib>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mxpolicy {
namespace {

absl::Status Invalid(absl::string_view input, absl::string_view why) {
  constexpr size_t kQuoteMax = 80;
  std::string quoted = absl::CHexEscape(input.substr(0, kQuoteMax));
  if (input.size() > kQuoteMax) absl::StrAppend(&quoted, "...");
  return absl::InvalidArgumentError(
      absl::StrCat("invalid domain \"", quoted, "\": ", why));
}

bool IsAscii(absl::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Checks one label against the LDH rule; returns the problem or "".
absl::string_view LabelProblem(absl::string_view label) {
  if (label.empty()) return "empty label";
  if (label.size() > kMaxLabelLength) return "label longer than 63 octets";
  for (char c : label) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return "label with a character other than letters, digits and '-'";
    }
  }
  if (label.front() == '-' || label.back() == '-') {
    return "label starting or ending with '-'";
  }
  return "";
}

absl::string_view NameProblem(absl::string_view name) {
  if (name.empty()) return "empty name";
  if (name.size() > kMaxDomainLength) return "name longer than 253 octets";
  absl::string_view last;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (absl::string_view p = LabelProblem(label); !p.empty()) return p;
    last = label;
  }
  bool numeric = true;
  for (char c : last) numeric = numeric && absl::ascii_isdigit(c);
  if (numeric) return "IP address literal or all-numeric top-level label";
  return "";
}

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values beyond Unicode.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
        (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

bool IsLdhHostname(absl::string_view name) {
  if (!NameProblem(name).empty()) return false;
  for (char c : name) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<std::string> NormalizeDomain(absl::string_view input) {
  if (input.empty()) return Invalid(input, "empty domain");
  if (input.size() > 4 * kMaxDomainLength) return Invalid(input, "too long");
  if (!IsValidUtf8(input)) return Invalid(input, "not valid UTF-8");
  // IDNA works on C strings: a NUL would silently cut the name short.
  if (input.find('\0') != absl::string_view::npos) {
    return Invalid(input, "contains a NUL byte");
  }
  if (input.front() == '[') {
    return Invalid(input, "address literal or [host]:port next-hop");
  }
  if (input.find(':') != absl::string_view::npos) {
    return Invalid(input, "contains ':' (IPv6 literal or port)");
  }
  if (input.front() == '.') {
    return Invalid(input, "leading dot (parent-domain lookup key)");
  }
  absl::string_view name = input;
  if (name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return Invalid(input, "root name");

  std::string ascii;
  if (IsAscii(name)) {
    ascii = absl::AsciiStrToLower(name);
  } else {
    std::string in(name);
    char* out = nullptr;
    int rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(in.c_str()),
                            reinterpret_cast<uint8_t**>(&out),
                            IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    std::unique_ptr<char, decltype(&idn2_free)> holder(out, idn2_free);
    if (rc != IDN2_OK) {
      return Invalid(input, absl::StrCat("IDNA: ", idn2_strerror(rc)));
    }
    ascii = absl::AsciiStrToLower(out);
  }
  if (absl::string_view p = NameProblem(ascii); !p.empty()) {
    return Invalid(input, p);
  }
  // A-labels in the input must be valid punycode that round-trips (J1).
  if (ascii.find("xn--") != std::string::npos) {
    char* out = nullptr;
    int rc = idn2_to_unicode_8z8z(ascii.c_str(), &out, 0);
    std::unique_ptr<char, decltype(&idn2_free)> holder(out, idn2_free);
    if (rc != IDN2_OK) {
      return Invalid(input, absl::StrCat("bad A-label: ", idn2_strerror(rc)));
    }
    char* back = nullptr;
    rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(out),
                        reinterpret_cast<uint8_t**>(&back),
                        IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    std::unique_ptr<char, decltype(&idn2_free)> back_holder(back, idn2_free);
    if (rc != IDN2_OK || absl::AsciiStrToLower(back) != ascii) {
      return Invalid(input, "A-label does not round-trip through IDNA2008");
    }
  }
  return ascii;
}

}  // namespace mxpolicy
