// TLSA usability for SMTP (SPEC G8; J12 rows on unusable records).
#include "server/src/dane/tlsa.h"

#include <string>

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

INSTANTIATE_TEST_SUITE_P(
    SpecG8, TlsaUsabilityTest,
    ::testing::Values(
        Row{"dane_ee_spki_sha256", R(3, 1, 1, 32), true},
        Row{"dane_ta_spki_sha256", R(2, 1, 1, 32), true},
        Row{"dane_ee_cert_sha512", R(3, 0, 2, 64), true},
        Row{"dane_ee_full", R(3, 1, 0, 91), true},
        Row{"pkix_ta_unusable", R(0, 1, 1, 32), false},   // J12 0 x x
        Row{"pkix_ee_unusable", R(1, 1, 1, 32), false},   // J12 1 x x
        Row{"sha256_31_bytes", R(3, 1, 1, 31), false},    // J12 3 1 1 short
        Row{"sha256_33_bytes", R(3, 1, 1, 33), false},
        Row{"sha512_63_bytes", R(3, 1, 2, 63), false},
        Row{"private_matching", R(3, 1, 255, 32), false},  // J12 3 1 255
        Row{"unknown_selector", R(3, 2, 1, 32), false},
        Row{"usage_255", R(255, 1, 1, 32), false},
        Row{"full_empty", R(3, 1, 0, 0), false}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mxpolicy::dane
