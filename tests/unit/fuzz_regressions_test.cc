// Inputs found by the fuzz targets (tests/fuzz, scripts/fuzz.sh), minimised
// by libFuzzer, kept as unit tests so the fixes stay fixed in `make test`
// without a fuzz build. Each case names the fuzz target and the SPEC item.
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/src/common/domain.h"
#include "server/src/sts/policy.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;
using std::string_literals::operator""s;

// normalize_domain_fuzzer. DESIGN "The decision", SPEC J1/I1: a non-LDH
// name is INVALID_ARGUMENT. NUL is neither LDH nor a valid IDNA code point,
// yet a non-ASCII input went to libidn2 as a C string, which ended at the
// first NUL: the name was silently truncated and the prefix accepted.
TEST(FuzzRegressionTest, J1_NormalizeDomainRejectsEmbeddedNul) {
  const std::string inputs[] = {
      "\xD6\x80\0"s,  // as minimised: U+0580 then NUL
      "b\xC3\xBC" "cher.example\0.evil.test"s,
      "example.com\0\xC3\xBC"s,
      "example.com\0x"s,  // ASCII path: already rejected
  };
  for (const std::string& input : inputs) {
    absl::StatusOr<std::string> got = NormalizeDomain(input);
    EXPECT_FALSE(got.ok()) << "accepted as \"" << *got << "\" (input of "
                           << input.size() << " bytes)";
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

// policy_fuzzer. SPEC C1 and Decision C9: "CR alone is not a terminator"
// → invalid. A CR at the very end of the body (no LF after it) was taken
// for the CR of a CRLF and dropped, so the body parsed.
TEST(FuzzRegressionTest, C1_PolicyRejectsCrWithoutLfAtEndOfBody) {
  const std::string bodies[] = {
      "version:STSv1\nmode:none\nmax_age:9\r",  // as minimised
      "version: STSv1\nmode: none\nmax_age: 86400\n\r",  // lone CR last line
  };
  for (const std::string& body : bodies) {
    absl::StatusOr<sts::Policy> got = sts::ParsePolicy(body);
    EXPECT_FALSE(got.ok()) << "accepted: " << body;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr("CR without LF"));
  }
  // The CRLF form of the same body stays valid (C1, C9).
  EXPECT_TRUE(
      sts::ParsePolicy("version:STSv1\r\nmode:none\r\nmax_age:9\r\n").ok());
}

}  // namespace
}  // namespace mxpolicy
