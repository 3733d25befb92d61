// The command-line contract of mxpolicyd. Flag names (with dashes) are relied
// upon by operators, the Helm chart and outside test suites: never rename
// one. A small table-driven parser rather than absl flags, because absl flag
// names cannot contain dashes.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/src/app/config.h"

namespace mxpolicy {
namespace {

struct Flag {
  std::string name;
  std::string help;
  std::string default_text;
  std::function<absl::Status(absl::string_view)> set;
};

std::function<absl::Status(absl::string_view)> SetString(std::string& out) {
  return [&out](absl::string_view v) {
    out = std::string(v);
    return absl::OkStatus();
  };
}

std::function<absl::Status(absl::string_view)> SetDuration(
    absl::Duration& out, absl::string_view name) {
  return [&out, name = std::string(name)](absl::string_view v) {
    absl::Duration d;
    if (!absl::ParseDuration(v, &d) || d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name, ": want a positive duration like 5s or 500ms, got \"", v,
          "\""));
    }
    out = d;
    return absl::OkStatus();
  };
}

std::function<absl::Status(absl::string_view)> SetPort(uint16_t& out,
                                                       absl::string_view name) {
  return [&out, name = std::string(name)](absl::string_view v) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(v, &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": want a port 1..65535, got \"", v, "\""));
    }
    out = static_cast<uint16_t>(port);
    return absl::OkStatus();
  };
}

std::function<absl::Status(absl::string_view)> SetBool(bool& out,
                                                      absl::string_view name) {
  return [&out, name = std::string(name)](absl::string_view v) {
    if (v == "true" || v == "yes" || v == "1") {
      out = true;
    } else if (v == "false" || v == "no" || v == "0") {
      out = false;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": want true or false, got \"", v, "\""));
    }
    return absl::OkStatus();
  };
}

std::function<absl::Status(absl::string_view)> SetCount(size_t& out,
                                                       absl::string_view name,
                                                       size_t min) {
  return [&out, name = std::string(name), min](absl::string_view v) {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < min) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name, ": want a whole number >= ", min, ", got \"", v, "\""));
    }
    out = static_cast<size_t>(n);
    return absl::OkStatus();
  };
}

std::vector<Flag> ServerFlags(ServerConfig& c) {
  const ServerConfig d;
  auto dur = [](absl::Duration x) { return absl::FormatDuration(x); };
  return {
      {"listen",
       "gRPC listen address host:port (IPv6 as [::1]:8460). Port 0 picks a "
       "free port (logged at start).",
       d.listen, SetString(c.listen)},
      {"unbound-config",
       "Unbound configuration file loaded with ub_ctx_config (stub zones, "
       "forwarders, trust anchors). Empty: full recursion from the root.",
       "\"\"", SetString(c.unbound_config)},
      {"trust-anchor-file",
       "DNSSEC trust anchor file (DS or DNSKEY records). Empty: only what "
       "--unbound-config sets.",
       d.trust_anchor_file, SetString(c.trust_anchor_file)},
      {"sts-ca-file",
       "CA bundle (PEM) for MTA-STS policy fetches. Empty: the system store.",
       "\"\"", SetString(c.sts_ca_file)},
      {"sts-https-port",
       "TCP port for MTA-STS policy fetches (RFC 8461: 443; other values "
       "are for test worlds).",
       absl::StrCat(d.sts_https_port),
       SetPort(c.sts_https_port, "sts-https-port")},
      {"sts-discovery-failure",
       "What a failed _mta-sts TXT lookup (SERVFAIL, timeout, bogus) means "
       "when no policy is cached: \"none\" (no MTA-STS, RFC-conform) or "
       "\"tempfail\" (defer delivery).",
       "none",
       [&c](absl::string_view v) {
         if (v != "none" && v != "tempfail") {
           return absl::InvalidArgumentError(absl::StrCat(
               "--sts-discovery-failure: want none or tempfail, got \"", v,
               "\""));
         }
         c.sts_discovery_failure_tempfail = v == "tempfail";
         return absl::OkStatus();
       }},
      {"dns-timeout", "Time limit for one DNS lookup.", dur(d.dns_timeout),
       SetDuration(c.dns_timeout, "dns-timeout")},
      {"dns-qname-minimisation",
       "RFC 9156 QNAME minimisation in the embedded resolver. Off by "
       "default: it makes cold lookups of _25._tcp.<mx> names about twice as "
       "slow. A setting in --unbound-config wins.",
       d.dns_qname_minimisation ? "true" : "false",
       SetBool(c.dns_qname_minimisation, "dns-qname-minimisation")},
      {"fetch-connect-timeout",
       "Connect (TCP + TLS) time limit for an MTA-STS policy fetch.",
       dur(d.fetch_connect_timeout),
       SetDuration(c.fetch_connect_timeout, "fetch-connect-timeout")},
      {"fetch-timeout", "Total time limit for an MTA-STS policy fetch.",
       dur(d.fetch_timeout), SetDuration(c.fetch_timeout, "fetch-timeout")},
      {"cache-entries",
       "Entry budget of the in-memory decision cache (least recently used "
       "entries make room).",
       absl::StrCat(d.cache_entries), SetCount(c.cache_entries, "cache-entries", 1)},
      {"policy-entries",
       "Budget of cached MTA-STS policies, kept apart from decisions; when "
       "full, domains without a policy go first, then the policy nearest "
       "expiry.",
       absl::StrCat(d.policy_entries),
       SetCount(c.policy_entries, "policy-entries", 1)},
      {"cache-shards",
       "Shards of the decision cache, each with its own lock; 0 picks 4 x "
       "hardware threads.",
       absl::StrCat(d.cache_shards), SetCount(c.cache_shards, "cache-shards", 0)},
      {"max-ttl",
       "Longest time a decision is cached and the longest TTL callers are "
       "given (positive answers get at least 60s).",
       dur(d.max_ttl), SetDuration(c.max_ttl, "max-ttl")},
      {"tempfail-ttl",
       "How long a TEMPFAIL decision is cached, so a broken domain cannot "
       "flood the DNS.",
       dur(d.tempfail_ttl), SetDuration(c.tempfail_ttl, "tempfail-ttl")},
      {"max-cold-resolutions",
       "Bound on concurrent uncached resolutions; beyond it callers get "
       "RESOURCE_EXHAUSTED at once (cache hits are never refused).",
       absl::StrCat(d.max_cold_resolutions),
       SetCount(c.max_cold_resolutions, "max-cold-resolutions", 1)},
      {"shutdown-grace",
       "On SIGTERM/SIGINT, how long in-flight calls may run before they are "
       "cancelled.",
       dur(d.shutdown_grace), SetDuration(c.shutdown_grace, "shutdown-grace")},
      {"max-connection-age",
       "Close each client connection after this age (in-flight calls get "
       "another 30s), so clients re-resolve the service name and spread over "
       "replicas added since they connected (autoscaling).",
       dur(d.max_connection_age),
       SetDuration(c.max_connection_age, "max-connection-age")},
      {"metrics-listen",
       "HTTP listen address host:port of the Prometheus metrics endpoint "
       "(GET /metrics). Empty: no metrics listener.",
       d.metrics_listen, SetString(c.metrics_listen)},
      {"health-listen",
       "Plaintext gRPC listener host:port serving only grpc.health.v1, for "
       "Kubernetes gRPC probes (which cannot speak TLS) when --tls-cert is "
       "set. Empty: none.",
       "\"\"", SetString(c.health_listen)},
      {"log-level",
       "Lowest level logged to stderr: debug, info, warning or error. One line "
       "per fresh decision at info, per cached answer at debug; policy bodies "
       "only at debug.",
       "info",
       [&c](absl::string_view v) {
         using L = LogLevel;
         if (v == "debug") {
           c.log_level = L::kDebug;
         } else if (v == "info") {
           c.log_level = L::kInfo;
         } else if (v == "warning") {
           c.log_level = L::kWarning;
         } else if (v == "error") {
           c.log_level = L::kError;
         } else {
           return absl::InvalidArgumentError(absl::StrCat(
               "--log-level: want debug, info, warning or error, got \"", v,
               "\""));
         }
         return absl::OkStatus();
       }},
      {"log-format", "Log line format: text or json (one object per line).",
       "text",
       [&c](absl::string_view v) {
         if (v != "text" && v != "json") {
           return absl::InvalidArgumentError(absl::StrCat(
               "--log-format: want text or json, got \"", v, "\""));
         }
         c.log_json = v == "json";
         return absl::OkStatus();
       }},
      {"tls-cert",
       "PEM certificate chain of the gRPC server (leaf first); with --tls-key "
       "turns on TLS. Re-read on SIGHUP and when changed (--tls-check-"
       "interval): a file that does not parse, or a key that does not match "
       "the certificate, is refused with an error on stderr and the old "
       "credentials stay. At start-up such files stop mxpolicyd (exit 1). "
       "Validated copies are kept in a private directory under $TMPDIR "
       "(default /tmp), removed at exit.",
       "\"\"", SetString(c.tls_cert)},
      {"tls-key", "PEM private key for --tls-cert.", "\"\"",
       SetString(c.tls_key)},
      {"tls-client-ca",
       "PEM CA bundle for client certificates; set, every client must present "
       "a certificate it signed (mTLS), else the TLS handshake fails. "
       "Reloaded with --tls-cert.",
       "\"\"", SetString(c.tls_client_ca)},
      {"tls-check-interval",
       "How often the TLS files are re-read; changed bytes are reloaded as on "
       "SIGHUP (Kubernetes secret updates apply without a signal).",
       dur(d.tls_check_interval),
       SetDuration(c.tls_check_interval, "tls-check-interval")},
      {"admin-identity",
       "Comma-separated client-certificate identities allowed to call admin "
       "RPCs such as Invalidate under mTLS; then only they are, wherever they "
       "connect from (none listed: nobody). A SAN DNS name matches a "
       "DNS-looking entry case-insensitively; a SAN URI or e-mail address "
       "matches exactly; the subject CN counts only for a certificate "
       "without any SAN. Empty entries are ignored. Without mTLS (plaintext "
       "or TLS only) admin RPCs are allowed from loopback only.",
       "\"\"",
       [&c](absl::string_view v) {
         c.admin_identities.clear();
         for (absl::string_view id :
              absl::StrSplit(v, ',', absl::SkipWhitespace())) {
           c.admin_identities.emplace_back(absl::StripAsciiWhitespace(id));
         }
         return absl::OkStatus();
       }},
      {"redis",
       "Shared L2 tier: redis://[:password@]host[:port][/db]. MTA-STS "
       "policies (until max_age) and decisions (until their TTL) are shared "
       "by replicas and survive restarts. Empty: L1 only.",
       "\"\"", SetString(c.redis_url)},
      {"redis-password-file",
       "File holding the Redis password (surrounding whitespace ignored); "
       "it keeps the password out of the command line. Overrides a password "
       "in --redis.",
       "\"\"", SetString(c.redis_password_file)},
      {"redis-hmac-key-file",
       "File holding a secret key (at least 16 bytes; surrounding whitespace "
       "ignored), the same on every replica: every value stored in Redis is "
       "authenticated with HMAC-SHA256 over its key and content, and values "
       "without a valid MAC are ignored, so that write access to Redis alone "
       "cannot change the fleet's policies. Empty: values are not "
       "authenticated.",
       "\"\"", SetString(c.redis_hmac_key_file)},
      {"redis-timeout",
       "Time limit for one Redis operation; slower answers are ignored and "
       "the service answers from L1, DNS and HTTPS.",
       dur(d.redis_timeout), SetDuration(c.redis_timeout, "redis-timeout")},
  };
}

void PrintHelp(const std::vector<Flag>& flags) {
  std::printf(
      "mxpolicyd — DANE-first / MTA-STS TLS policy service for mail fleets.\n"
      "Usage: mxpolicyd [--flag=value ...]   (no flag is required)\n\n");
  for (const Flag& f : flags) {
    std::printf("  --%s (default: %s)\n      %s\n", f.name.c_str(),
                f.default_text.c_str(), f.help.c_str());
  }
  std::printf("  --help\n      Show this text.\n");
}

}  // namespace

absl::StatusOr<ServerConfig> ParseServerFlags(int argc, char** argv,
                                              bool* help_shown) {
  ServerConfig config;
  const std::vector<Flag> flags = ServerFlags(config);
  *help_shown = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      PrintHelp(flags);
      *help_shown = true;
      return config;
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg, "\" (see --help)"));
    }
    absl::string_view name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
      value = argv[++i];
    }
    if (absl::Status s = flag->set(value); !s.ok()) return s;
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: set both or neither");
  }
  if (!config.tls_client_ca.empty() && config.tls_cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS with "
        "client certificates)");
  }
  if (!config.admin_identities.empty() && config.tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        "--admin-identity needs --tls-client-ca: identities come from client "
        "certificates (without mTLS, admin RPCs are loopback-only)");
  }
  return config;
}

}  // namespace mxpolicy
