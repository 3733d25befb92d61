// Who may call mxpolicyd's admin RPCs (Invalidate) — issue 7, "Security".
// The rule is a pure function of the transport's facts, so it is tested
// table-driven without a server:
//   - mTLS on: the caller's verified client certificate must carry one of the
//     configured identities. The peer address gives no rights: on a
//     Kubernetes pod, loopback includes every sidecar, and the handshake
//     already proved who the caller is. No identities configured: nobody.
//     How a certificate identity matches a configured entry:
//       * a SAN DNS name: ASCII-case-insensitively (DNS names are), and only
//         an entry that looks like a DNS name (letters, digits, '-', '_',
//         '.'; no ':', '@' or '/'), so a DNS SAN never matches a URI or an
//         e-mail entry;
//       * a SAN URI or e-mail address: exactly (case-sensitively);
//       * the subject CN: only when the certificate has no subjectAltName at
//         all (RFC 6125 §6.4.4: a CN is a fallback for SAN-less
//         certificates, and with SANs a CA need not have vetted the CN);
//         then like a DNS name against a DNS-looking entry, exactly against
//         any other;
//       * an empty value — from the certificate or the configuration —
//         matches nothing.
//   - mTLS off (plaintext or server-only TLS): loopback peers only, because
//     nothing identifies the caller but its address.
#ifndef MXPOLICY_RPC_ADMIN_ACCESS_H_
#define MXPOLICY_RPC_ADMIN_ACCESS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace grpc {
class AuthContext;
}  // namespace grpc

namespace mxpolicy {

// The server's admin rule, from its configuration.
struct AdminPolicy {
  bool mtls = false;
  std::vector<std::string> identities;  // only used with mtls
};

// What the transport says about one caller.
struct PeerIdentity {
  bool loopback = false;  // the peer address is 127.0.0.0/8, ::1 or unix:
  // From the verified client certificate (empty without one).
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  std::vector<std::string> emails;
  // The certificate has a subjectAltName extension, of any kind (IP
  // addresses and otherName too); non-empty dns_names, uris or emails imply
  // it. With any SAN the CN is not an identity.
  bool has_san = false;
  std::string common_name;
};

struct AdminDecision {
  bool allowed = false;
  // For PERMISSION_DENIED: why, naming the identities seen.
  std::string reason;
};

// The rule above. A denial's `reason` names every identity seen.
AdminDecision DecideAdminAccess(const AdminPolicy& policy,
                                const PeerIdentity& peer);

// Fills the certificate identities of a PeerIdentity from a call's
// AuthContext (gRPC's peer_dns, peer_uri, peer_email and x509_common_name
// properties; empty for a plaintext or certificate-less peer). has_san comes
// from the peer certificate (x509_pem_cert) and gRPC's SAN properties.
PeerIdentity PeerIdentityFromAuthContext(const grpc::AuthContext& auth,
                                         bool loopback);

}  // namespace mxpolicy

#endif  // MXPOLICY_RPC_ADMIN_ACCESS_H_
