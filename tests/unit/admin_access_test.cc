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

PeerIdentity Uri(std::vector<std::string> uris) {
  PeerIdentity p;
  p.uris = std::move(uris);
  return p;
}

PeerIdentity Email(std::vector<std::string> emails) {
  PeerIdentity p;
  p.emails = std::move(emails);
  return p;
}

// A certificate without any SAN: only its subject CN identifies it.
PeerIdentity CnOnly(std::string cn) {
  PeerIdentity p;
  p.common_name = std::move(cn);
  return p;
}

PeerIdentity WithCn(PeerIdentity p, std::string cn) {
  p.common_name = std::move(cn);
  return p;
}

void Check(const std::vector<Case>& cases) {
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

// Without mTLS (plaintext or server-only TLS): the address decides.
TEST(AdminAccessTest, WithoutMtlsLoopbackOnly) {
  PeerIdentity loopback;
  loopback.loopback = true;
  Check({
      {"loopback", {}, loopback, true, ""},
      {"remote", {}, Dns({}), false, "loopback only"},
      {"remote with a name is still remote", {}, Dns({"admin.mxpolicy.test"}),
       false, "loopback only"},
  });
}

// With mTLS: the certificate decides, never the address.
TEST(AdminAccessTest, DnsSans) {
  const AdminPolicy admin = Mtls({"admin.mxpolicy.test"});
  Check({
      {"admin DNS SAN", admin, Dns({"admin.mxpolicy.test"}), true, ""},
      {"DNS compares case-insensitively", admin, Dns({"ADMIN.mxpolicy.TEST"}),
       true, ""},
      {"second of several SANs", admin,
       Dns({"node1.mxpolicy.test", "admin.mxpolicy.test"}), true, ""},
      {"other node", admin, Dns({"node1.mxpolicy.test"}), false,
       "DNS:node1.mxpolicy.test"},
      {"loopback gives no rights", admin,
       Dns({"node1.mxpolicy.test"}, /*loopback=*/true), false,
       "not one of the --admin-identity"},
      {"no identities configured", Mtls({}), Dns({"admin.mxpolicy.test"}),
       false, "no --admin-identity is configured"},
      // A DNS SAN is a DNS name: it is never compared with an entry that is
      // a URI or an e-mail address, case-insensitively or otherwise.
      {"DNS SAN vs URI entry", Mtls({"spiffe://admin.mxpolicy.test"}),
       Dns({"spiffe://admin.mxpolicy.test"}), false, "DNS:"},
      {"DNS SAN vs URI entry, other case", Mtls({"spiffe://Admin"}),
       Dns({"SPIFFE://admin"}), false, "DNS:"},
      {"DNS SAN vs e-mail entry", Mtls({"ops@mail.example"}),
       Dns({"ops@mail.example"}), false, "DNS:ops@mail.example"},
  });
}

TEST(AdminAccessTest, UriAndEmailSansCompareExactly) {
  const std::string spiffe = "spiffe://mail.example/ns/mail/sa/ops";
  Check({
      {"URI SAN", Mtls({spiffe}), Uri({spiffe}), true, ""},
      {"URI entry differs in scheme case",
       Mtls({"SPIFFE://mail.example/ns/mail/sa/ops"}), Uri({spiffe}), false,
       "URI:spiffe://mail.example/ns/mail/sa/ops"},
      {"URI entry differs in path case",
       Mtls({"spiffe://mail.example/ns/mail/sa/OPS"}), Uri({spiffe}), false,
       "URI:"},
      {"URI SAN vs a DNS entry of the same text", Mtls({"ops"}), Uri({"ops"}),
       true, ""},
      {"URI SAN never matches a DNS entry case-insensitively", Mtls({"ops"}),
       Uri({"OPS"}), false, "URI:OPS"},
      {"e-mail SAN", Mtls({"ops@mail.example"}), Email({"ops@mail.example"}),
       true, ""},
      {"e-mail compares exactly", Mtls({"ops@mail.example"}),
       Email({"Ops@Mail.Example"}), false, "email:Ops@Mail.Example"},
  });
}

// RFC 6125 §6.4.4: the subject CN is a fallback for certificates without
// any subjectAltName; with SANs (of any kind) it is ignored.
TEST(AdminAccessTest, SubjectCnOnlyWithoutSans) {
  const AdminPolicy admin = Mtls({"admin.mxpolicy.test"});
  PeerIdentity ip_san_only = CnOnly("admin.mxpolicy.test");
  ip_san_only.has_san = true;  // e.g. IP:10.0.0.1, which gRPC reports apart
  Check({
      {"CN of a SAN-less certificate", admin, CnOnly("admin.mxpolicy.test"),
       true, ""},
      {"CN like a DNS name: case-insensitive", admin,
       CnOnly("Admin.Mxpolicy.Test"), true, ""},
      {"CN ignored beside a DNS SAN", admin,
       WithCn(Dns({"node1.mxpolicy.test"}), "admin.mxpolicy.test"), false,
       "CN=admin.mxpolicy.test (not used: the certificate has SANs)"},
      {"CN ignored beside a URI SAN", admin,
       WithCn(Uri({"spiffe://x/y"}), "admin.mxpolicy.test"), false,
       "not used"},
      {"CN ignored beside an e-mail SAN", admin,
       WithCn(Email({"x@y.example"}), "admin.mxpolicy.test"), false,
       "not used"},
      {"CN ignored beside an IP-only SAN", admin, ip_san_only, false,
       "not used"},
      {"CN vs URI entry: exact only", Mtls({"spiffe://mail.example/ops"}),
       CnOnly("SPIFFE://mail.example/ops"), false,
       "CN=SPIFFE://mail.example/ops"},
      {"CN vs URI entry, exact", Mtls({"spiffe://mail.example/ops"}),
       CnOnly("spiffe://mail.example/ops"), true, ""},
      {"CN vs e-mail entry: exact only", Mtls({"ops@mail.example"}),
       CnOnly("OPS@mail.example"), false, "CN="},
      {"free-form CN, exact", Mtls({"Mail Ops"}), CnOnly("Mail Ops"), true,
       ""},
      {"free-form CN, other case", Mtls({"Mail Ops"}), CnOnly("mail ops"),
       false, "CN=mail ops"},
  });
}

// Empty values match nothing: not an empty SAN or CN of the certificate,
// not an empty configured entry.
TEST(AdminAccessTest, EmptyValuesNeverMatch) {
  PeerIdentity empty_everything = WithCn(Dns({""}), "");
  empty_everything.uris = {""};
  empty_everything.emails = {""};
  Check({
      {"identity-less certificate", Mtls({"admin.mxpolicy.test"}),
       PeerIdentity{}, false, "(none)"},
      {"empty entry vs identity-less certificate", Mtls({""}), PeerIdentity{},
       false, "(none)"},
      {"empty entry vs empty SANs", Mtls({""}), empty_everything, false,
       "not one of"},
      {"empty DNS SAN", Mtls({"", "admin.mxpolicy.test"}), Dns({""}), false,
       "DNS:"},
      {"empty URI SAN", Mtls({""}), Uri({""}), false, "URI:"},
      {"empty e-mail SAN", Mtls({""}), Email({""}), false, "email:"},
      {"empty CN", Mtls({""}), CnOnly(""), false, "(none)"},
      {"empty entry beside a real one still lets the real one in",
       Mtls({"", "admin.mxpolicy.test"}), Dns({"admin.mxpolicy.test"}), true,
       ""},
  });
}

}  // namespace
}  // namespace mxpolicy
