// SyntheticDns: a DnsClient for benchmarks that must keep DNS cost out of
// what they measure (hot_path_bench's in-process shard comparison). Every name D
// answers as a secure DANE domain: MX 10 mx.D, mx.D A 192.0.2.1 (no AAAA),
// _25._tcp.mx.D TLSA 3 1 1 <32 bytes>, no MTA-STS and no TLSRPT (TXT
// NXDOMAIN). Answers come at once, on the caller's thread, as resolver_test's
// fake does. Benchmarks using it say so in their output. NoHttps fails every
// fetch (the synthetic domains never ask for one).
#ifndef MXPOLICY_TESTS_BENCH_SYNTHETIC_DNS_H_
#define MXPOLICY_TESTS_BENCH_SYNTHETIC_DNS_H_

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/src/dns/dns_client.h"
#include "server/src/https/https_fetcher.h"

namespace mxpolicy::bench {

class SyntheticDns : public DnsClient {
 public:
  void Lookup(absl::string_view name, RrType type, Callback done) override {
    DnsAnswer a;
    a.qname = std::string(name);
    a.qtype = type;
    a.canonical_name = a.qname;
    a.dnssec = DnssecState::kSecure;
    a.ttl = absl::Seconds(300);
    a.outcome = DnsOutcome::kNoData;
    const bool host = absl::StartsWith(name, "mx.");
    switch (type) {
      case RrType::kMx:
        if (!host) {
          a.outcome = DnsOutcome::kData;
          a.mx.push_back({10, absl::StrCat("mx.", name)});
        }
        break;
      case RrType::kA:
        if (host) {
          a.outcome = DnsOutcome::kData;
          a.addresses.push_back("192.0.2.1");
        }
        break;
      case RrType::kTlsa:
        if (absl::StartsWith(name, "_25._tcp.mx.")) {
          a.outcome = DnsOutcome::kData;
          a.tlsa.push_back({3, 1, 1, std::string(32, '\xab')});
        } else {
          a.outcome = DnsOutcome::kNxDomain;
          a.rcode = 3;
        }
        break;
      case RrType::kTxt:
        a.outcome = DnsOutcome::kNxDomain;
        a.rcode = 3;
        break;
      default:
        break;
    }
    std::move(done)(std::move(a));
  }
};

class NoHttps : public HttpsFetcher {
 public:
  void Fetch(HttpsRequest, Callback done) override {
    std::move(done)(FetchResult{});
  }
};

}  // namespace mxpolicy::bench

#endif  // MXPOLICY_TESTS_BENCH_SYNTHETIC_DNS_H_
