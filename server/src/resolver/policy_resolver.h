// PolicyResolver: turns a recipient domain into a ResolveResponse by running
// the DNS (and later HTTPS) lookups asynchronously and handing the records to
// the pure RFC logic in dane/ and sts/. It owns no threads: work runs on the
// adapters' threads, never blocking them.
#ifndef MXPOLICY_RESOLVER_POLICY_RESOLVER_H_
#define MXPOLICY_RESOLVER_POLICY_RESOLVER_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "mxpolicy/v1/mxpolicy.pb.h"
#include "server/src/dns/dns_client.h"
#include "server/src/https/https_fetcher.h"
#include "server/src/resolver/policy_fetcher.h"
#include "server/src/sts/policy_store.h"

namespace mxpolicy {

// Contract: Resolve() validates and normalises the domain, then looks up the
// MX RRset and fans out to every MX host's A, AAAA and TLSA lookups at once
// (further lookups only where CNAMEs demand them), and decides with the pure
// DANE engine (dane/). `done` runs exactly once — synchronously for
// INVALID_ARGUMENT, otherwise on a DNS adapter thread. DNS failures are
// answers, not errors: they are decisions (TEMPFAIL, ...) with DNSSEC states
// and reasons. Thread-safe; the adapters must outlive every pending
// resolution.
class PolicyResolver {
 public:
  using Callback =
      absl::AnyInvocable<void(absl::StatusOr<v1::ResolveResponse>) &&>;

  struct Options {
    // TCP port for policy fetches (443 except in test worlds).
    uint16_t sts_https_port = 443;
    // SPEC A9: when the TXT lookup fails (SERVFAIL, timeout, bogus) and no
    // policy is cached, answer TEMPFAIL instead of "no MTA-STS".
    bool sts_discovery_failure_tempfail = false;
  };

  // `tier` (may be null): the shared L2 tier. A domain without a policy in
  // `store` is also looked up there (alongside its TXT lookup), and fetched
  // policies are shared there, so a restarted or new replica still knows
  // every policy the fleet has seen (RFC 8461 §10.2).
  PolicyResolver(DnsClient& dns, HttpsFetcher& https, sts::PolicyStore& store,
                 Options options, SharedTier* tier = nullptr);

  // DANE and MTA-STS run in parallel: the MX lookup, the `_mta-sts` TXT
  // lookup (then, when needed, the policy fetch) and the `_smtp._tls` TXT
  // lookup start at once; the DANE verdict takes precedence (RFC 8461 §2).
  void Resolve(absl::string_view domain, Callback done);

  // Starts the proactive refresh (RFC 8461 §3.3, §10.2; SPEC D5) of up to
  // `limit` cached policies that are due, by resolving their domains in the
  // background (TXT id, then the fetch the store asks for). Returns how many
  // were started. Call it periodically; it never blocks.
  size_t RefreshDuePolicies(size_t limit);

  PolicyFetcher& fetcher() { return fetcher_; }

 private:
  DnsClient& dns_;
  sts::PolicyStore& store_;
  const Options options_;
  SharedTier* const tier_;
  PolicyFetcher fetcher_;
};

}  // namespace mxpolicy

#endif  // MXPOLICY_RESOLVER_POLICY_RESOLVER_H_
