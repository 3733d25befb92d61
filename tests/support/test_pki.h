// A throw-away PKI for the TLS/mTLS tests (issue 7), made at test time with
// the openssl CLI in a temp directory: nothing secret is ever committed and
// nothing expires in the repository. EC P-256 keys (fast to generate).
#ifndef MXPOLICY_TESTS_SUPPORT_TEST_PKI_H_
#define MXPOLICY_TESTS_SUPPORT_TEST_PKI_H_

#include <string>

#include "absl/status/statusor.h"

namespace mxpolicy::testing {

// A certificate and its key, as PEM files.
struct CertFiles {
  std::string cert;
  std::string key;
};

struct TestPki {
  std::string dir;
  CertFiles ca_a;  // trusted: issues the server and the client certificates
  CertFiles ca_b;  // a stranger's CA
  // From A: SAN IP:127.0.0.1 + DNS:localhost, CN "mxpolicyd server 1".
  CertFiles server;
  // From A: SAN DNS:<name> and CN <name>, for mTLS clients.
  CertFiles admin;  // admin.mxpolicy.test
  CertFiles node1;  // node1.mxpolicy.test
  // From B, with the admin's name: a valid-looking certificate from the
  // wrong CA.
  CertFiles rogue;
};

// Creates `dir` if needed and the whole PKI in it (~0.2 s).
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

// Issues one more certificate signed by `ca` into dir/<name>.{pem,key}:
// subject CN `cn`, `san` as openssl writes it ("DNS:a,IP:127.0.0.1"; empty:
// none), a random serial.
absl::StatusOr<CertFiles> IssueCert(const std::string& dir,
                                    const std::string& name,
                                    const CertFiles& ca, const std::string& cn,
                                    const std::string& san);

// The subject and serial of a PEM certificate file ("subject=CN = x",
// "serial=0A1B..."), from `openssl x509`.
absl::StatusOr<std::string> CertSubjectAndSerial(const std::string& cert);

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_TEST_PKI_H_
