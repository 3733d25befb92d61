// NormalizeDomain: the gate every Resolve passes (DESIGN.md "The decision";
// SPEC J1 IDN, J2 trailing dots, J3 case, I1 parent/IP keys).
#include "server/src/common/domain.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

struct Good {
  std::string input;
  std::string want;
};

class NormalizeGoodTest : public ::testing::TestWithParam<Good> {};

TEST_P(NormalizeGoodTest, Normalises) {
  absl::StatusOr<std::string> got = NormalizeDomain(GetParam().input);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Spec, NormalizeGoodTest,
    ::testing::Values(
        Good{"example.com", "example.com"},
        Good{"EXAMPLE.Com", "example.com"},               // SPEC J3
        Good{"example.com.", "example.com"},              // SPEC J2
        Good{"bücher.example", "xn--bcher-kva.example"},  // SPEC J1
        Good{"BÜCHER.example", "xn--bcher-kva.example"},  // UTS #46 mapping
        Good{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},  // J1 case
        Good{"a-b.c0.test", "a-b.c0.test"},
        Good{std::string(63, 'a') + ".test", std::string(63, 'a') + ".test"}),
    [](const ::testing::TestParamInfo<Good>& info) {
      return absl::StrCat("case", info.index);
    });

struct Bad {
  std::string input;
  std::string why;  // substring of the error message
};

class NormalizeBadTest : public ::testing::TestWithParam<Bad> {};

TEST_P(NormalizeBadTest, RejectsWithClearMessage) {
  absl::StatusOr<std::string> got = NormalizeDomain(GetParam().input);
  ASSERT_FALSE(got.ok()) << "accepted: " << *got;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr(GetParam().why));
}

std::string LongName() {
  std::string name;
  while (name.size() < 254) name += "abcdefghi.";
  return name + "test";
}

INSTANTIATE_TEST_SUITE_P(
    Spec, NormalizeBadTest,
    ::testing::Values(
        Bad{"", "empty"}, Bad{".", "leading dot"},
        Bad{".example.com", "leading dot"},     // SPEC I1 parent key
        Bad{"[192.0.2.1]", "address literal"},  // SPEC A10
        Bad{"[relay.example]:587", "address literal"},
        Bad{"relay.example:587", "':'"}, Bad{"2001:db8::1", "':'"},
        Bad{"192.0.2.1", "IP address literal"},
        Bad{"example..com", "empty label"}, Bad{"example.com..", "empty label"},
        Bad{std::string(64, 'a') + ".test", "longer than 63"},
        Bad{LongName(), "longer than 253"},
        Bad{"exa mple.com", "letters, digits"},
        Bad{"under_score.test", "letters, digits"}, Bad{"-lead.test", "'-'"},
        Bad{"bad\xff.test", "UTF-8"}, Bad{"bad\xc3.test", "UTF-8"},
        Bad{"xn--zz.test", "A-label"},  // SPEC J1: invalid punycode
        Bad{std::string("b\xc3\xbc" "cher.example\0.evil.test", 26), "NUL"},
        Bad{"a\x01"
            "b.test",
            "letters, digits"}),
    [](const ::testing::TestParamInfo<Bad>& info) {
      std::string name = absl::StrCat(info.index, "_", info.param.why);
      for (char& c : name) {
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(NormalizeDomainTest, QuotesHostileInputEscapedAndTruncated) {
  absl::StatusOr<std::string> got =
      NormalizeDomain(std::string("x\n\x01y") + std::string(500, 'a'));
  ASSERT_FALSE(got.ok());
  const std::string message(got.status().message());
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_THAT(message, HasSubstr("\\n\\x01y"));
  EXPECT_LT(message.size(), 200u);
}

TEST(IsLdhHostnameTest, AcceptsOnlyLowercaseLdh) {
  EXPECT_TRUE(IsLdhHostname("mx1.example.com"));
  EXPECT_FALSE(IsLdhHostname("MX1.example.com"));
  EXPECT_FALSE(IsLdhHostname("mx1.example.com."));
  EXPECT_FALSE(IsLdhHostname("192.0.2.1"));  // SPEC J5
  EXPECT_FALSE(IsLdhHostname("a\\032b.example"));
  EXPECT_FALSE(IsLdhHostname(""));
}

}  // namespace
}  // namespace mxpolicy
