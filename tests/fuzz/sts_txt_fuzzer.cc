// Fuzzes the `_mta-sts` TXT parsers (SPEC A3–A7): ParseStsTxt on the whole
// input as one record, and ParseStsTxtRecords on the input split into an
// RRset (fuzz_util.h layout). Invariants: an accepted id is 1–32
// alphanumerics (A5); the RRset result equals ParseStsTxt of the single
// joined record starting with "v=STSv1" (A3, A4).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/src/sts/txt_record.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using mxpolicy::TxtRecord;
using mxpolicy::fuzz::IsAlnum;

void CheckId(const absl::StatusOr<std::string>& id, absl::string_view record) {
  if (!id.ok()) return;
  FUZZ_CHECK(!id->empty() && id->size() <= 32);
  for (char c : *id) FUZZ_CHECK(IsAlnum(c));
  FUZZ_CHECK(absl::StartsWith(record, "v=STSv1"));
  FUZZ_CHECK(absl::StrContains(record, "id=" + *id));
  for (unsigned char c : record) {  // SPEC A6
    FUZZ_CHECK(c == '\t' || (c >= 0x20 && c <= 0x7E));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view whole(reinterpret_cast<const char*>(data), size);
  CheckId(mxpolicy::sts::ParseStsTxt(whole), whole);

  const std::vector<TxtRecord> records =
      mxpolicy::fuzz::ToTxtRecords(data, size);
  const absl::StatusOr<std::string> id =
      mxpolicy::sts::ParseStsTxtRecords(records);
  std::vector<std::string> candidates;
  for (const TxtRecord& r : records) {
    std::string joined = r.Joined();
    if (absl::StartsWith(joined, "v=STSv1")) candidates.push_back(joined);
  }
  if (candidates.size() != 1) {
    FUZZ_CHECK(!id.ok());  // SPEC A4: none or several → no policy
    return 0;
  }
  CheckId(id, candidates.front());
  const absl::StatusOr<std::string> single =
      mxpolicy::sts::ParseStsTxt(candidates.front());
  FUZZ_CHECK(id.ok() == single.ok());
  if (id.ok()) FUZZ_CHECK(*id == *single);
  return 0;
}
