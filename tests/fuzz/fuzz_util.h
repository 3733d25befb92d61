// Helpers shared by the fuzz targets: an invariant check that stops the run
// with a message (libFuzzer then saves the input), and the byte layout that
// turns one fuzz input into a TXT RRset.
#ifndef MXPOLICY_TESTS_FUZZ_FUZZ_UTIL_H_
#define MXPOLICY_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/src/common/dns_records.h"

// Invariant violations trap (not abort) so that they are told apart from
// sanitizer reports; the message says which invariant broke.
#define FUZZ_CHECK(cond)                                                     \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond,         \
                   __FILE__, __LINE__);                                      \
      __builtin_trap();                                                      \
    }                                                                        \
  } while (0)

namespace mxpolicy::fuzz {

// Record separator and character-string separator of the TXT layout: '\n'
// keeps seed files readable; 0x1F (US) is rare in real records. Both are
// control bytes the grammars reject anyway, so little is lost.
inline constexpr char kRecordSeparator = '\n';
inline constexpr char kStringSeparator = '\x1f';

inline std::vector<absl::string_view> Split(absl::string_view s, char sep) {
  std::vector<absl::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    if (end == absl::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

// "v=STSv1; id=a\x1f" "bc\nv=spf1 -all" → two records, the first with two
// character-strings.
inline std::vector<TxtRecord> ToTxtRecords(const uint8_t* data, size_t size) {
  std::vector<TxtRecord> records;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  for (absl::string_view record : Split(input, kRecordSeparator)) {
    TxtRecord txt;
    for (absl::string_view s : Split(record, kStringSeparator)) {
      txt.strings.emplace_back(s);
    }
    records.push_back(std::move(txt));
  }
  return records;
}

inline bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

}  // namespace mxpolicy::fuzz

#endif  // MXPOLICY_TESTS_FUZZ_FUZZ_UTIL_H_
