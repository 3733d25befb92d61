#include "server/src/metrics/metrics_http.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cstring>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mxpolicy::metrics {
namespace {

// civetweb's "listening_ports" syntax: "127.0.0.1:9464", "[::1]:9464".
absl::StatusOr<std::string> ListenOption(absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics listen address \"", listen, "\": want host:port"));
  }
  // civetweb would read "a:1,b:2" or "+9464" as several or other
  // listeners: only one plain IPv4 address or one bracketed IPv6 address.
  absl::string_view host = listen.substr(0, colon);
  const bool v6 = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (v6) host = host.substr(1, host.size() - 2);
  for (char c : host) {
    const bool ok = absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
                    c == '.' || (v6 && c == ':');
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics listen address \"", listen,
          "\": want an IPv4 address or a bracketed IPv6 address, and a port"));
    }
  }
  for (char c : listen.substr(colon + 1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics listen address \"", listen, "\": bad port"));
    }
  }
  return std::string(listen);
}

}  // namespace

// civetweb reports start-up errors (a port in use) through this callback
// only; the first one is kept for Start()'s status. Later messages (a
// client's broken connection) are dropped: handled, nothing printed.
int MetricsHttpServer::LogMessage(const struct mg_connection* conn,
                                  const char* message) {
  const struct mg_context* ctx = mg_get_context(conn);
  auto* self = ctx == nullptr
                   ? nullptr
                   : static_cast<MetricsHttpServer*>(mg_get_user_data(ctx));
  if (self != nullptr && !self->started_.load() && self->start_error_.empty()) {
    self->start_error_ = message;
  }
  return 1;
}

int MetricsHttpServer::Handle(struct mg_connection* conn, void* self) {
  const struct mg_request_info* req = mg_get_request_info(conn);
  const bool head = std::strcmp(req->request_method, "HEAD") == 0;
  if (!head && std::strcmp(req->request_method, "GET") != 0) {
    mg_send_http_error(conn, 405, "only GET /metrics is served\n");
    return 405;
  }
  if (std::strcmp(req->local_uri, "/metrics") != 0) {
    mg_send_http_error(conn, 404, "only /metrics is served\n");
    return 404;
  }
  const std::string body = static_cast<MetricsHttpServer*>(self)->render_();
  mg_send_http_ok(conn, "text/plain; version=0.0.4; charset=utf-8",
                  static_cast<long long>(body.size()));
  if (!head) mg_write(conn, body.data(), body.size());
  return 200;
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    absl::string_view listen, std::function<std::string()> render) {
  absl::StatusOr<std::string> ports = ListenOption(listen);
  if (!ports.ok()) return ports.status();
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });

  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->render_ = std::move(render);
  // No document_root: nothing but the handler below is ever served.
  const char* options[] = {"listening_ports", ports->c_str(),
                           "num_threads", "2",
                           "request_timeout_ms", "10000",
                           "enable_keep_alive", "yes",
                           nullptr};
  struct mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = &MetricsHttpServer::LogMessage;
  server->ctx_ = mg_start(&callbacks, server.get(), options);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", listen, ": ",
        server->start_error_.empty() ? "civetweb failed to start"
                                     : server->start_error_));
  }
  server->started_.store(true);
  mg_set_request_handler(server->ctx_, "/", &MetricsHttpServer::Handle,
                         server.get());
  struct mg_server_port bound[4];
  std::memset(bound, 0, sizeof(bound));
  if (mg_get_server_ports(server->ctx_, 4, bound) < 1) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", listen, ": no port bound"));
  }
  server->port_ = bound[0].port;
  absl::string_view host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  server->knock_host_ = std::string(host);
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (ctx_ == nullptr) return;
  // mg_stop() waits for civetweb's accept loop, which notices the stop flag
  // only when its poll() returns: after up to 2 s, or at once when a
  // connection arrives. Knock until it is gone, so shutdown is quick.
  std::atomic<bool> stopped{false};
  std::thread stopper([this, &stopped] {
    mg_stop(ctx_);
    stopped.store(true);
  });
  for (int i = 0; i < 100 && !stopped.load(); ++i) {
    KnockOnce();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stopper.join();
}

void MetricsHttpServer::KnockOnce() const {
  // The listening host, with wildcards replaced by their loopback.
  std::string host = knock_host_;
  const bool v6 = host.find(':') != std::string::npos;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port_));
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) return;
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port_));
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return;
    len = sizeof(*a);
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  close(fd);
}

}  // namespace mxpolicy::metrics
