// The Prometheus scrape endpoint: GET (or HEAD) /metrics over plain HTTP on
// its own listener, served by civetweb's small thread pool — never by the
// gRPC threads. Everything else gets 404 (405 for other methods).
#ifndef MXPOLICY_METRICS_METRICS_HTTP_H_
#define MXPOLICY_METRICS_METRICS_HTTP_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mg_context;
struct mg_connection;

namespace mxpolicy::metrics {

class MetricsHttpServer {
 public:
  // `listen`: host:port ("127.0.0.1:9464", "[::1]:0", "0.0.0.0:9464");
  // port 0 picks a free one. `render` produces the body (thread-safe).
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      absl::string_view listen, std::function<std::string()> render);
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  static int Handle(struct mg_connection* conn, void* self);
  static int LogMessage(const struct mg_connection* conn, const char* message);
  // Opens and closes one connection to the listener (wakes its poll()).
  void KnockOnce() const;

  std::function<std::string()> render_;
  std::atomic<bool> started_{false};
  std::string start_error_;  // written only before started_
  mg_context* ctx_ = nullptr;
  std::string knock_host_;  // the listening host, without brackets
  int port_ = 0;
};

}  // namespace mxpolicy::metrics

#endif  // MXPOLICY_METRICS_METRICS_HTTP_H_
