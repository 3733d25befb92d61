// Cold-resolution parallelism benchmark (issue "DANE engine"): with a fixed
// delay D in front of every DNS query (dns_delay_relay.py), the latency of
// a cold Resolve of a 3-MX DANE domain, divided by D, counts the sequential
// round-trip levels. Sequential host lookups would need ≥ 9 (1 MX + 3 × 3);
// the resolver's fan-out should stay below 5.
//
// Two figures per round, each on a fresh libunbound context:
//   cold:        nothing cached — includes DNSSEC chain priming (DNSKEY of
//                test., DS and DNSKEY of the domain's zone).
//   cold-domain: the resolver has validated another test. domain first (as
//                a running server always has the TLD keys); only the
//                domain's own records and keys are uncached.
// Usage: cold_resolve_bench --unbound-config=F --delay-ms=50 [--rounds=5]
//        [--domain=three-mx.test] [--warm-domain=nodane.test]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/src/dns/unbound_dns_client.h"
#include "server/src/resolver/policy_resolver.h"

namespace {

class NoHttps : public mxpolicy::HttpsFetcher {
 public:
  void Fetch(mxpolicy::HttpsRequest, Callback done) override {
    std::move(done)(mxpolicy::FetchResult{});
  }
};

// Resolves `domain` and returns the latency; prints the decision once.
absl::Duration Resolve(mxpolicy::PolicyResolver& resolver,
                       const std::string& domain, std::string* decision) {
  absl::Notification done;
  const absl::Time start = absl::Now();
  resolver.Resolve(domain, [&](absl::StatusOr<mxpolicy::v1::ResolveResponse> r) {
    if (decision != nullptr) {
      *decision = r.ok() ? mxpolicy::v1::Decision_Name(r->decision())
                         : r.status().ToString();
    }
    done.Notify();
  });
  done.WaitForNotification();
  return absl::Now() - start;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string config, domain = "three-mx.test", warm = "nodane.test";
  double delay_ms = 50;
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--unbound-config=")) {
      config = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--delay-ms=")) {
      if (!absl::SimpleAtod(a, &delay_ms)) return 2;
    } else if (absl::ConsumePrefix(&a, "--rounds=")) {
      if (!absl::SimpleAtoi(a, &rounds) || rounds < 1) return 2;
    } else if (absl::ConsumePrefix(&a, "--domain=")) {
      domain = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--warm-domain=")) {
      warm = std::string(a);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  NoHttps https;
  std::vector<double> cold, cold_domain;
  std::string decision;
  for (int round = 0; round < rounds; ++round) {
    for (bool warm_tld : {false, true}) {
      mxpolicy::UnboundDnsClient::Options options;
      options.unbound_config_file = config;
      options.timeout = absl::Seconds(10);
      auto dns = mxpolicy::UnboundDnsClient::Create(options);
      if (!dns.ok()) {
        std::fprintf(stderr, "%s\n", dns.status().ToString().c_str());
        return 1;
      }
      mxpolicy::RealClock clock;
      mxpolicy::sts::PolicyStore store(clock);
      mxpolicy::PolicyResolver resolver(**dns, https, store,
                                        mxpolicy::PolicyResolver::Options());
      if (warm_tld) Resolve(resolver, warm, nullptr);
      const double ms =
          absl::ToDoubleMilliseconds(Resolve(resolver, domain, &decision));
      (warm_tld ? cold_domain : cold).push_back(ms / delay_ms);
    }
  }
  std::printf("domain %s -> %s; DNS delay %.0f ms; %d rounds\n",
              domain.c_str(), decision.c_str(), delay_ms, rounds);
  std::printf("cold Resolve latency / delay, median: cold %.2f, "
              "cold-domain %.2f (sequential lookups would be >= 9; "
              "target < 5)\n",
              Median(cold), Median(cold_domain));
  return Median(cold_domain) < 5 ? 0 : 1;
}
