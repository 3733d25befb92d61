// mxpolicy-postfix — Postfix socketmap adapter for mxpolicyd.
//
//   main.cf:  smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix
//
// Every lookup key Postfix sends (SPEC I1) is answered through the client
// library (local cache, stale-if-error, retries) with the policy of
// DESIGN.md's decision table, gated on the node's Postfix version (SPEC
// I2/I4). Flags: see kUsage.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/postfix/policy_reply.h"
#include "client/postfix/socketmap_server.h"
#include "mxpolicy/client.h"

namespace {

constexpr char kUsage[] =
    "mxpolicy-postfix — Postfix socketmap adapter for mxpolicyd\n"
    "Usage: mxpolicy-postfix [--flag=value ...]\n"
    "  --listen=ADDR            127.0.0.1:8461 (default; the port of\n"
    "                           postfix-mta-sts-resolver), [::1]:PORT or\n"
    "                           unix:/path/to/socket\n"
    "  --server=TARGET          mxpolicyd: HOST:PORT, ipv4:A:P1,B:P2 or\n"
    "                           dns:///NAME:PORT (round-robin); default\n"
    "                           127.0.0.1:8460\n"
    "  --postfix-version=V      this node's Postfix, e.g. 3.7 (default) or\n"
    "                           3.10.5: servername=hostname needs >= 3.4,\n"
    "                           TLSRPT attributes >= 3.10, mx_host_pattern\n"
    "                           >= 3.10.5 (older versions defer all mail\n"
    "                           on attributes they do not know)\n"
    "  --deadline=D             per-lookup deadline (default 10s)\n"
    "  --when-unavailable=temp|notfound\n"
    "                           service unreachable, nothing stale cached:\n"
    "                           TEMP (default: mail waits) or NOTFOUND\n"
    "                           (mail leaves with the node's default TLS\n"
    "                           level: weaker, a downgrade window)\n"
    "  --sts-testing=notfound|enforce\n"
    "                           MTA-STS testing policies (default notfound,\n"
    "                           RFC 8461 §5; enforce = strict_testing)\n"
    "  --cache-entries=N        local cache size (default 100000; also\n"
    "                           bounds the memo of rendered replies)\n"
    "  --stale-if-error=D       use an expired answer this long when the\n"
    "                           service is unreachable (default 1h)\n"
    "  --ca-file=F --cert-file=F --key-file=F --tls-server-name=N\n"
    "                           TLS / mTLS to the service\n";

mxpolicy::postfix::SocketmapServer* g_server = nullptr;

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil runs the deadlock detector on every lock (as mxpolicyd).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  mxpolicy::ClientOptions client_options;
  client_options.cache_entries = 100000;
  client_options.stale_if_error = absl::Hours(1);
  mxpolicy::postfix::ServerOptions options;
  auto bad = [](absl::string_view arg, absl::string_view why) {
    std::fprintf(stderr, "mxpolicy-postfix: %.*s: %.*s\n%s",
                 static_cast<int>(arg.size()), arg.data(),
                 static_cast<int>(why.size()), why.data(), kUsage);
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    absl::string_view v = arg;
    if (absl::ConsumePrefix(&v, "--listen=")) {
      options.listen = std::string(v);
    } else if (absl::ConsumePrefix(&v, "--server=")) {
      client_options.target = std::string(v);
    } else if (absl::ConsumePrefix(&v, "--postfix-version=")) {
      absl::StatusOr<mxpolicy::postfix::PostfixVersion> version =
          mxpolicy::postfix::ParsePostfixVersion(v);
      if (!version.ok()) return bad(arg, version.status().message());
      options.reply.version = *version;
    } else if (absl::ConsumePrefix(&v, "--deadline=")) {
      if (!absl::ParseDuration(v, &options.deadline) ||
          options.deadline <= absl::ZeroDuration()) {
        return bad(arg, "want a positive duration such as 10s");
      }
    } else if (absl::ConsumePrefix(&v, "--when-unavailable=")) {
      if (v != "temp" && v != "notfound") return bad(arg, "temp or notfound");
      options.unavailable_notfound = v == "notfound";
    } else if (absl::ConsumePrefix(&v, "--sts-testing=")) {
      if (v != "notfound" && v != "enforce") {
        return bad(arg, "notfound or enforce");
      }
      options.reply.testing_as_enforce = v == "enforce";
    } else if (absl::ConsumePrefix(&v, "--cache-entries=")) {
      if (!absl::SimpleAtoi(v, &client_options.cache_entries)) {
        return bad(arg, "want a number");
      }
    } else if (absl::ConsumePrefix(&v, "--stale-if-error=")) {
      if (!absl::ParseDuration(v, &client_options.stale_if_error) ||
          client_options.stale_if_error < absl::ZeroDuration()) {
        return bad(arg, "want a duration such as 1h");
      }
    } else if (absl::ConsumePrefix(&v, "--ca-file=")) {
      client_options.ca_file = std::string(v);
    } else if (absl::ConsumePrefix(&v, "--cert-file=")) {
      client_options.cert_file = std::string(v);
    } else if (absl::ConsumePrefix(&v, "--key-file=")) {
      client_options.key_file = std::string(v);
    } else if (absl::ConsumePrefix(&v, "--tls-server-name=")) {
      client_options.tls_server_name = std::string(v);
    } else {
      return bad(arg, "unknown flag");
    }
  }
  options.memo_entries = client_options.cache_entries;
  absl::StatusOr<std::unique_ptr<mxpolicy::Client>> client =
      mxpolicy::Client::Create(client_options);
  if (!client.ok()) {
    std::fprintf(stderr, "mxpolicy-postfix: %s\n",
                 client.status().ToString().c_str());
    return 2;
  }
  // SIGTERM/SIGINT stop the loop from a thread of their own (sigwait), so
  // that no signal handler touches the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a Postfix that hung up: write() says EPIPE
  absl::StatusOr<std::unique_ptr<mxpolicy::postfix::SocketmapServer>> server =
      mxpolicy::postfix::SocketmapServer::Create(options, **client);
  if (!server.ok()) {
    std::fprintf(stderr, "mxpolicy-postfix: %s\n",
                 server.status().ToString().c_str());
    return 1;
  }
  g_server = server->get();
  std::thread waiter([&stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    g_server->Shutdown();
  });
  std::printf("mxpolicy-postfix: listening on %s (port %d), server %s, "
              "Postfix %d.%d.%d\n",
              options.listen.c_str(), (*server)->port(),
              client_options.target.c_str(), options.reply.version.major,
              options.reply.version.minor, options.reply.version.patch);
  std::fflush(stdout);
  (*server)->Run();
  pthread_kill(waiter.native_handle(), SIGTERM);  // if Run ended otherwise
  waiter.join();
  server->reset();
  return 0;
}
