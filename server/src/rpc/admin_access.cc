#include "server/src/rpc/admin_access.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mxpolicy {
namespace {

// A configured entry that can only mean a DNS name (or a CN holding one):
// LDH labels, '_' tolerated, dots; anything with ':', '@', '/' or a space is
// a URI, an e-mail address or a free-form CN.
bool LooksLikeDnsName(absl::string_view entry) {
  if (entry.empty()) return false;
  for (const char c : entry) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

bool MatchesDnsName(const std::vector<std::string>& allowed,
                    absl::string_view name) {
  if (name.empty()) return false;
  for (const std::string& a : allowed) {
    if (LooksLikeDnsName(a) && absl::EqualsIgnoreCase(a, name)) return true;
  }
  return false;
}

bool MatchesExactly(const std::vector<std::string>& allowed,
                    absl::string_view id) {
  if (id.empty()) return false;
  for (const std::string& a : allowed) {
    if (a == id) return true;
  }
  return false;
}

bool HasAnySan(const PeerIdentity& peer) {
  return peer.has_san || !peer.dns_names.empty() || !peer.uris.empty() ||
         !peer.emails.empty();
}

// Whether a PEM certificate has a subjectAltName extension; false when it
// does not parse (the caller falls back on gRPC's SAN properties).
bool PemHasSubjectAltName(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  if (cert == nullptr) return false;
  const bool has = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0;
  X509_free(cert);
  return has;
}

std::vector<std::string> Values(const grpc::AuthContext& auth,
                                 const char* property) {
  std::vector<std::string> out;
  for (const grpc::string_ref& v : auth.FindPropertyValues(property)) {
    out.emplace_back(v.data(), v.size());
  }
  return out;
}

const AdminDecision kAllow = {.allowed = true, .reason = ""};

}  // namespace

AdminDecision DecideAdminAccess(const AdminPolicy& policy,
                                const PeerIdentity& peer) {
  if (!policy.mtls) {
    if (peer.loopback) return kAllow;
    return {.allowed = false,
            .reason = "admin RPCs are allowed from loopback only (the server "
                      "has no mTLS, so only the address identifies a caller)"};
  }
  for (const std::string& d : peer.dns_names) {
    if (MatchesDnsName(policy.identities, d)) return kAllow;
  }
  for (const std::string& u : peer.uris) {
    if (MatchesExactly(policy.identities, u)) return kAllow;
  }
  for (const std::string& e : peer.emails) {
    if (MatchesExactly(policy.identities, e)) return kAllow;
  }
  const bool use_cn = !HasAnySan(peer) && !peer.common_name.empty();
  if (use_cn && (MatchesDnsName(policy.identities, peer.common_name) ||
                 MatchesExactly(policy.identities, peer.common_name))) {
    return kAllow;
  }
  std::vector<std::string> seen;
  for (const std::string& d : peer.dns_names) seen.push_back("DNS:" + d);
  for (const std::string& u : peer.uris) seen.push_back("URI:" + u);
  for (const std::string& e : peer.emails) seen.push_back("email:" + e);
  if (use_cn) {
    seen.push_back("CN=" + peer.common_name);
  } else if (!peer.common_name.empty()) {
    seen.push_back(absl::StrCat("CN=", peer.common_name,
                                " (not used: the certificate has SANs)"));
  }
  return {.allowed = false,
          .reason = absl::StrCat(
              "client certificate identity ",
              seen.empty() ? "(none)" : absl::StrJoin(seen, ", "),
              policy.identities.empty()
                  ? " is not an admin: no --admin-identity is configured"
                  : " is not one of the --admin-identity values")};
}

PeerIdentity PeerIdentityFromAuthContext(const grpc::AuthContext& auth,
                                         bool loopback) {
  PeerIdentity peer;
  peer.loopback = loopback;
  peer.dns_names = Values(auth, GRPC_PEER_DNS_PROPERTY_NAME);
  peer.uris = Values(auth, GRPC_PEER_URI_PROPERTY_NAME);
  peer.emails = Values(auth, GRPC_PEER_EMAIL_PROPERTY_NAME);
  std::vector<std::string> cn = Values(auth, GRPC_X509_CN_PROPERTY_NAME);
  if (!cn.empty()) peer.common_name = cn.front();
  // gRPC reports DNS, URI, e-mail and IP SANs only; the certificate itself
  // tells whether it has any SAN at all.
  peer.has_san = !Values(auth, GRPC_PEER_IP_PROPERTY_NAME).empty() ||
                 !Values(auth, GRPC_X509_SAN_PROPERTY_NAME).empty();
  for (const std::string& pem : Values(auth, GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
    if (PemHasSubjectAltName(pem)) peer.has_san = true;
  }
  return peer;
}

}  // namespace mxpolicy
