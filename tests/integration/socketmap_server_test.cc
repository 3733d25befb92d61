// mxpolicy-postfix's socketmap server at the byte level (SPEC I5, I6): a
// raw TCP client against the real binary (which asks an in-process
// mxpolicyd on the world). Pipelined requests are answered in order, a
// request may arrive in pieces, a half-closed connection still gets what it
// is owed, an oversized query is skipped and answered NOTFOUND, and a
// malformed netstring closes only its own connection. A request answered
// from the reply memo still waits behind earlier ones, and a client that
// sends without reading gets every reply once it reads (backpressure).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/world_daemon.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

// A blocking TCP connection with a receive timeout; `buffer_bytes` > 0
// shrinks its kernel buffers (set before connecting, so that the window
// follows).
class Conn {
 public:
  explicit Conn(int port, int buffer_bytes = 0) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    if (buffer_bytes > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
      setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Conn() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& bytes) {
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  void HalfClose() { shutdown(fd_, SHUT_WR); }
  // Sends `stream` from offset `*sent` on without blocking, until all of
  // it is out or the peer has taken nothing for `stall`; false on an error.
  bool SendUntilStalled(const std::string& stream, size_t* sent, absl::Duration stall) {
    absl::Time progress = absl::Now();
    while (*sent < stream.size() && absl::Now() - progress < stall) {
      const ssize_t n = send(fd_, stream.data() + *sent, stream.size() - *sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        *sent += static_cast<size_t>(n);
        progress = absl::Now();
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        usleep(5000);
      } else {
        return false;
      }
    }
    return true;
  }
  // Reads until `n` bytes arrived or the peer closed / timed out.
  std::string Read(size_t n) {
    std::string out;
    char buf[4096];
    while (out.size() < n) {
      const ssize_t got = read(fd_, buf, std::min(sizeof buf, n - out.size()));
      if (got <= 0) break;
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }
  // True when the peer closed the connection (read returns 0).
  bool PeerClosed() {
    char c;
    return read(fd_, &c, 1) == 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string Netstring(const std::string& s) { return absl::StrCat(s.size(), ":", s, ","); }

class SocketmapServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> world =
        testing::WorldDaemon::Start(testing::WorldServerConfig(*env));
    ASSERT_TRUE(world.ok()) << world.status();
    world_ = world->release();
    port_ = testing::FreePort();
    pid_ = testing::Spawn({MXPOLICY_POSTFIX_PATH, absl::StrCat("--listen=127.0.0.1:", port_),
                           "--server=" + world_->target()},
                          /*quiet=*/true);
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!Conn(port_).connected() && absl::Now() < give_up) usleep(20000);
  }
  static void TearDownTestSuite() {
    kill(pid_, SIGTERM);
    testing::Reap(pid_);
    delete world_;
  }
  static testing::WorldDaemon* world_;
  static int port_;
  static pid_t pid_;
};
testing::WorldDaemon* SocketmapServerTest::world_ = nullptr;
int SocketmapServerTest::port_ = 0;
pid_t SocketmapServerTest::pid_ = -1;

const std::string kDane = Netstring("OK dane-only");
const std::string kNotFound = Netstring("NOTFOUND ");

// SPEC I5: several requests in one write, answered in request order (the
// first needs the service, the second is answered at once).
TEST_F(SocketmapServerTest, PipelinedRequestsAnsweredInOrder) {
  Conn c(port_);
  ASSERT_TRUE(c.connected());
  c.Send(Netstring("postfix dane.test") + Netstring("postfix .dane.test") +
         Netstring("postfix nodane.test") + Netstring("postfix DANE.TEST."));
  const std::string want = kDane + kNotFound + kNotFound + kDane;
  EXPECT_EQ(c.Read(want.size()), want);
}

// A request may arrive a byte at a time; a half-closed connection still gets
// its replies before the server closes it.
TEST_F(SocketmapServerTest, RequestInPiecesAndHalfClose) {
  Conn c(port_);
  ASSERT_TRUE(c.connected());
  const std::string request = Netstring("postfix dane.test") + Netstring("postfix nodane.test");
  for (char ch : request) {
    c.Send(std::string(1, ch));
    usleep(1000);
  }
  c.HalfClose();
  EXPECT_EQ(c.Read(kDane.size() + kNotFound.size()), kDane + kNotFound);
  EXPECT_TRUE(c.PeerClosed());
}

// SPEC I6: a query over 10 000 bytes is skipped (never buffered) and
// answered NOTFOUND; the connection goes on.
TEST_F(SocketmapServerTest, OversizedQueryIsNotFoundAndConnectionGoesOn) {
  Conn c(port_);
  ASSERT_TRUE(c.connected());
  c.Send(Netstring("postfix " + std::string(10001, 'a') + ".test") +
         Netstring("postfix dane.test"));
  EXPECT_EQ(c.Read(kNotFound.size() + kDane.size()), kNotFound + kDane);
}

// A malformed netstring closes that connection only (after answering what
// came well-formed before it); another connection is served as before.
TEST_F(SocketmapServerTest, MalformedNetstringClosesOnlyItsConnection) {
  Conn bad(port_), good(port_);
  ASSERT_TRUE(bad.connected() && good.connected());
  bad.Send(Netstring("postfix dane.test") + "12x:postfix a,");
  EXPECT_EQ(bad.Read(kDane.size()), kDane);
  EXPECT_TRUE(bad.PeerClosed());
  good.Send(Netstring("postfix dane.test"));
  EXPECT_EQ(good.Read(kDane.size()), kDane);
  // A request that is not "<mapname> <key>" is a PERM reply, not a close.
  good.Send(Netstring("nokey"));
  const std::string perm =
      Netstring("PERM mxpolicy: request is not \"<mapname> <key>\"");
  EXPECT_EQ(good.Read(perm.size()), perm);
}

// SPEC I5 + I8: a request answered at once (nodane.test, asked before: from
// the reply memo, or else the local cache) does not overtake an earlier one
// that needs the service (three-mx.test, asked nowhere else in this suite).
TEST_F(SocketmapServerTest, MemoisedReplyWaitsForEarlierLookups) {
  Conn c(port_);
  ASSERT_TRUE(c.connected());
  c.Send(Netstring("postfix nodane.test"));
  ASSERT_EQ(c.Read(kNotFound.size()), kNotFound);
  c.Send(Netstring("postfix three-mx.test") + Netstring("postfix nodane.test"));
  const std::string want = kDane + kNotFound;
  EXPECT_EQ(c.Read(want.size()), want);
}

// A client that pipelines without reading is not read further once 1 MiB
// of replies waits for it (ServerOptions::max_buffered_reply_bytes): what
// it can send is bounded by that (2 MiB of requests) plus the kernel's
// buffers, where an adapter without backpressure would take everything.
// Once it reads, every reply arrives, in order. (The answer is cached
// first: over 1000 lookups pending on one connection would close it.)
TEST_F(SocketmapServerTest, ClientThatDoesNotReadIsNotReadFurther) {
  Conn c(port_, /*buffer_bytes=*/4096);
  ASSERT_TRUE(c.connected());
  const std::string request = Netstring("postfix nodane.test");
  c.Send(request);
  ASSERT_EQ(c.Read(kNotFound.size()), kNotFound);

  long rmem_max = 6 << 20;  // the adapter's receive buffer may grow to this
  if (FILE* f = fopen("/proc/sys/net/ipv4/tcp_rmem", "r")) {
    long min = 0, def = 0;
    if (fscanf(f, "%ld %ld %ld", &min, &def, &rmem_max) != 3) rmem_max = 6 << 20;
    fclose(f);
  }
  const size_t bound = (size_t{8} << 20) + static_cast<size_t>(rmem_max);
  std::string stream;
  while (stream.size() < 2 * bound) stream += request;
  size_t sent = 0;
  ASSERT_TRUE(c.SendUntilStalled(stream, &sent, absl::Seconds(1)));
  EXPECT_LT(sent, bound) << "the adapter kept reading a client that reads nothing";

  // Now read: every request sent so far is answered (the last one may be
  // incomplete: its remainder goes out while the replies are read).
  const size_t requests = (sent + request.size() - 1) / request.size();
  std::string got;
  std::thread reader([&] { got = c.Read(requests * kNotFound.size()); });
  const size_t end = requests * request.size();
  stream.resize(end);
  EXPECT_TRUE(c.SendUntilStalled(stream, &sent, absl::Seconds(10)));
  reader.join();
  EXPECT_EQ(sent, end);
  EXPECT_EQ(got.size(), requests * kNotFound.size());
  std::string want;
  for (size_t i = 0; i < requests; ++i) want += kNotFound;
  EXPECT_TRUE(got == want);  // (not EXPECT_EQ: megabytes in a failure message)
}

}  // namespace
}  // namespace mxpolicy
