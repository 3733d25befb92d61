// TLSA usability for SMTP (SPEC G8; J12 rows on unusable records).
#include "server/src/dane/tlsa.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace mxpolicy::dane {
namespace {

struct Row {
  const char* name;
  TlsaRecord record;
  bool usable;
};

class TlsaUsabilityTest : public ::testing::TestWithParam<Row> {};

TEST_P(TlsaUsabilityTest, MatchesSpecG8) {
  const Row& row = GetParam();
  EXPECT_EQ(IsUsableTlsa(row.record), row.usable)
      << row.name << ": " << TlsaUnusableReason(row.record);
}

TlsaRecord R(int u, int s, int m, size_t len) {
  return TlsaRecord{static_cast<uint8_t>(u), static_cast<uint8_t>(s),
                    static_cast<uint8_t>(m), std::string(len, '\x5a')};
}

TlsaRecord Full(std::string der) { return TlsaRecord{3, 1, 0, std::move(der)}; }

INSTANTIATE_TEST_SUITE_P(
    SpecG8, TlsaUsabilityTest,
    ::testing::Values(
        Row{"dane_ee_spki_sha256", R(3, 1, 1, 32), true},
        Row{"dane_ta_spki_sha256", R(2, 1, 1, 32), true},
        Row{"dane_ee_cert_sha512", R(3, 0, 2, 64), true},
        Row{"dane_ee_full_der", Full(std::string("\x30\x03\x02\x01\x00", 5)),
            true},
        Row{"full_long_form_der",
            Full(std::string("\x30\x81\x80", 3) + std::string(128, 'x')), true},
        Row{"full_not_der", R(3, 1, 0, 91), false},
        Row{"full_trailing_bytes", Full(std::string("\x30\x01\x00\x00", 4)),
            false},
        Row{"full_truncated", Full(std::string("\x30\x05\x00", 3)), false},
        Row{"pkix_ta_unusable", R(0, 1, 1, 32), false},  // J12 0 x x
        Row{"pkix_ee_unusable", R(1, 1, 1, 32), false},  // J12 1 x x
        Row{"sha256_31_bytes", R(3, 1, 1, 31), false},   // J12 3 1 1 short
        Row{"sha256_33_bytes", R(3, 1, 1, 33), false},
        Row{"sha512_63_bytes", R(3, 1, 2, 63), false},
        Row{"private_matching", R(3, 1, 255, 32), false},  // J12 3 1 255
        Row{"unknown_selector", R(3, 2, 1, 32), false},
        Row{"usage_255", R(255, 1, 1, 32), false},
        Row{"full_empty", R(3, 1, 0, 0), false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SelectUsableTest, DigestAgilityKeepsStrongestPerUsageSelector) {
  // SPEC G9: per (usage, selector), Full records plus the strongest digest.
  const TlsaRecord ee256 = R(3, 1, 1, 32), ee512 = R(3, 1, 2, 64);
  const TlsaRecord ta256 = R(2, 0, 1, 32), pkix = R(1, 1, 2, 64);
  const TlsaRecord full = Full(std::string("\x30\x00", 2));
  EXPECT_EQ(SelectUsable({ee256, ee512, ta256, pkix, full}),
            (std::vector<TlsaRecord>{ee512, ta256, full}));
  EXPECT_EQ(SelectUsable({ee256}), (std::vector<TlsaRecord>{ee256}));
  EXPECT_TRUE(SelectUsable({pkix, R(3, 1, 1, 31)}).empty());
}

}  // namespace
}  // namespace mxpolicy::dane
