// MTA-STS pure logic (server/src/sts): the `_mta-sts` TXT record (SPEC A),
// the policy body (SPEC C, J8), pattern matching (SPEC E2, J11) and the
// TLSRPT record (SPEC H1). Test names carry the SPEC item.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/src/sts/policy.h"
#include "server/src/sts/txt_record.h"

namespace mxpolicy::sts {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- A: TXT record ----

std::string Id(absl::string_view record) {
  absl::StatusOr<std::string> id = ParseStsTxt(record);
  return id.ok() ? *id : "INVALID: " + std::string(id.status().message());
}

TEST(StsTxtTest, A5_GrammarAccepts) {
  EXPECT_EQ(Id("v=STSv1; id=20160831085700Z;"), "20160831085700Z");
  EXPECT_EQ(Id("v=STSv1;id=1"), "1");  // no space
  EXPECT_EQ(Id("v=STSv1 ; id=abc ;  "), "abc");  // WSP around delimiters
  EXPECT_EQ(Id("v=STSv1; id=abc; foo=bar; x.y-z_1=!\"#"), "abc");  // A5 ext
  EXPECT_EQ(Id("v=STSv1; foo=bar; id=x"), "x");  // order free
  EXPECT_EQ(Id(absl::StrCat("v=STSv1; id=", std::string(32, 'a'))),
            std::string(32, 'a'));
}

TEST(StsTxtTest, A5_GrammarRejects) {
  EXPECT_THAT(Id(absl::StrCat("v=STSv1; id=", std::string(33, 'a'))),
              HasSubstr("1 to 32"));
  EXPECT_THAT(Id("v=STSv1; id=abc-1"), HasSubstr("letters and digits"));
  EXPECT_THAT(Id("v=STSv1; foo=bar"), HasSubstr("no id"));
  EXPECT_THAT(Id("V=STSv1; id=1"), HasSubstr("does not start"));  // case
  EXPECT_THAT(Id("v=STSv1; id=1; foo=bar baz"), HasSubstr("separated"));
  EXPECT_THAT(Id("v=STSv1"), HasSubstr("no fields"));
  EXPECT_THAT(Id("v=STSv1; id="), HasSubstr("1 to 32"));
  EXPECT_THAT(Id("v=STSv1; id=1; =x"), HasSubstr("malformed"));
  EXPECT_THAT(Id("v=STSv1; id=1; foo"), HasSubstr("without '='"));
  EXPECT_THAT(Id("v=STSv1; id=1; foo=a=b"), HasSubstr("malformed"));
}

TEST(StsTxtTest, A6_NonAsciiIsInvalid) {
  EXPECT_THAT(Id("v=STSv1; id=1; x=\xc3\xa4"), HasSubstr("US-ASCII"));
  EXPECT_THAT(Id(std::string("v=STSv1; id=1\0", 14)), HasSubstr("US-ASCII"));
}

TEST(StsTxtTest, A7_FirstIdWins) {
  EXPECT_EQ(Id("v=STSv1; id=first; id=second"), "first");
}

TEST(StsTxtTest, A3_StringsJoinedWithoutSeparator) {
  absl::StatusOr<std::string> id =
      ParseStsTxtRecords({TxtRecord{{"v=STSv1; id=ab", "cd;"}}});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "abcd");
}

TEST(StsTxtTest, A4_PrefixFilterThenExactlyOne) {
  const TxtRecord spf{{"v=spf1 -all"}}, good{{"v=STSv1; id=1"}},
      other{{"v=STSv1; id=2"}}, v2{{"v=STSv2; id=3"}};
  EXPECT_EQ(*ParseStsTxtRecords({spf, good}), "1");  // SPF ignored
  EXPECT_FALSE(ParseStsTxtRecords({}).ok());          // none left
  EXPECT_FALSE(ParseStsTxtRecords({spf}).ok());
  EXPECT_THAT(ParseStsTxtRecords({good, other}).status().message(),
              HasSubstr("2 v=STSv1"));  // two valid → none
  // "v=STSv2" passes the literal prefix "v=STSv1"? No: it differs.
  EXPECT_FALSE(ParseStsTxtRecords({v2}).ok());
  // A4 decision: prefix "v=STSv1" then full grammar.
  EXPECT_FALSE(ParseStsTxtRecords({TxtRecord{{"v=STSv1x; id=1"}}}).ok());
}

TEST(StsTxtTest, A8_IdIsOpaqueAndCaseSensitive) {
  EXPECT_EQ(Id("v=STSv1; id=AbC"), "AbC");
  EXPECT_NE(Id("v=STSv1; id=AbC"), Id("v=STSv1; id=abc"));
}

// ---- H1: TLSRPT ----

TEST(TlsRptTest, H1_RuaParsed) {
  absl::StatusOr<std::vector<std::string>> rua = ParseTlsRptRecords(
      {TxtRecord{{"v=TLSRPTv1; rua=mailto:tlsrpt@example.com,",
                  "https://report.example.com/v1"}},
       TxtRecord{{"v=spf1 -all"}}});
  ASSERT_TRUE(rua.ok()) << rua.status();
  EXPECT_THAT(*rua, ElementsAre("mailto:tlsrpt@example.com",
                                "https://report.example.com/v1"));
}

TEST(TlsRptTest, H1_Rejects) {
  EXPECT_FALSE(ParseTlsRptRecords({}).ok());
  EXPECT_FALSE(
      ParseTlsRptRecords({TxtRecord{{"v=TLSRPTv1; rua=mailto:a@b.c"}},
                          TxtRecord{{"v=TLSRPTv1; rua=mailto:d@e.f"}}})
          .ok());
  EXPECT_FALSE(ParseTlsRptRecords({TxtRecord{{"v=TLSRPTv1; foo=bar"}}}).ok());
  EXPECT_FALSE(
      ParseTlsRptRecords({TxtRecord{{"v=TLSRPTv1; rua=ftp://x.example"}}})
          .ok());
}

// ---- C: policy body ----

constexpr absl::string_view kGood =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
    "mx: *.example.net\r\nmax_age: 86400\r\n";

Policy MustParse(absl::string_view body) {
  absl::StatusOr<Policy> p = ParsePolicy(body);
  EXPECT_TRUE(p.ok()) << p.status() << " for body:\n" << body;
  return p.ok() ? *p : Policy{};
}

std::string Error(absl::string_view body) {
  absl::StatusOr<Policy> p = ParsePolicy(body);
  return p.ok() ? "VALID" : std::string(p.status().message());
}

TEST(StsPolicyTest, C1_C3_C10_GoodPolicy) {
  Policy p = MustParse(kGood);
  EXPECT_EQ(p.mode, Mode::kEnforce);
  EXPECT_THAT(p.mx, ElementsAre("mail.example.com", "*.example.net"));
  EXPECT_EQ(p.max_age, absl::Seconds(86400));
  EXPECT_THAT(p.lines,
              ElementsAre("version: STSv1", "mode: enforce",
                          "mx: mail.example.com", "mx: *.example.net",
                          "max_age: 86400"));
}

TEST(StsPolicyTest, C1_LineEndings) {
  MustParse("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1\n");
  MustParse("version: STSv1\r\nmode: testing\nmx: a.example\r\nmax_age: 1");
  EXPECT_THAT(Error("version: STSv1\rmode: testing\rmx: a.example\rmax_age: 1"),
              HasSubstr("CR without LF"));
}

TEST(StsPolicyTest, C1_TrailingWhitespaceAndNoFinalNewline) {
  Policy p = MustParse("version: STSv1  \nmode:testing\t\nmx:  a.example \n"
                       "max_age: 5");
  EXPECT_EQ(p.mode, Mode::kTesting);
  EXPECT_THAT(p.mx, ElementsAre("a.example"));
}

TEST(StsPolicyTest, C1_NoWhitespaceBeforeColonOrAtLineStart) {
  EXPECT_THAT(Error("version : STSv1\nmode: none\nmax_age: 1\n"),
              HasSubstr("field name"));
  EXPECT_THAT(Error(" version: STSv1\nmode: none\nmax_age: 1\n"),
              HasSubstr("field name"));
  EXPECT_THAT(Error("version STSv1\nmode: none\nmax_age: 1\n"),
              HasSubstr("no ':'"));
}

TEST(StsPolicyTest, C2_KeysAndKeywordsAreCaseSensitive) {
  // "Mode" is an extension, so mode is missing.
  EXPECT_THAT(Error("version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1"),
              HasSubstr("no mode"));
  EXPECT_THAT(Error("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1"),
              HasSubstr("mode must be"));
  EXPECT_THAT(Error("version: stsv1\nmode: none\nmax_age: 1"),
              HasSubstr("STSv1"));
}

TEST(StsPolicyTest, C3_RequiredFields) {
  EXPECT_THAT(Error("mode: none\nmax_age: 1"), HasSubstr("no version"));
  EXPECT_THAT(Error("version: STSv1\nmode: none"), HasSubstr("no max_age"));
  EXPECT_THAT(Error("version: STSv1\nmode: enforce\nmax_age: 1"),
              HasSubstr("no mx"));  // J8 enforce without mx
  Policy none = MustParse("version: STSv1\nmode: none\nmax_age: 1");  // J8
  EXPECT_EQ(none.mode, Mode::kNone);
  EXPECT_TRUE(none.mx.empty());
}

TEST(StsPolicyTest, C4_MxPatternSyntax) {
  auto with_mx = [](absl::string_view mx) {
    return absl::StrCat("version: STSv1\nmode: enforce\nmx: ", mx,
                        "\nmax_age: 1\n");
  };
  EXPECT_THAT(MustParse(with_mx("*.example.com")).mx,
              ElementsAre("*.example.com"));
  EXPECT_THAT(MustParse(with_mx("MAIL.Example.COM")).mx,
              ElementsAre("mail.example.com"));
  EXPECT_THAT(MustParse(with_mx("xn--bcher-kva.example")).mx,
              ElementsAre("xn--bcher-kva.example"));
  for (const char* bad :
       {"a.com, b.com", "*example.com", "a.*.com", "*", "müller.de",
        "a b.example", "a=b.example", "a:b.example", "{a}.example",
        "a\x01.example", "192.0.2.1", "*.*.example.com", "a..example",
        "-a.example"}) {
    EXPECT_THAT(Error(with_mx(bad)), HasSubstr("mx must be")) << bad;
  }
}

TEST(StsPolicyTest, J2_SingleTrailingDotStripped) {
  EXPECT_THAT(MustParse("version: STSv1\nmode: enforce\nmx: mail.example.com."
                        "\nmax_age: 1")
                  .mx,
              ElementsAre("mail.example.com"));
  EXPECT_THAT(Error("version: STSv1\nmode: enforce\nmx: mail.example.com.."
                    "\nmax_age: 1"),
              HasSubstr("mx must be"));
}

TEST(StsPolicyTest, C5_ExtensionsIgnored) {
  Policy p = MustParse(
      "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1\n"
      "x-note: free text with spaces\nfoo.bar_baz-1: caf\xc3\xa9\n");
  EXPECT_EQ(p.lines.size(), 4u);  // extension lines are not kept
  EXPECT_THAT(Error("version: STSv1\nmode: none\nmax_age: 1\nbad name: x\n"),
              HasSubstr("field name"));
  EXPECT_THAT(Error("version: STSv1\nmode: none\nmax_age: 1\nx: a\x01" "b\n"),
              HasSubstr("extension value"));
}

TEST(StsPolicyTest, C6_FirstOccurrenceWins) {
  Policy p = MustParse(
      "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\n"
      "max_age: 10\nmax_age: 20\nmx: b.example\n");
  EXPECT_EQ(p.mode, Mode::kTesting);  // J8 duplicate mode: the first wins
  EXPECT_EQ(p.max_age, absl::Seconds(10));
  EXPECT_THAT(p.mx, ElementsAre("a.example", "b.example"));
}

TEST(StsPolicyTest, C7_MaxAgeRangeAndClamp) {
  auto age = [](absl::string_view v) {
    return ParsePolicy(absl::StrCat("version: STSv1\nmode: none\nmax_age: ", v));
  };
  EXPECT_EQ(age("31557600")->max_age, absl::Seconds(31557600));
  EXPECT_FALSE(age("31557600")->max_age_clamped);
  EXPECT_EQ(age("31557601")->max_age, absl::Seconds(31557600));
  EXPECT_TRUE(age("31557601")->max_age_clamped);
  EXPECT_EQ(age("9999999999")->max_age, absl::Seconds(31557600));
  EXPECT_EQ(age("0")->max_age, absl::ZeroDuration());
  EXPECT_EQ(age("00086400")->max_age, absl::Seconds(86400));  // leading zeros
  for (const char* bad : {"12345678901", "-1", "1e6", "", "+5", " 1 2"}) {
    EXPECT_FALSE(age(bad).ok()) << bad;
  }
}

TEST(StsPolicyTest, C8_InvalidUtf8AndNul) {
  EXPECT_THAT(Error("version: STSv1\nmode: none\nmax_age: 1\nx: \xff\n"),
              HasSubstr("UTF-8"));
  EXPECT_THAT(Error(std::string("version: STSv1\nmode: none\0\nmax_age: 1", 37)),
              HasSubstr("NUL"));
}

TEST(StsPolicyTest, C9_BomAndBlankLines) {
  Policy p = MustParse(
      "\xEF\xBB\xBFversion: STSv1\n\nmode: enforce\n  \n\r\nmx: a.example\n"
      "max_age: 1\n\n");
  EXPECT_EQ(p.mode, Mode::kEnforce);
}

TEST(StsPolicyTest, J8_TenThousandMxLines) {
  std::string body = "version: STSv1\nmode: enforce\nmax_age: 1\n";
  for (int i = 0; i < 10000; ++i) absl::StrAppend(&body, "mx: h", i, ".example\n");
  EXPECT_EQ(MustParse(body).mx.size(), 10000u);
}

TEST(StsPolicyTest, PolicyFieldsCarryOnlyReplySafeBytes) {
  // Policy-injection defence: whatever a hostile body holds, what comes out
  // in mx and lines is [a-z0-9.*-] plus the fixed "key: " prefixes.
  Policy p = MustParse(
      "version: STSv1\nmode: enforce\nmx: OK.example\nmax_age: 1\n"
      "x-evil: a b=c:d,e{f}g\n");
  for (const std::string& s : p.mx) {
    EXPECT_EQ(s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.*-"),
              std::string::npos)
        << s;
  }
  for (const std::string& line : p.lines) {
    EXPECT_EQ(line.find_first_of("={},\x01"), std::string::npos) << line;
  }
}

// ---- E2 / J11: pattern matching ----

TEST(StsPatternTest, E2_J11_WildcardIsExactlyOneLabel) {
  EXPECT_TRUE(MatchesPattern("*.example.com", "mail.example.com"));
  EXPECT_TRUE(MatchesPattern("*.example.com", "MAIL.Example.COM."));
  EXPECT_FALSE(MatchesPattern("*.example.com", "example.com"));
  EXPECT_FALSE(MatchesPattern("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(MatchesPattern("*.example.com", "xexample.com"));
  EXPECT_FALSE(MatchesPattern("*.example.com", ".example.com"));
  EXPECT_TRUE(MatchesPattern("example.com", "EXAMPLE.com"));
  EXPECT_FALSE(MatchesPattern("example.com", "mail.example.com"));
  EXPECT_TRUE(MatchesAnyPattern({"a.example", "*.b.example"}, "x.b.example"));
  EXPECT_FALSE(MatchesAnyPattern({}, "x.b.example"));
}

}  // namespace
}  // namespace mxpolicy::sts
