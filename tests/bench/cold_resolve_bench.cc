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
// Branches (issue "engine at speed"): for a domain that needs both branches
// (--branches-domain, default sts-blank.test: MTA-STS enforce, no DANE —
// the DANE branch walks MX and hosts, the MTA-STS branch TXT, the policy
// host's address and the fetch from the world's nginx), three cold-domain
// latencies per round: the whole Resolve, the DANE branch alone and the
// MTA-STS branch alone. "Alone" is made at the I/O seam: a DnsClient wrapper
// answers the other branch's first lookup at once (the `_mta-sts`/`_smtp._tls`
// TXT lookups with a secure NXDOMAIN for DANE alone; the MX lookup with a
// SERVFAIL for MTA-STS alone, which ends the DANE branch on the spot), so
// that branch costs nothing and the Resolve lasts as long as the other one.
// Target: median(both) ≤ 1.3 × median(slower branch alone).
//
// Usage (MXPOLICY_WORLD_DIR names the running world, for its CA and HTTPS
// port): cold_resolve_bench --unbound-config=F --delay-ms=50 [--rounds=5]
//        [--domain=three-mx.test] [--warm-domain=nodane.test]
//        [--branches-domain=sts-blank.test]
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/src/dns/unbound_dns_client.h"
#include "server/src/https/curl_https_fetcher.h"
#include "server/src/resolver/policy_resolver.h"
#include "tests/bench/synthetic_dns.h"  // NoHttps
#include "tests/support/world_env.h"

namespace {

using mxpolicy::bench::NoHttps;  // the DANE measurement fetches nothing

enum class Branches { kBoth, kDaneAlone, kStsAlone };

// Passes lookups through to the (delayed) real DNS, except the first lookup
// of the branch that is switched off, answered at once.
class BranchGate : public mxpolicy::DnsClient {
 public:
  BranchGate(mxpolicy::DnsClient& inner, Branches branches)
      : inner_(inner), branches_(branches) {}
  void Lookup(absl::string_view name, mxpolicy::RrType type,
              Callback done) override {
    const bool sts_txt = type == mxpolicy::RrType::kTxt &&
                         (absl::StartsWith(name, "_mta-sts.") ||
                          absl::StartsWith(name, "_smtp._tls."));
    if (branches_ == Branches::kDaneAlone && sts_txt) {
      mxpolicy::DnsAnswer a;
      a.qname = std::string(name);
      a.qtype = type;
      a.canonical_name = a.qname;
      a.dnssec = mxpolicy::DnssecState::kSecure;
      a.outcome = mxpolicy::DnsOutcome::kNxDomain;
      a.ttl = absl::Seconds(300);
      std::move(done)(std::move(a));
      return;
    }
    if (branches_ == Branches::kStsAlone && type == mxpolicy::RrType::kMx) {
      std::move(done)(absl::UnavailableError("switched off (SERVFAIL)"));
      return;
    }
    inner_.Lookup(name, type, std::move(done));
  }

 private:
  mxpolicy::DnsClient& inner_;
  const Branches branches_;
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

// A new libunbound context (nothing cached) through `config`; nullptr
// after printing why it could not be made.
std::unique_ptr<mxpolicy::UnboundDnsClient> FreshDns(const std::string& config) {
  mxpolicy::UnboundDnsClient::Options options;
  options.unbound_config_file = config;
  options.timeout = absl::Seconds(10);
  auto dns = mxpolicy::UnboundDnsClient::Create(options);
  if (!dns.ok()) {
    std::fprintf(stderr, "%s\n", dns.status().ToString().c_str());
    return nullptr;
  }
  return *std::move(dns);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string config, domain = "three-mx.test", warm = "nodane.test",
                      branches_domain = "sts-blank.test";
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
    } else if (absl::ConsumePrefix(&a, "--branches-domain=")) {
      branches_domain = std::string(a);
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
      std::unique_ptr<mxpolicy::UnboundDnsClient> dns = FreshDns(config);
      if (dns == nullptr) return 1;
      mxpolicy::RealClock clock;
      mxpolicy::sts::PolicyStore store(clock);
      mxpolicy::PolicyResolver resolver(*dns, https, store,
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
  int rc = Median(cold_domain) < 5 ? 0 : 1;

  absl::StatusOr<mxpolicy::testing::WorldEnv> env =
      mxpolicy::testing::LoadWorldEnv();
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 2;
  }
  mxpolicy::CurlHttpsFetcher::Options fetch_options;
  fetch_options.ca_file = env->ca_file;
  auto fetcher = mxpolicy::CurlHttpsFetcher::Create(fetch_options);
  if (!fetcher.ok()) {
    std::fprintf(stderr, "%s\n", fetcher.status().ToString().c_str());
    return 2;
  }
  mxpolicy::PolicyResolver::Options resolver_options;
  resolver_options.sts_https_port = env->https_port;
  std::vector<double> ms[3];
  std::string decisions[3];
  for (int round = 0; round < rounds; ++round) {
    for (Branches b : {Branches::kBoth, Branches::kDaneAlone,
                       Branches::kStsAlone}) {
      std::unique_ptr<mxpolicy::UnboundDnsClient> dns = FreshDns(config);
      if (dns == nullptr) return 1;
      BranchGate gate(*dns, b);
      mxpolicy::RealClock clock;
      mxpolicy::sts::PolicyStore store(clock);
      mxpolicy::PolicyResolver warm_resolver(*dns, https, store,
                                             resolver_options);
      Resolve(warm_resolver, warm, nullptr);  // the TLD's keys, as always
      mxpolicy::PolicyResolver resolver(gate, **fetcher, store,
                                        resolver_options);
      const int i = static_cast<int>(b);
      ms[i].push_back(absl::ToDoubleMilliseconds(
          Resolve(resolver, branches_domain, &decisions[i])));
    }
  }
  const double both = Median(ms[0]), dane = Median(ms[1]), sts = Median(ms[2]);
  const double slower = std::max(dane, sts);
  std::printf("branches: %s (%s); cold-domain latency, median of %d: both "
              "%.0f ms, DANE branch alone %.0f ms (%s), MTA-STS branch alone "
              "%.0f ms (%s)\n",
              branches_domain.c_str(), decisions[0].c_str(), rounds, both,
              dane, decisions[1].c_str(), sts, decisions[2].c_str());
  std::printf("cold path: both branches / slower branch alone: %.2f "
              "(the sum would be %.2f; target <= 1.3)\n",
              both / slower, (dane + sts) / slower);
  if (decisions[0] != "DECISION_STS_ENFORCE" || both > 1.3 * slower) rc |= 1;
  return rc;
}
