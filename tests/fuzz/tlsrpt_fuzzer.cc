// Fuzzes ParseTlsRptRecords (SPEC H1) on the input split into a TXT RRset
// (fuzz_util.h layout). Invariants: exactly one joined record starts with
// "v=TLSRPTv1;"; every rua URI is a `mailto:` or `https:` URI longer than its
// scheme, printable US-ASCII without WSP, ',', ';' or '!'.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "server/src/sts/txt_record.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<mxpolicy::TxtRecord> records =
      mxpolicy::fuzz::ToTxtRecords(data, size);
  const absl::StatusOr<std::vector<std::string>> rua =
      mxpolicy::sts::ParseTlsRptRecords(records);
  if (!rua.ok()) return 0;
  int candidates = 0;
  for (const mxpolicy::TxtRecord& r : records) {
    if (absl::StartsWith(r.Joined(), "v=TLSRPTv1;")) ++candidates;
  }
  FUZZ_CHECK(candidates == 1);
  FUZZ_CHECK(!rua->empty());
  for (const std::string& uri : *rua) {
    FUZZ_CHECK(absl::StartsWith(uri, "mailto:") ||
               absl::StartsWith(uri, "https:"));
    FUZZ_CHECK(uri.size() > 7);
    for (unsigned char c : uri) {
      FUZZ_CHECK(c > 0x20 && c <= 0x7E);
      FUZZ_CHECK(c != ',' && c != ';' && c != '!');
    }
  }
  return 0;
}
