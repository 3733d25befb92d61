#include "tests/support/test_pki.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mxpolicy::testing {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs a shell command; its output goes to dir/openssl.log.
absl::Status Run(const std::string& dir, const std::string& command) {
  const std::string log = absl::StrCat(dir, "/openssl.log");
  const int rc = std::system(
      absl::StrCat(command, " >>", Quote(log), " 2>&1").c_str());
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("`", command, "` failed (", rc, "); see ", log));
  }
  return absl::OkStatus();
}

absl::StatusOr<CertFiles> MakeCa(const std::string& dir,
                                 const std::string& name,
                                 const std::string& cn) {
  CertFiles ca{absl::StrCat(dir, "/", name, ".pem"),
               absl::StrCat(dir, "/", name, ".key")};
  absl::Status s = Run(
      dir,
      absl::StrCat("openssl req -x509 -newkey ec -pkeyopt "
                   "ec_paramgen_curve:prime256v1 -nodes -days 30 -subj ",
                   Quote("/CN=" + cn), " -addext ",
                   Quote("basicConstraints=critical,CA:TRUE"), " -addext ",
                   Quote("keyUsage=critical,keyCertSign,cRLSign"),
                   " -keyout ", Quote(ca.key), " -out ", Quote(ca.cert)));
  if (!s.ok()) return s;
  return ca;
}

}  // namespace

absl::StatusOr<CertFiles> IssueCert(const std::string& dir,
                                    const std::string& name,
                                    const CertFiles& ca, const std::string& cn,
                                    const std::string& san) {
  CertFiles out{absl::StrCat(dir, "/", name, ".pem"),
                absl::StrCat(dir, "/", name, ".key")};
  const std::string csr = absl::StrCat(dir, "/", name, ".csr");
  const std::string ext = absl::StrCat(dir, "/", name, ".ext");
  {
    std::ofstream e(ext);
    e << "basicConstraints=CA:FALSE\n"
         "keyUsage=critical,digitalSignature\n"
         "extendedKeyUsage=serverAuth,clientAuth\n";
    if (!san.empty()) e << "subjectAltName=" << san << "\n";
  }
  static std::mt19937_64 rng{std::random_device{}()};
  const std::string serial =
      absl::StrCat("0x", absl::Hex(rng() & 0x7fffffffffffffffULL,
                                   absl::kZeroPad16));
  absl::Status s = Run(
      dir, absl::StrCat("openssl req -new -newkey ec -pkeyopt "
                        "ec_paramgen_curve:prime256v1 -nodes -subj ",
                        Quote("/CN=" + cn), " -keyout ", Quote(out.key),
                        " -out ", Quote(csr)));
  if (!s.ok()) return s;
  s = Run(dir, absl::StrCat("openssl x509 -req -days 30 -in ", Quote(csr),
                            " -CA ", Quote(ca.cert), " -CAkey ", Quote(ca.key),
                            " -set_serial ", serial, " -extfile ", Quote(ext),
                            " -out ", Quote(out.cert)));
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", dir));
  }
  TestPki pki;
  pki.dir = dir;
  absl::StatusOr<CertFiles> c = MakeCa(dir, "ca-a", "mxpolicy test CA A");
  if (!c.ok()) return c.status();
  pki.ca_a = *c;
  c = MakeCa(dir, "ca-b", "mxpolicy test CA B");
  if (!c.ok()) return c.status();
  pki.ca_b = *c;
  c = IssueCert(dir, "server", pki.ca_a, "mxpolicyd server 1",
                "IP:127.0.0.1,DNS:localhost");
  if (!c.ok()) return c.status();
  pki.server = *c;
  c = IssueCert(dir, "admin", pki.ca_a, "admin.mxpolicy.test",
                "DNS:admin.mxpolicy.test");
  if (!c.ok()) return c.status();
  pki.admin = *c;
  c = IssueCert(dir, "node1", pki.ca_a, "node1.mxpolicy.test",
                "DNS:node1.mxpolicy.test");
  if (!c.ok()) return c.status();
  pki.node1 = *c;
  c = IssueCert(dir, "rogue", pki.ca_b, "admin.mxpolicy.test",
                "DNS:admin.mxpolicy.test");
  if (!c.ok()) return c.status();
  pki.rogue = *c;
  return pki;
}

absl::StatusOr<std::string> CertSubjectAndSerial(const std::string& cert) {
  const std::string command = absl::StrCat(
      "openssl x509 -noout -subject -serial -in ", Quote(cert), " 2>&1");
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return absl::InternalError("popen openssl");
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  if (pclose(p) != 0) {
    return absl::InternalError(absl::StrCat("openssl x509: ", out));
  }
  return out;
}

}  // namespace mxpolicy::testing
