// Fuzzes ParseUnboundResult: a ub_result as libunbound could hand it over
// for hostile DNS data — any flags and rcode, up to 8 RDATA blobs of any
// length (each in its own exact-size heap block so ASan sees an over-read),
// qtype among A/AAAA/MX/TXT/TLSA/CNAME. Invariants (DnsAnswer contract in
// server/src/common/dns_records.h):
//  - kError never comes with records; a bogus answer is kError + kBogus;
//  - only the vector matching qtype is filled, and with kData one record
//    per RDATA (an RRset is never half-parsed);
//  - MX exchanges and CNAME targets hold only [a-z0-9._-] and "\DDD"
//    escapes of other bytes, so a hostile label never passes an LDH check;
//  - addresses are textual IPs that parse back.
#include <arpa/inet.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <unbound.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "server/src/common/dns_records.h"
#include "server/src/dns/unbound_dns_client.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using mxpolicy::DnsAnswer;
using mxpolicy::DnsOutcome;
using mxpolicy::RrType;

// "\DDD" escapes only for bytes ReadName does not keep as they are.
bool IsEscapedName(const std::string& name) {
  if (name.size() > 4 * 255) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.') {
      continue;
    }
    if (c != '\\' || i + 3 >= name.size()) return false;
    for (size_t k = 1; k <= 3; ++k) {
      if (name[i + k] < '0' || name[i + k] > '9') return false;
    }
    const int byte = (name[i + 1] - '0') * 100 + (name[i + 2] - '0') * 10 +
                     (name[i + 3] - '0');
    if (byte > 255) return false;
    const bool kept_as_is = (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' ||
                            byte == '_';
    if (kept_as_is) return false;
    i += 3;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const RrType qtype = fdp.PickValueInArray({RrType::kA, RrType::kAaaa,
                                             RrType::kMx, RrType::kTxt,
                                             RrType::kTlsa, RrType::kCname});
  const uint8_t flags = fdp.ConsumeIntegral<uint8_t>();
  const bool any_rcode = fdp.ConsumeBool();
  const int rcode = any_rcode ? fdp.ConsumeIntegral<int>()
                              : fdp.ConsumeIntegralInRange<int>(0, 5);
  const int ttl = fdp.ConsumeIntegral<int>();
  const size_t count = fdp.ConsumeIntegralInRange<size_t>(0, 8);
  const std::string qname = fdp.ConsumeRandomLengthString(300);
  const std::string canonname = fdp.ConsumeRandomLengthString(300);
  const std::string why_bogus = fdp.ConsumeRandomLengthString(100);

  std::vector<std::unique_ptr<char[]>> blobs;
  auto rdata = std::make_unique<char*[]>(count + 1);
  auto lens = std::make_unique<int[]>(count == 0 ? 1 : count);
  for (size_t i = 0; i < count; ++i) {
    const bool negative = fdp.ConsumeProbability<float>() < 0.02f;
    const std::string blob = i + 1 == count
                                 ? fdp.ConsumeRemainingBytesAsString()
                                 : fdp.ConsumeRandomLengthString(1024);
    blobs.emplace_back(new char[blob.size()]);
    std::memcpy(blobs.back().get(), blob.data(), blob.size());
    rdata[i] = blobs.back().get();
    lens[i] = negative ? -1 : static_cast<int>(blob.size());
  }
  rdata[count] = nullptr;

  ub_result result{};
  result.qname = const_cast<char*>(qname.c_str());
  result.qtype = static_cast<int>(qtype);
  result.qclass = 1;
  result.data = (flags & 0x01) ? nullptr : rdata.get();
  result.len = (flags & 0x01) ? nullptr : lens.get();
  result.canonname = (flags & 0x02) ? const_cast<char*>(canonname.c_str())
                                    : nullptr;
  result.rcode = rcode;
  result.havedata = (flags & 0x04) != 0;
  result.nxdomain = (flags & 0x08) != 0;
  result.secure = (flags & 0x10) != 0;
  result.bogus = (flags & 0x20) != 0;
  result.why_bogus = (flags & 0x40) ? const_cast<char*>(why_bogus.c_str())
                                    : nullptr;
  result.ttl = ttl;

  const DnsAnswer answer = mxpolicy::ParseUnboundResult(qname, qtype, result);

  FUZZ_CHECK(answer.qtype == qtype);
  FUZZ_CHECK(answer.ttl >= absl::ZeroDuration());
  const size_t records = answer.addresses.size() + answer.mx.size() +
                         answer.txt.size() + answer.tlsa.size() +
                         answer.cname.size();
  if (answer.outcome == DnsOutcome::kError) FUZZ_CHECK(records == 0);
  if (answer.outcome != DnsOutcome::kData) FUZZ_CHECK(records == 0);
  if (result.bogus) {
    FUZZ_CHECK(answer.outcome == DnsOutcome::kError);
    FUZZ_CHECK(answer.dnssec == mxpolicy::DnssecState::kBogus);
  }
  if (answer.outcome == DnsOutcome::kData) {
    FUZZ_CHECK(!result.bogus && result.havedata && !result.nxdomain);
    FUZZ_CHECK(records == (result.data == nullptr ? 0 : count));
  }
  switch (qtype) {
    case RrType::kA:
    case RrType::kAaaa:
      FUZZ_CHECK(records == answer.addresses.size());
      for (const std::string& a : answer.addresses) {
        unsigned char buf[16];
        FUZZ_CHECK(inet_pton(qtype == RrType::kA ? AF_INET : AF_INET6,
                             a.c_str(), buf) == 1);
      }
      break;
    case RrType::kMx:
      FUZZ_CHECK(records == answer.mx.size());
      for (const mxpolicy::MxRecord& mx : answer.mx) {
        FUZZ_CHECK(IsEscapedName(mx.exchange));
      }
      break;
    case RrType::kCname:
      FUZZ_CHECK(records == answer.cname.size());
      for (const std::string& c : answer.cname) FUZZ_CHECK(IsEscapedName(c));
      break;
    case RrType::kTxt:
      FUZZ_CHECK(records == answer.txt.size());
      for (const mxpolicy::TxtRecord& t : answer.txt) {
        FUZZ_CHECK(!t.strings.empty());
        for (const std::string& s : t.strings) FUZZ_CHECK(s.size() <= 255);
      }
      break;
    case RrType::kTlsa:
      FUZZ_CHECK(records == answer.tlsa.size());
      break;
  }
  return 0;
}
