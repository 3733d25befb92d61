// ServerConfig: every setting of mxpolicyd, filled once from the command line
// (flags.cc) and passed down; nothing below app/ reads flags.
#ifndef MXPOLICY_APP_CONFIG_H_
#define MXPOLICY_APP_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/src/log/log.h"

namespace mxpolicy {

struct ServerConfig {
  // gRPC listen address, host:port ("[::1]:8460" for IPv6). Port 0 picks one.
  std::string listen = "127.0.0.1:8460";
  // Unbound config file (ub_ctx_config); empty = full recursion from the root.
  std::string unbound_config;
  // DNSSEC trust anchor file; Debian's dns-root-data root key by default.
  std::string trust_anchor_file = "/usr/share/dns/root.key";
  // CA bundle for MTA-STS policy fetches; empty = the system store.
  std::string sts_ca_file;
  // TCP port for policy fetches (443 except in tests).
  uint16_t sts_https_port = 443;
  // SPEC A9: TXT lookup failure without a cached policy → TEMPFAIL (true)
  // or "no MTA-STS" (false, the RFC-conform default).
  bool sts_discovery_failure_tempfail = false;
  absl::Duration dns_timeout = absl::Seconds(5);
  // RFC 9156 QNAME minimisation in the embedded resolver (see
  // UnboundDnsClient::Options for why it is off by default).
  bool dns_qname_minimisation = false;
  absl::Duration fetch_connect_timeout = absl::Seconds(5);
  absl::Duration fetch_timeout = absl::Seconds(20);
  // L1 decision cache (DESIGN.md "Caching").
  size_t cache_entries = 100000;
  size_t cache_shards = 0;  // 0: 4 × hardware threads
  // MTA-STS policy budget (sts::PolicyStore), apart from decisions.
  size_t policy_entries = 100000;
  absl::Duration max_ttl = absl::Hours(1);
  absl::Duration tempfail_ttl = absl::Seconds(30);
  size_t max_cold_resolutions = 1000;
  // How long SIGTERM waits for in-flight calls before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Client connections are closed (with a grace period) after this age, so
  // clients re-resolve and spread over replicas added meanwhile.
  absl::Duration max_connection_age = absl::Minutes(5);

  // Observability. Prometheus text exposition at http://<metrics_listen>/metrics
  // (empty: no metrics listener).
  std::string metrics_listen = "127.0.0.1:9464";
  // Plaintext gRPC listener serving only grpc.health.v1 (empty: none). For
  // Kubernetes gRPC probes, which cannot speak TLS, when --tls-cert is set.
  std::string health_listen;
  LogLevel log_level = LogLevel::kInfo;
  bool log_json = false;

  // gRPC server TLS: both set → TLS; plus tls_client_ca → mTLS (clients
  // must present a certificate from that CA). Re-read on SIGHUP, and every
  // tls_check_interval when their bytes changed (Kubernetes secret updates).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  absl::Duration tls_check_interval = absl::Minutes(1);
  // Client-certificate identities (SAN DNS/URI/email or subject CN) allowed
  // to call admin RPCs under mTLS. Without mTLS, admin RPCs are loopback-only.
  std::vector<std::string> admin_identities;

  // Optional shared L2 tier: redis://[:password@]host[:port][/db] (empty: off).
  std::string redis_url;
  // A file holding the Redis password (keeps it off the command line).
  std::string redis_password_file;
  // A file holding the key that authenticates every value in Redis
  // (HMAC-SHA256); the same on every replica. Empty: values unauthenticated.
  std::string redis_hmac_key_file;
  // Time limit for one Redis operation; beyond it L1 + DNS/HTTPS answer.
  absl::Duration redis_timeout = absl::Milliseconds(50);
};

// Parses argv ("--name=value" or "--name value") into a ServerConfig.
// "--help" prints every flag with its meaning and default and sets
// *help_shown. INVALID_ARGUMENT for unknown flags, bad values and positional
// arguments, with a message naming the flag.
absl::StatusOr<ServerConfig> ParseServerFlags(int argc, char** argv,
                                              bool* help_shown);

}  // namespace mxpolicy

#endif  // MXPOLICY_APP_CONFIG_H_
