// Real Postfix as the client (issue "fleet clients"): Debian's `postmap -q
// KEY socketmap:…` (no Postfix daemon; MAIL_CONFIG → a minimal main.cf)
// against the real mxpolicy-postfix binary, which asks an mxpolicyd
// (in-process Daemon) pointed at the hermetic world. For every world domain
// and each Postfix version class the exact reply is asserted (SPEC I2–I5,
// DESIGN.md's table); keys that never have a policy (I1), the injection
// defence, a Unix socket, and an unreachable service are checked too.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/world_daemon.h"
#include "tests/support/world_env.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;
using testing::FreePort;

// The adapter binary as a child process, stopped (SIGTERM) by the
// destructor.
class Adapter {
 public:
  explicit Adapter(std::vector<std::string> flags) {
    flags.insert(flags.begin(), MXPOLICY_POSTFIX_PATH);
    pid_ = testing::Spawn(flags, /*quiet=*/true);
  }
  ~Adapter() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    testing::Reap(pid_);
  }

 private:
  pid_t pid_ = -1;
};

struct Lookup {
  int exit_code = -1;
  std::string out, err;
};

// postmap -q KEY MAP with its own minimal main.cf.
Lookup Postmap(const std::string& key, const std::string& map) {
  static const std::string config_dir = [] {
    std::string dir = absl::StrCat(::testing::TempDir(), "/postfix-", getpid());
    mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/main.cf") << "compatibility_level = 3.6\n";
    return dir;
  }();
  const std::string err_file = config_dir + "/stderr";
  const std::string cmd =
      absl::StrCat("MAIL_CONFIG='", config_dir, "' /usr/sbin/postmap -q '",
                   key, "' '", map, "' 2>'", err_file, "'");
  Lookup r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

// Waits until something accepts TCP connections on 127.0.0.1:port.
bool WaitListening(int port) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return true;
    usleep(20 * 1000);
  }
  return false;
}

// What mxpolicyd decides for each world domain (tests/world/README.md),
// as the reply class: "dane-only", "dane", "NOTFOUND", "TEMP" (with the
// start of the reason), or "STS <mx pattern> <max_age line value>".
const std::map<std::string, std::string>& Expected() {
  static const auto* table = new std::map<std::string, std::string>{
      {"dane.test", "dane-only"}, {"nodane.test", "NOTFOUND"},
      {"insecure.test", "STS mx.insecure.test 86400"},
      {"bogus-sig.test", "TEMP MX lookup for bogus-sig.test bogus"},
      {"bogus-ds.test", "TEMP MX lookup for bogus-ds.test bogus"},
      {"bogus-expired.test", "TEMP MX lookup for bogus-expired.test bogus"},
      {"secmx-insecure-host.test", "NOTFOUND"}, {"nxdomain.test", "NOTFOUND"},
      {"two-mx.test", "dane"}, {"three-mx.test", "dane-only"},
      {"cname-secure.test", "dane-only"}, {"cname-insecure.test", "NOTFOUND"},
      {"unusable.test", "dane"}, {"dane-ta.test", "dane-only"},
      {"implicit.test", "dane-only"}, {"nullmx.test", "NOTFOUND"},
      {"tlsa-bogus.test", "TEMP no usable MX host: TLSA lookup"},
      {"lame.test", "TEMP MX lookup for lame.test failed"},
      {"ipv6only.test", "dane-only"}, {"tlsa-empty.test", "dane"},
      {"tlsa-huge.test", "dane"}, {"mx-ipliteral.test", "NOTFOUND"},
      {"mx-dot-mixed.test", "NOTFOUND"},
      {"cname-loop.test", "TEMP no usable MX host: A lookup"},
      {"mx-100.test", "NOTFOUND"},
      {"sts-crlf.test", "STS mx.sts-crlf.test 86400"},
      {"sts-lf.test", "NOTFOUND"},  // mode: testing
      {"sts-bom.test", "STS mx.sts-bom.test 86400"},
      {"sts-blank.test", "STS mx.sts-blank.test 86400"},
      {"sts-dup.test", "NOTFOUND"},  // duplicate mode: invalid (C6)
      {"sts-maxage0.test", "STS mx.sts-maxage0.test 0"},
      {"sts-maxagemax.test", "STS mx.sts-maxagemax.test 31557600"},
      {"sts-maxageover.test", "STS mx.sts-maxageover.test 31557601"},
      {"sts-maxage11.test", "NOTFOUND"},
      {"sts-ext.test", "STS mx.sts-ext.test 86400"},
      {"sts-none.test", "NOTFOUND"}, {"sts-enforce-nomx.test", "NOTFOUND"},
      {"sts-big.test", "NOTFOUND"},
      {"sts-exact64k.test", "STS mx.sts-exact64k.test 86400"},
      {"sts-r301.test", "NOTFOUND"}, {"sts-r302.test", "NOTFOUND"},
      {"sts-r307.test", "NOTFOUND"}, {"sts-r308.test", "NOTFOUND"},
      {"sts-s404.test", "NOTFOUND"}, {"sts-s500.test", "NOTFOUND"},
      {"sts-html.test", "NOTFOUND"}, {"sts-notype.test", "NOTFOUND"},
      {"sts-stall.test", "NOTFOUND"},
      {"sts-nomatch.test", "STS other.sts-nomatch.test 86400"},
      {"sts-wildcard.test", "STS *.sts-wildcard.test 86400"},
      {"sts-implicit.test", "STS mail.sts-implicit.test 86400"},
      {"sts-twotxt.test", "NOTFOUND"}, {"sts-dane.test", "dane-only"},
      {"sts-wrongname.test", "NOTFOUND"}, {"sts-expired.test", "NOTFOUND"},
      {"sts-selfsigned.test", "NOTFOUND"},
      {"sts-insecurezone.test", "STS mx.sts-insecurezone.test 86400"},
      {"sts-user.test", "STS mx.sts-user.test 86400"},
      // Injection attempts (Decisions): invalid patterns, no policy.
      {"sts-inj-space.test", "NOTFOUND"}, {"sts-inj-brace.test", "NOTFOUND"},
      {"sts-inj-colon.test", "NOTFOUND"}, {"sts-inj-comma.test", "NOTFOUND"},
      {"sts-inj-eq.test", "NOTFOUND"},
  };
  return *table;
}

// The exact `secure` reply postmap prints for an enforce policy of the
// world's shape (version, mode, one mx, max_age) — SPEC I3, I4.
std::string SecureReply(const std::string& domain, const std::string& pattern,
                        const std::string& max_age, const std::string& version) {
  absl::string_view match = pattern;
  absl::ConsumePrefix(&match, "*");
  std::string r = absl::StrCat("secure match=", match);
  if (version != "3.3") r += " servername=hostname";
  if (version == "3.10" || version == "3.10.5") {
    r += " policy_type=sts policy_domain=" + domain;
    if (version == "3.10.5") r += " mx_host_pattern=" + pattern;
    r += absl::StrCat(" { policy_string = version: STSv1 } { policy_string = mode: enforce }",
                      " { policy_string = mx: ", pattern, " } { policy_string = max_age: ",
                      max_age, " }");
  }
  return r;
}

class PostmapTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::WorldEnv> env = testing::LoadWorldEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    ServerConfig config = testing::WorldServerConfig(*env);
    config.dns_timeout = absl::Seconds(5);
    config.fetch_timeout = absl::Seconds(3);  // sts-stall: give up early
    absl::StatusOr<std::unique_ptr<testing::WorldDaemon>> world =
        testing::WorldDaemon::Start(config);
    ASSERT_TRUE(world.ok()) << world.status();
    world_ = world->release();
  }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }
  std::string Server() const { return world_->target(); }

  static testing::WorldDaemon* world_;
};
testing::WorldDaemon* PostmapTest::world_ = nullptr;

// SPEC I2–I5: every world domain, the exact reply for this Postfix version.
TEST_P(PostmapTest, EveryWorldDomain) {
  const std::string version = GetParam();
  const int port = FreePort();
  Adapter adapter({absl::StrCat("--listen=127.0.0.1:", port), "--server=" + Server(),
                   "--postfix-version=" + version});
  ASSERT_TRUE(WaitListening(port));
  const std::string map = absl::StrCat("socketmap:inet:127.0.0.1:", port, ":postfix");
  std::ifstream domains(std::string(WORLD_DIR_PATH) + "/domains.txt");
  std::string domain;
  int checked = 0;
  while (std::getline(domains, domain)) {
    // sts-changing's policy is changed by world_sts_test while it runs, and
    // sts-l2's TXT record by redis_l2_test.
    if (domain.empty() || domain == "sts-changing.test" ||
        domain == "sts-l2.test") {
      continue;
    }
    auto it = Expected().find(domain);
    ASSERT_NE(it, Expected().end()) << "no expectation for world domain " << domain;
    const std::string& want = it->second;
    const Lookup got = Postmap(domain, map);
    SCOPED_TRACE(absl::StrCat(domain, " (Postfix ", version, "): stdout [", got.out,
                              "] stderr [", got.err, "]"));
    if (want == "NOTFOUND") {
      EXPECT_EQ(got.exit_code, 1);
      EXPECT_EQ(got.out, "");
      EXPECT_EQ(got.err, "");
    } else if (absl::StartsWith(want, "TEMP ")) {
      EXPECT_NE(got.exit_code, 0);
      EXPECT_EQ(got.out, "");
      EXPECT_THAT(got.err, HasSubstr(absl::StrCat(
                               "socketmap server temporary error: mxpolicy: ",
                               want.substr(5))));
    } else if (absl::StartsWith(want, "STS ")) {
      std::vector<std::string> f = absl::StrSplit(want, ' ');
      EXPECT_EQ(got.exit_code, 0);
      EXPECT_EQ(got.out, SecureReply(domain, f[1], f[2], version) + "\n");
    } else {
      EXPECT_EQ(got.exit_code, 0);
      EXPECT_EQ(got.out, want + "\n");
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(Expected().size()));
}

INSTANTIATE_TEST_SUITE_P(PostfixVersions, PostmapTest,
                         ::testing::Values("3.3", "3.7", "3.10", "3.10.5"),
                         [](const auto& info) {
                           std::string n = "Postfix" + info.param;
                           for (char& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

// SPEC I1: parent-domain, next-hop and IP keys are NOTFOUND without a call;
// case and a trailing dot are normalised. Over a Unix socket (SPEC I5).
TEST_F(PostmapTest, KeysOverUnixSocket) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/mxpolicy-", getpid(), ".sock");
  Adapter adapter({"--listen=unix:" + path, "--server=" + Server(),
                   "--postfix-version=3.7"});
  const std::string map = "socketmap:unix:" + path + ":anymap";
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (access(path.c_str(), F_OK) != 0 && absl::Now() < give_up) usleep(20000);
  for (const char* key : {"DANE.TEST.", "Dane.Test", "dane.test"}) {
    const Lookup got = Postmap(key, map);
    EXPECT_EQ(got.out, "dane-only\n") << key << ": " << got.err;
  }
  for (const char* key : {".dane.test", "[dane.test]:25", "[127.0.0.1]", "127.0.0.1",
                          "dane.test:587", "[ipv6:::1]"}) {
    const Lookup got = Postmap(key, map);
    EXPECT_EQ(got.exit_code, 1) << key;
    EXPECT_EQ(got.out, "") << key;
    EXPECT_EQ(got.err, "") << key;
  }
}

// Service unreachable, nothing cached: TEMP by default (mail waits), or
// NOTFOUND when the operator chose the weaker --when-unavailable=notfound.
TEST_F(PostmapTest, ServiceUnreachable) {
  const int dead = FreePort();  // nothing listens there
  const int port = FreePort();
  {
    Adapter adapter({absl::StrCat("--listen=127.0.0.1:", port),
                     absl::StrCat("--server=127.0.0.1:", dead), "--deadline=2s"});
    ASSERT_TRUE(WaitListening(port));
    const Lookup got = Postmap("dane.test", absl::StrCat("socketmap:inet:127.0.0.1:", port, ":p"));
    EXPECT_NE(got.exit_code, 0);
    EXPECT_THAT(got.err, HasSubstr("temporary error: mxpolicy service: UNAVAILABLE"));
  }
  const int port2 = FreePort();
  Adapter adapter({absl::StrCat("--listen=127.0.0.1:", port2),
                   absl::StrCat("--server=127.0.0.1:", dead), "--deadline=2s",
                   "--when-unavailable=notfound"});
  ASSERT_TRUE(WaitListening(port2));
  const Lookup got = Postmap("dane.test", absl::StrCat("socketmap:inet:127.0.0.1:", port2, ":p"));
  EXPECT_EQ(got.exit_code, 1);
  EXPECT_EQ(got.out, "");
  EXPECT_EQ(got.err, "");
}

}  // namespace
}  // namespace mxpolicy
