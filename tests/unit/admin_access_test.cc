// Issue 7 ("Security"): who may call the admin RPCs (Invalidate). The rule
// is DecideAdminAccess, a pure function; this table covers both modes.
#include "server/src/rpc/admin_access.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;

struct Case {
  const char* name;
  AdminPolicy policy;
  PeerIdentity peer;
  bool allowed;
  const char* reason_part;  // for denials: a part of the message
};

PeerIdentity Dns(std::vector<std::string> names, bool loopback = false) {
  PeerIdentity p;
  p.loopback = loopback;
  p.dns_names = std::move(names);
  return p;
}

AdminPolicy Mtls(std::vector<std::string> ids) {
  return AdminPolicy{.mtls = true, .identities = std::move(ids)};
}

TEST(AdminAccessTest, Table) {
  PeerIdentity uri;
  uri.uris = {"spiffe://mail.example/ns/mail/sa/ops"};
  PeerIdentity email;
  email.emails = {"ops@mail.example"};
  PeerIdentity cn_only;
  cn_only.common_name = "Admin.Mxpolicy.Test";
  PeerIdentity nothing_loopback;
  nothing_loopback.loopback = true;

  const std::vector<Case> cases = {
      // Without mTLS (plaintext or server-only TLS): the address decides.
      {"no mTLS, loopback", {}, nothing_loopback, true, ""},
      {"no mTLS, remote", {}, Dns({}), false, "loopback only"},
      {"no mTLS, remote with a name is still remote", {},
       Dns({"admin.mxpolicy.test"}), false, "loopback only"},
      // With mTLS: the certificate decides, never the address.
      {"mTLS, admin DNS SAN", Mtls({"admin.mxpolicy.test"}),
       Dns({"admin.mxpolicy.test"}), true, ""},
      {"mTLS, DNS compares case-insensitively", Mtls({"admin.mxpolicy.test"}),
       Dns({"ADMIN.mxpolicy.TEST"}), true, ""},
      {"mTLS, second of several SANs", Mtls({"admin.mxpolicy.test"}),
       Dns({"node1.mxpolicy.test", "admin.mxpolicy.test"}), true, ""},
      {"mTLS, other node", Mtls({"admin.mxpolicy.test"}),
       Dns({"node1.mxpolicy.test"}), false, "DNS:node1.mxpolicy.test"},
      {"mTLS, loopback gives no rights", Mtls({"admin.mxpolicy.test"}),
       Dns({"node1.mxpolicy.test"}, /*loopback=*/true), false,
       "not one of the --admin-identity"},
      {"mTLS, URI SAN", Mtls({"spiffe://mail.example/ns/mail/sa/ops"}), uri,
       true, ""},
      {"mTLS, URI compares exactly", Mtls({"SPIFFE://mail.example/ns/mail/sa/ops"}),
       uri, false, "URI:spiffe://mail.example/ns/mail/sa/ops"},
      {"mTLS, e-mail SAN", Mtls({"ops@mail.example"}), email, true, ""},
      {"mTLS, subject CN", Mtls({"admin.mxpolicy.test"}), cn_only, true, ""},
      {"mTLS, no identities configured", Mtls({}), Dns({"admin.mxpolicy.test"}),
       false, "no --admin-identity is configured"},
      {"mTLS, identity-less certificate", Mtls({"admin.mxpolicy.test"}),
       PeerIdentity{}, false, "(none)"},
      {"mTLS, a DNS name is not a CN match for a URI", Mtls({"ops"}), uri,
       false, "URI:"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const AdminDecision d = DecideAdminAccess(c.policy, c.peer);
    EXPECT_EQ(d.allowed, c.allowed);
    if (c.allowed) {
      EXPECT_EQ(d.reason, "");
    } else {
      EXPECT_THAT(d.reason, HasSubstr(c.reason_part));
    }
  }
}

}  // namespace
}  // namespace mxpolicy
