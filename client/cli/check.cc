// mxpolicy check: a validator report for a domain owner who has just
// published DANE or MTA-STS, read from the service's Resolve answer (see
// check_report.h for the rules). It shows what the fleet's senders will do,
// because it asks the same service they ask.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/check_report.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "mxpolicy/client.h"

namespace mxpolicy::cli {

const char kCheckUsage[] =
    "Usage: mxpolicy check [--server=ADDR] [--deadline=D] [--json] DOMAIN\n"
    "  Checks DOMAIN's DNSSEC, DANE, MTA-STS and TLSRPT set-up as mxpolicyd\n"
    "  sees it: one OK / WARN / FAIL line per check (INFO lines are notes).\n"
    "  --server=ADDR   mxpolicyd address (default 127.0.0.1:8460)\n"
    "  --deadline=D    call deadline, e.g. 10s (default 30s)\n"
    "  --json          the findings and the full answer as one JSON object\n"
    "Exit codes: 0 no FAIL, 1 some FAIL, 2 usage error or the call failed.\n";

namespace {

struct Counts {
  int ok = 0, info = 0, warn = 0, fail = 0;
};

Counts Count(const std::vector<Finding>& findings) {
  Counts c;
  for (const Finding& f : findings) {
    switch (f.level) {
      case Level::kOk:
        ++c.ok;
        break;
      case Level::kInfo:
        ++c.info;
        break;
      case Level::kWarn:
        ++c.warn;
        break;
      case Level::kFail:
        ++c.fail;
        break;
    }
  }
  return c;
}

// Where the answer came from and, since a domain owner runs this right after
// a change, how to get past a cached answer. Invalidate is an operator's
// (loopback-only) call: check never makes it by itself.
std::string SourceNote(const v1::ResolveResponse& r) {
  const long long ttl = static_cast<long long>(r.ttl().seconds());
  switch (r.source()) {
    case v1::SOURCE_FRESH:
      return absl::StrCat(
          "fresh: resolved for this check; mxpolicyd and its "
          "clients may reuse it for ",
          ttl, "s");
    case v1::SOURCE_CACHE:
      return absl::StrCat("cache: from mxpolicyd's cache, ", ttl,
                          "s left; changes made since it was resolved are "
                          "not in it");
    case v1::SOURCE_STALE:
      return "stale: an expired answer from mxpolicyd's cache, because a "
             "fresh resolution failed";
    default:
      return "unknown";
  }
}

// A command-line word for a POSIX shell: as is when it is plain, else in
// single quotes.
std::string ShellWord(const std::string& s) {
  const bool plain =
      !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || std::strchr("@%+=:,./_-", c) != nullptr;
      });
  if (plain) return s;
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// grpcurl's flags for the connection this CLI made: -plaintext without TLS,
// else the same CA, client certificate and server name (grpcurl verifies
// with the system roots when no -cacert is given, as this CLI does).
std::string GrpcurlConnectionFlags(const CommonFlags& flags) {
  // As MakeClientOrReport decides: any TLS flag turns TLS on.
  const bool tls = !flags.tls_ca.empty() || !flags.tls_cert.empty() ||
                   !flags.tls_key.empty() || !flags.tls_server_name.empty();
  if (!tls) return "-plaintext";
  std::vector<std::string> out;
  if (!flags.tls_ca.empty()) out.push_back("-cacert " + ShellWord(flags.tls_ca));
  if (!flags.tls_cert.empty()) {
    out.push_back("-cert " + ShellWord(flags.tls_cert));
  }
  if (!flags.tls_key.empty()) out.push_back("-key " + ShellWord(flags.tls_key));
  if (!flags.tls_server_name.empty()) {
    out.push_back("-servername " + ShellWord(flags.tls_server_name));
  }
  return absl::StrJoin(out, " ");
}

std::string InvalidateNote(const v1::ResolveResponse& r,
                           const CommonFlags& flags) {
  return absl::StrCat(
      "to see a change before the TTL runs out, an operator can drop the "
      "cached answer with the Invalidate RPC (from the mxpolicyd host, or "
      "with an --admin-identity client certificate when it runs mTLS): "
      "grpcurl ", GrpcurlConnectionFlags(flags), " -d '{\"domain\":\"",
      Printable(r.domain()), "\"}' ", ShellWord(flags.server),
      " mxpolicy.v1.PolicyResolver/Invalidate — DNS records can still sit in "
      "its resolver's cache up to their own TTL");
}

void PrintText(const v1::ResolveResponse& r, const CommonFlags& flags,
               const std::vector<Finding>& findings) {
  const std::string& server = flags.server;
  // The name column fits the longest check name ("address DNSSEC").
  size_t width = 0;
  for (const Finding& f : findings) width = std::max(width, f.check.size());
  width = std::max<size_t>(width, 10);
  std::printf("mxpolicy check %s (answer from mxpolicyd at %s)\n\n",
              Printable(r.domain()).c_str(), server.c_str());
  std::printf("answer\n");
  std::printf("  %-4s  %-*s  %s\n", "INFO", static_cast<int>(width), "source",
              SourceNote(r).c_str());
  std::printf("  %-4s  %-*s  %s\n", "INFO", static_cast<int>(width),
              "invalidate", InvalidateNote(r, flags).c_str());
  std::string section;
  for (const Finding& f : findings) {
    if (f.section != section) {
      section = f.section;
      std::printf("\n%s\n", section.c_str());
    }
    std::printf("  %-4s  %-*s  %s%s%s\n", LevelName(f.level),
                static_cast<int>(width), f.check.c_str(), f.subject.c_str(),
                f.subject.empty() ? "" : ": ", f.detail.c_str());
  }
  const Counts c = Count(findings);
  std::printf("\nsummary: %d OK, %d WARN, %d FAIL (and %d INFO notes)\n", c.ok,
              c.warn, c.fail, c.info);
}

void PrintJson(const v1::ResolveResponse& r, const CommonFlags& flags,
               const std::vector<Finding>& findings) {
  const std::string& server = flags.server;
  std::vector<std::string> items;
  for (const Finding& f : findings) {
    items.push_back(absl::StrCat("{\"level\":", JsonQuote(LevelName(f.level)),
                                 ",\"section\":", JsonQuote(f.section),
                                 ",\"check\":", JsonQuote(f.check),
                                 ",\"subject\":", JsonQuote(f.subject),
                                 ",\"detail\":", JsonQuote(f.detail), "}"));
  }
  const Counts c = Count(findings);
  std::printf(
      "%s\n",
      absl::StrCat("{\"domain\":", JsonQuote(r.domain()),
                   ",\"server\":", JsonQuote(server),
                   ",\"source\":", JsonQuote(SourceName(r.source())),
                   ",\"ttlSeconds\":", r.ttl().seconds(),
                   ",\"sourceNote\":", JsonQuote(SourceNote(r)),
                   ",\"invalidateNote\":", JsonQuote(InvalidateNote(r, flags)),
                   ",\"summary\":{\"ok\":", c.ok, ",\"warn\":", c.warn,
                   ",\"fail\":", c.fail, ",\"info\":", c.info,
                   "},\"findings\":[", absl::StrJoin(items, ","),
                   "],\"response\":", ToJson(r), "}")
          .c_str());
}

}  // namespace

int RunCheck(const std::vector<std::string>& args) {
  CommonFlags flags;
  bool json = false;
  std::vector<std::string> domains;
  if (std::optional<int> done = ParseCommandArgs(
          "mxpolicy check", kCheckUsage, args, flags,
          [&json](absl::string_view arg, std::string*) {
            if (arg != "--json") return FlagParse::kNotMine;
            json = true;
            return FlagParse::kOk;
          },
          domains)) {
    return *done;
  }
  if (domains.size() != 1) {
    std::fprintf(
        stderr, "mxpolicy check: %s\n%s",
        domains.empty() ? "missing DOMAIN" : "takes exactly one DOMAIN",
        kCheckUsage);
    return 2;
  }
  std::unique_ptr<Client> client = MakeClientOrReport("mxpolicy check", flags);
  if (client == nullptr) return 2;
  absl::StatusOr<Policy> policy = client->Resolve(domains[0], flags.deadline);
  if (!policy.ok()) {
    ReportResolveError("mxpolicy check", domains[0], policy.status());
    return 2;
  }
  const v1::ResolveResponse& r = policy->response;
  const std::vector<Finding> findings = CheckResponse(r);
  if (json) {
    PrintJson(r, flags, findings);
  } else {
    PrintText(r, flags, findings);
  }
  return Count(findings).fail > 0 ? 1 : 0;
}

}  // namespace mxpolicy::cli
