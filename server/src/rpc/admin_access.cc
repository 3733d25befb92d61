#include "server/src/rpc/admin_access.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mxpolicy {
namespace {

bool Listed(const std::vector<std::string>& allowed, absl::string_view id,
            bool case_insensitive) {
  for (const std::string& a : allowed) {
    if (case_insensitive ? absl::EqualsIgnoreCase(a, id) : a == id) {
      return true;
    }
  }
  return false;
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
    if (Listed(policy.identities, d, /*case_insensitive=*/true)) {
      return kAllow;
    }
  }
  for (const std::string& u : peer.uris) {
    if (Listed(policy.identities, u, false)) return kAllow;
  }
  for (const std::string& e : peer.emails) {
    if (Listed(policy.identities, e, false)) return kAllow;
  }
  if (!peer.common_name.empty() &&
      Listed(policy.identities, peer.common_name, true)) {
    return kAllow;
  }
  std::vector<std::string> seen;
  for (const std::string& d : peer.dns_names) seen.push_back("DNS:" + d);
  for (const std::string& u : peer.uris) seen.push_back("URI:" + u);
  for (const std::string& e : peer.emails) seen.push_back("email:" + e);
  if (!peer.common_name.empty()) seen.push_back("CN=" + peer.common_name);
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
  return peer;
}

}  // namespace mxpolicy
