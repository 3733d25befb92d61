// SocketmapServer: the network side of mxpolicy-postfix. One thread runs an
// epoll loop over every Postfix connection (thousands of them, no thread
// each): it reads netstrings, answers a request it has answered before from
// its ReplyMemo while that answer is fresh, answers keys that never have a
// policy at once, asks the client library for the rest (a local cache hit
// answers inline; a call completes on a gRPC thread and wakes the loop
// through an eventfd) and writes the replies back in request order,
// pipelined requests included.
#ifndef MXPOLICY_CLIENT_POSTFIX_SOCKETMAP_SERVER_H_
#define MXPOLICY_CLIENT_POSTFIX_SOCKETMAP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/postfix/netstring.h"
#include "client/postfix/policy_reply.h"
#include "client/postfix/reply_memo.h"
#include "mxpolicy/client.h"

namespace mxpolicy::postfix {

struct ServerOptions {
  // "127.0.0.1:8461", "[::1]:8461" or "unix:/path" (port 0: a free one).
  std::string listen = "127.0.0.1:8461";
  ReplyOptions reply;
  // Per-lookup deadline for the service call.
  absl::Duration deadline = absl::Seconds(10);
  // Service unreachable and nothing stale: TEMP (mail waits; default) or
  // NOTFOUND (mail goes out with the node's default TLS level: weaker).
  bool unavailable_notfound = false;
  size_t max_query_bytes = 10000;    // SPEC I6
  size_t max_connections = 20000;    // beyond: accepted and closed
  size_t max_pending_per_connection = 1000;  // pipelined requests
  // Replies not yet taken by a client beyond which its connection is not
  // read until it takes them (backpressure on a client that never reads;
  // checked between reads, so one read's worth of replies may go past it,
  // besides the replies waiting behind a pending lookup).
  size_t max_buffered_reply_bytes = size_t{1} << 20;
  // A connection with no lookup pending and nothing read from it for this
  // long is closed, replies it has not taken included (Postfix closes its
  // own after 10 s idle; this only reclaims dead ones).
  absl::Duration idle_timeout = absl::Minutes(5);
  // The reply memo's bounds (0 entries: none); main sizes it like the
  // client library's local cache.
  size_t memo_entries = 100000;
  size_t memo_bytes = size_t{64} << 20;
};

// Contract: Create() binds and listens; Run() serves on the calling thread
// until Shutdown() (thread-safe, async-signal-unsafe) is called. `client`
// must outlive the server and run on the real clock (ClientOptions::clock
// unset): the memo compares Policy::fresh_until with absl::Now().
class SocketmapServer {
 public:
  static absl::StatusOr<std::unique_ptr<SocketmapServer>> Create(
      const ServerOptions& options, Client& client);
  ~SocketmapServer();

  // The bound TCP port (0 for a Unix socket).
  int port() const { return port_; }
  void Run();
  void Shutdown();

  struct Stats {
    uint64_t connections = 0, requests = 0, malformed = 0;
  };
  Stats stats() const;

 private:
  struct Connection;
  // A lookup's outcome: the reply, and what the memo needs to keep it.
  struct Answer {
    std::string reply;
    std::string request;  // as Postfix sent it
    absl::Time fresh_until = absl::InfinitePast();  // past: not memoised
  };
  struct Done {
    uint64_t connection;
    uint64_t seq;
    Answer answer;
  };

  SocketmapServer(const ServerOptions& options, Client& client, int listen_fd,
                  int epoll_fd, int wake_fd, int port, std::string unix_path);

  void Accept();
  void OnReadable(Connection& c);
  void OnWritable(Connection& c);
  void Handle(Connection& c, std::string payload);
  void Lookup(Connection& c, uint64_t seq, std::string domain,
              std::string request);
  std::string FailureReply(const absl::Status& status) const;
  // Queues an encoded reply behind those still owed on `c`.
  static void Queue(Connection& c, absl::string_view encoded);
  // Memoises `answer`, puts its reply into slot `seq` of connection `id`
  // (if still open) and sends what is ready in order. Loop thread only.
  void Fill(uint64_t id, uint64_t seq, Answer answer);
  void Flush(Connection& c);
  void Close(Connection& c);
  void DrainDone();
  void SweepIdle();

  const ServerOptions options_;
  Client& client_;
  const int listen_fd_, epoll_fd_, wake_fd_, port_;
  const std::string unix_path_;
  std::atomic<bool> stop_{false};
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  absl::Time last_sweep_;
  ReplyMemo memo_;                               // loop thread only
  std::vector<NetstringDecoder::Item> items_;    // OnReadable's, reused

  absl::Mutex done_mu_;
  std::vector<Done> done_ ABSL_GUARDED_BY(done_mu_);

  std::atomic<uint64_t> accepted_{0}, requests_{0}, malformed_{0};
  std::atomic<int> in_flight_{0};  // lookups whose callback has not run
};

}  // namespace mxpolicy::postfix

#endif  // MXPOLICY_CLIENT_POSTFIX_SOCKETMAP_SERVER_H_
