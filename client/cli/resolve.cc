// mxpolicy resolve: the service's answer per domain, as a table or as JSON.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "mxpolicy/client.h"

namespace mxpolicy::cli {

const char kResolveUsage[] =
    "Usage: mxpolicy resolve [--server=ADDR] [--json] [--deadline=D] "
    "DOMAIN...\n"
    "  --server=ADDR   mxpolicyd address (default 127.0.0.1:8460)\n"
    "  --json          one JSON object per line (proto3 JSON mapping)\n"
    "  --deadline=D    per-call deadline, e.g. 10s (default 30s)\n"
    "Exit codes: 0 all answered, 1 an RPC failed, 2 usage error.\n";

namespace {

void PrintTable(const v1::ResolveResponse& r) {
  std::printf("%s\n", r.domain().c_str());
  std::printf("  decision : %s\n", DecisionName(r.decision()).c_str());
  std::printf("  reason   : %s\n", Printable(r.reason()).c_str());
  std::printf("  mx rrset : %s%s   ttl: %llds   source: %s\n",
              DnssecName(r.mx_dnssec()).c_str(),
              r.implicit_mx() ? " (implicit MX)" : "",
              static_cast<long long>(r.ttl().seconds()),
              SourceName(r.source()).c_str());
  if (r.mx_hosts_size() > 0) {
    std::printf("  %-5s %-32s %-13s %-9s %-14s %s\n", "PREF", "HOST",
                "ADDR-DNSSEC", "TLSA", "REQUIREMENT", "TLSA RECORDS / REASON");
  }
  for (const v1::MxHost& h : r.mx_hosts()) {
    std::vector<std::string> tlsa;
    for (const v1::TlsaRecord& t : h.tlsa_records()) {
      tlsa.push_back(absl::StrFormat("%d %d %d %s", t.usage(), t.selector(),
                                     t.matching_type(),
                                     absl::BytesToHexString(t.data())));
    }
    std::printf("  %-5u %-32s %-13s %-9s %-14s %s\n", h.preference(),
                Printable(h.hostname()).c_str(),
                DnssecName(h.address_dnssec()).c_str(),
                TlsaStateName(h.tlsa_state()).c_str(),
                RequirementName(h.tls_requirement()).c_str(),
                tlsa.empty() ? Printable(h.reason()).c_str()
                             : absl::StrJoin(tlsa, ", ").c_str());
  }
}

}  // namespace

int RunResolve(const std::vector<std::string>& args) {
  CommonFlags flags;
  bool json = false;
  std::vector<std::string> domains;
  if (std::optional<int> done = ParseCommandArgs(
          "mxpolicy", kResolveUsage, args, flags,
          [&json](absl::string_view arg, std::string*) {
            if (arg != "--json") return FlagParse::kNotMine;
            json = true;
            return FlagParse::kOk;
          },
          domains)) {
    return *done;
  }
  if (domains.empty()) {
    std::fprintf(stderr, "%s", kResolveUsage);
    return 2;
  }
  std::unique_ptr<Client> client = MakeClientOrReport("mxpolicy", flags);
  if (client == nullptr) return 2;
  int rc = 0;
  // One domain after the other: the output keeps the command line's order,
  // and an operator's handful of domains needs no concurrency.
  for (const std::string& domain : domains) {
    absl::StatusOr<Policy> policy = client->Resolve(domain, flags.deadline);
    if (!policy.ok()) {
      ReportResolveError("mxpolicy", domain, policy.status());
      rc = 1;
      continue;
    }
    if (json) {
      std::printf("%s\n", ToJson(policy->response).c_str());
    } else {
      PrintTable(policy->response);
    }
  }
  return rc;
}

}  // namespace mxpolicy::cli
