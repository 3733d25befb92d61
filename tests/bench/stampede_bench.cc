// Stampede benchmark (make bench): N concurrent Resolve calls (default
// 1 000) for one cold domain must cost the world exactly one MX query and at
// most one MTA-STS policy fetch. Both are counted at the world, not by the
// service's own counters: the DNS queries in the log of the delaying relay
// (dns_delay_relay.py --log) that sits between the service and knot, the
// policy fetches in nginx's access log (tests/world: DIR/nginx/access.log,
// one line per request, the vhost first). The relay's delay (20 ms in
// make bench) stretches the cold resolution so that the calls overlap it.
//
// Usage (MXPOLICY_WORLD_DIR names a running world):
//   stampede_bench --unbound-config=DELAYED.conf --relay-log=FILE
//       [--domain=sts-blank.test] [--calls=1000] [--channels=4]
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "mxpolicy/v1/mxpolicy.pb.h"
#include "server/src/app/daemon.h"
#include "tests/bench/load_generator.h"
#include "tests/support/world_env.h"

namespace {

// The lines appended to `path` after byte `offset`.
std::vector<std::string> LinesAfter(const std::string& path,
                                    std::streamoff offset) {
  std::ifstream in(path);
  in.seekg(offset);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::streamoff SizeOf(const std::string& path) {
  std::ifstream in(path, std::ios::ate);
  return in ? static_cast<std::streamoff>(in.tellg()) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string unbound_config, relay_log, domain = "sts-blank.test";
  int calls = 1000, channels = 4;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    bool ok = true;
    if (absl::ConsumePrefix(&a, "--unbound-config=")) {
      unbound_config = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--relay-log=")) {
      relay_log = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--domain=")) {
      domain = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--calls=")) {
      ok = absl::SimpleAtoi(a, &calls) && calls >= 1;
    } else if (absl::ConsumePrefix(&a, "--channels=")) {
      ok = absl::SimpleAtoi(a, &channels) && channels >= 1;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument %s\n", argv[i]);
      return 2;
    }
  }
  if (unbound_config.empty() || relay_log.empty()) {
    std::fprintf(stderr, "--unbound-config and --relay-log are required\n");
    return 2;
  }
  absl::StatusOr<mxpolicy::testing::WorldEnv> env =
      mxpolicy::testing::LoadWorldEnv();
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 2;
  }
  const std::string access_log = env->dir + "/nginx/access.log";

  mxpolicy::ServerConfig config;  // as world_dane_test, DNS via the relay
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "127.0.0.1:0";
  config.unbound_config = unbound_config;
  config.trust_anchor_file = env->trust_anchor;
  config.sts_ca_file = env->ca_file;
  config.sts_https_port = env->https_port;
  config.dns_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<mxpolicy::Daemon>> daemon =
      mxpolicy::Daemon::Create(config);
  if (!daemon.ok()) {
    std::fprintf(stderr, "daemon: %s\n", daemon.status().ToString().c_str());
    return 2;
  }
  mxpolicy::bench::LoadGenerator gen(
      absl::StrCat("127.0.0.1:", (*daemon)->port()), channels);
  if (!gen.connected()) {
    std::fprintf(stderr, "load generator: channels did not connect\n");
    return 2;
  }

  const std::streamoff relay_start = SizeOf(relay_log);
  const std::streamoff access_start = SizeOf(access_log);
  mxpolicy::v1::ResolveRequest request;
  request.set_domain(domain);
  const absl::Time start = absl::Now();
  std::vector<absl::StatusOr<std::string>> answers =
      gen.Burst("/mxpolicy.v1.PolicyResolver/Resolve",
                request.SerializeAsString(), calls, absl::Seconds(30));
  const absl::Duration took = absl::Now() - start;

  int ok = 0, fresh = 0, cache = 0;
  std::map<std::string, int> decisions;
  std::string first_error;
  for (const auto& answer : answers) {
    mxpolicy::v1::ResolveResponse r;
    if (!answer.ok() || !r.ParseFromString(*answer)) {
      if (first_error.empty()) first_error = answer.status().ToString();
      continue;
    }
    ++ok;
    fresh += r.source() == mxpolicy::v1::SOURCE_FRESH;
    cache += r.source() == mxpolicy::v1::SOURCE_CACHE;
    ++decisions[mxpolicy::v1::Decision_Name(r.decision())];
  }

  // The relay logs "<qname> <qtype>" per query it receives; nginx
  // "<vhost> <addr> [<time>] "<request>" <status> <bytes>" per request.
  const std::string lowered = absl::AsciiStrToLower(domain);
  std::map<std::string, int> queries;  // qtype → count, at or below domain
  int mx_queries = 0;
  for (const std::string& line : LinesAfter(relay_log, relay_start)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() != 2) continue;
    const std::string name = absl::AsciiStrToLower(absl::StripSuffix(f[0], "."));
    if (name != lowered && !absl::EndsWith(name, absl::StrCat(".", lowered))) {
      continue;
    }
    ++queries[f[1]];
    if (name == lowered && f[1] == "MX") ++mx_queries;
  }
  int fetches = 0;
  for (const std::string& line : LinesAfter(access_log, access_start)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (!f.empty() && absl::AsciiStrToLower(f[0]) == "mta-sts." + lowered &&
        absl::StrContains(line, "/.well-known/mta-sts.txt")) {
      ++fetches;
    }
  }

  std::printf("%d concurrent Resolve calls for cold %s in %.0f ms: %d OK "
              "(%d answered by the shared resolution, %d from the cache)",
              calls, domain.c_str(), absl::ToDoubleMilliseconds(took), ok,
              fresh, cache);
  for (const auto& [decision, n] : decisions) {
    std::printf(", %s x%d", decision.c_str(), n);
  }
  std::printf("\n");
  if (!first_error.empty()) std::printf("  first error: %s\n", first_error.c_str());
  std::printf("  upstream queries at or below %s (relay log):", domain.c_str());
  for (const auto& [qtype, n] : queries) std::printf(" %s %d", qtype.c_str(), n);
  std::printf("\n");
  std::printf("stampede: MX queries: %d, policy fetches: %d (counted at the "
              "world; target: MX 1, fetches <= 1)\n",
              mx_queries, fetches);
  return ok == calls && mx_queries == 1 && fetches <= 1 ? 0 : 1;
}
