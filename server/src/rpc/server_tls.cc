#include "server/src/rpc/server_tls.h"

#include <fcntl.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/src/common/status_macros.h"

namespace mxpolicy {
namespace {

constexpr char kIdentityFile[] = "identity.pem";
constexpr char kClientCaFile[] = "client-ca.pem";
// A certificate chain, key or CA bundle larger than this is not one.
constexpr size_t kMaxPemBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// OpenSSL's error queue as one line, emptied.
std::string OpenSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no PEM data" : out;
}

// Never prompts on the terminal for an encrypted key's passphrase.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::StatusOr<std::string> ReadPemFile(const std::string& path,
                                        const char* what) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read ", what, " ", path, ": ", std::strerror(errno)));
  }
  std::string data;
  char buf[16384];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot read ", what, " ", path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxPemBytes) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", path, " is larger than ", kMaxPemBytes, " bytes"));
    }
  }
  close(fd);
  if (data.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, " is empty"));
  }
  return data;
}

// All certificates of a PEM text; INVALID_ARGUMENT when none, or when a
// certificate block does not parse.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(
    const std::string& pem, const std::string& name, const char* what) {
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) {
      const unsigned long e = ERR_peek_last_error();
      // The normal end: no further "-----BEGIN CERTIFICATE-----".
      if (!certs.empty() && ERR_GET_LIB(e) == ERR_LIB_PEM &&
          ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", name,
          certs.empty() ? ": no PEM certificate"
                        : absl::StrCat(": certificate #", certs.size() + 1,
                                       " does not parse"),
          " (", OpenSslError(), ")"));
    }
    certs.push_back(std::move(cert));
  }
  return certs;
}

std::string CopyPath(const std::string& dir, const char* name) {
  return absl::StrCat(dir, "/", name);
}
std::string TempPath(const std::string& dir, const char* name) {
  return absl::StrCat(dir, "/.", name, ".tmp");
}

// Writes `data` to dir/.name.tmp, the staged replacement of dir/name, with
// an mtime at least one second later than the file it will replace (see the
// header). On error nothing is left staged.
absl::Status StageCopy(const std::string& dir, const char* name,
                       const std::string& data) {
  const std::string path = CopyPath(dir, name);
  const std::string tmp = TempPath(dir, name);
  auto fail = [&](const char* step) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write TLS copy ", path,
                                            " (", step, "): ",
                                            std::strerror(err)));
  };
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open");
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  time_t mtime = std::time(nullptr);
  struct stat old;
  if (stat(path.c_str(), &old) == 0 && mtime <= old.st_mtime) {
    mtime = old.st_mtime + 1;
  }
  const struct timespec times[2] = {{.tv_sec = mtime, .tv_nsec = 0},
                                    {.tv_sec = mtime, .tv_nsec = 0}};
  if (futimens(fd, times) != 0) {
    close(fd);
    return fail("futimens");
  }
  if (close(fd) != 0) return fail("close");
  return absl::OkStatus();
}

// Replaces dir/name with its staged copy (rename(2): readers see the old or
// the new file, never a mix). On error the staged copy is removed.
absl::Status CommitCopy(const std::string& dir, const char* name) {
  const std::string path = CopyPath(dir, name);
  const std::string tmp = TempPath(dir, name);
  if (rename(tmp.c_str(), path.c_str()) == 0) return absl::OkStatus();
  const int err = errno;
  unlink(tmp.c_str());
  return absl::InternalError(absl::StrCat(
      "cannot write TLS copy ", path, " (rename): ", std::strerror(err)));
}

}  // namespace

absl::Status ValidateIdentityPem(const std::string& cert,
                                 const std::string& key,
                                 const std::string& cert_name,
                                 const std::string& key_name) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> chain,
                   ParseCertificates(cert, cert_name, "certificate file"));
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(key.data(), static_cast<int>(key.size())));
  PkeyPtr pkey(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key file ", key_name,
        ": no unencrypted PEM private key (", OpenSslError(), ")"));
  }
  if (X509_check_private_key(chain.front().get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("key file ", key_name,
                     " does not match the first certificate of ", cert_name));
  }
  return absl::OkStatus();
}

absl::Status ValidateCaBundlePem(const std::string& bundle,
                                 const std::string& name) {
  return ParseCertificates(bundle, name, "client CA file").status();
}

absl::StatusOr<std::unique_ptr<ServerTls>> ServerTls::Create(
    const Options& options) {
  std::unique_ptr<ServerTls> tls(new ServerTls(options));
  if (!tls->enabled()) {
    tls->credentials_ = grpc::InsecureServerCredentials();
    return tls;
  }
  if (options.key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs a key file with the cert");
  }
  if (options.refresh_interval_sec < 1) {
    return absl::InvalidArgumentError("refresh_interval_sec must be >= 1");
  }
  ASSIGN_OR_RETURN(Material m, tls->ReadFiles());
  RETURN_IF_ERROR(tls->Validate(m));

  std::string parent = options.tmp_dir;
  if (parent.empty()) {
    const char* env = std::getenv("TMPDIR");
    parent = env != nullptr && env[0] != '\0' ? env : "/tmp";
  }
  std::string pattern = absl::StrCat(parent, "/mxpolicyd-tls-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat(
        "cannot create a private directory for the TLS copies under ", parent,
        ": ", std::strerror(errno)));
  }
  tls->dir_ = pattern;  // from here on, ~ServerTls removes it
  {
    absl::MutexLock lock(&tls->mu_);
    RETURN_IF_ERROR(tls->Publish(m));
    tls->last_seen_ = std::move(m);
  }

  // The provider reads the files once in its constructor (so the first
  // handshake already has them), then every refresh_interval_sec.
  const std::string identity = absl::StrCat(tls->dir_, "/", kIdentityFile);
  using grpc::experimental::FileWatcherCertificateProvider;
  tls->provider_ =
      tls->mtls()
          ? std::make_shared<FileWatcherCertificateProvider>(
                identity, identity,
                absl::StrCat(tls->dir_, "/", kClientCaFile),
                options.refresh_interval_sec)
          : std::make_shared<FileWatcherCertificateProvider>(
                identity, identity, options.refresh_interval_sec);
  grpc::experimental::TlsServerCredentialsOptions creds(tls->provider_);
  creds.watch_identity_key_cert_pairs();
  if (tls->mtls()) {
    creds.watch_root_certs();
    // The handshake fails without a client certificate chaining to the
    // client CA: nothing unauthenticated reaches a handler.
    creds.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    creds.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  tls->credentials_ = grpc::experimental::TlsServerCredentials(creds);
  if (tls->credentials_ == nullptr) {
    return absl::InternalError("gRPC refused the TLS server credentials");
  }
  return tls;
}

ServerTls::~ServerTls() {
  // The server using the credentials is gone by now (Daemon destroys it
  // first); dropping the provider stops its refresh thread before the files
  // it reads disappear.
  credentials_.reset();
  provider_.reset();
  if (dir_.empty()) return;
  for (const char* name : {kIdentityFile, kClientCaFile}) {
    unlink(CopyPath(dir_, name).c_str());
    unlink(TempPath(dir_, name).c_str());
  }
  rmdir(dir_.c_str());
}

absl::StatusOr<ServerTls::Material> ServerTls::ReadFiles() const {
  auto read_once = [this]() -> absl::StatusOr<Material> {
    Material m;
    ASSIGN_OR_RETURN(m.cert, ReadPemFile(options_.cert_file, "certificate file"));
    ASSIGN_OR_RETURN(m.key, ReadPemFile(options_.key_file, "key file"));
    if (mtls()) {
      ASSIGN_OR_RETURN(m.client_ca,
                       ReadPemFile(options_.client_ca_file, "client CA file"));
    }
    return m;
  };
  ASSIGN_OR_RETURN(Material previous, read_once());
  for (int attempt = 0; attempt < 3; ++attempt) {
    ASSIGN_OR_RETURN(Material again, read_once());
    if (again == previous) return again;
    previous = std::move(again);
  }
  return absl::UnavailableError(absl::StrCat(
      "the TLS files keep changing while being read (", options_.cert_file,
      ", ", options_.key_file, "); try again"));
}

absl::Status ServerTls::Validate(const Material& m) const {
  RETURN_IF_ERROR(
      ValidateIdentityPem(m.cert, m.key, options_.cert_file, options_.key_file));
  if (mtls()) {
    RETURN_IF_ERROR(ValidateCaBundlePem(m.client_ca, options_.client_ca_file));
  }
  return absl::OkStatus();
}

absl::Status ServerTls::Publish(const Material& m) {
  std::string identity = m.key;
  if (identity.back() != '\n') identity += '\n';
  identity += m.cert;
  // 1. Stage every file. A failure here changes nothing that is served.
  if (mtls()) RETURN_IF_ERROR(StageCopy(dir_, kClientCaFile, m.client_ca));
  if (absl::Status s = StageCopy(dir_, kIdentityFile, identity); !s.ok()) {
    unlink(TempPath(dir_, kClientCaFile).c_str());
    return s;
  }
  // 2. Rename them into place, the client CA first: during the (at most one
  // refresh) gap the old identity is served with the new CA, never a new key
  // with a stale chain.
  if (mtls()) {
    if (absl::Status s = CommitCopy(dir_, kClientCaFile); !s.ok()) {
      unlink(TempPath(dir_, kIdentityFile).c_str());
      return s;
    }
  }
  if (absl::Status s = CommitCopy(dir_, kIdentityFile); !s.ok()) {
    // The new CA is live beside the old identity: put the published CA back
    // (a new copy, so its mtime moves forward as the provider expects), so
    // that a refused reload leaves everything as it was.
    if (mtls() && published_.has_value()) {
      absl::Status restored =
          StageCopy(dir_, kClientCaFile, published_->client_ca);
      if (restored.ok()) restored = CommitCopy(dir_, kClientCaFile);
      if (!restored.ok()) {
        return absl::InternalError(absl::StrCat(
            s.message(), "; restoring the previous client CA failed too, the "
            "new client CA is served: ", restored.message()));
      }
    }
    return s;
  }
  published_ = m;
  return absl::OkStatus();
}

absl::Status ServerTls::ReloadLocked(const Material& m) {
  absl::Status s = Validate(m);
  if (!s.ok()) {
    // Invalid bytes stay invalid: remembered, so that ReloadIfChanged
    // reports them once rather than at every check.
    last_seen_ = m;
  } else {
    s = Publish(m);
    // Not remembered when Publish failed (I/O on the private copies):
    // ReloadIfChanged tries the same files again.
    if (s.ok()) last_seen_ = m;
  }
  (s.ok() ? reloads_ok_ : reloads_failed_).fetch_add(1);
  return s;
}

absl::Status ServerTls::Reload() {
  if (!enabled()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Material> m = ReadFiles();
  if (!m.ok()) {
    reloads_failed_.fetch_add(1);
    return m.status();
  }
  return ReloadLocked(*m);
}

absl::StatusOr<bool> ServerTls::ReloadIfChanged() {
  if (!enabled()) return false;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Material> m = ReadFiles();
  if (!m.ok()) {
    // Unreadable now (a secret update in progress?): counted once the files
    // settle into something that differs from the last attempt.
    return m.status();
  }
  if (*m == last_seen_) return false;
  RETURN_IF_ERROR(ReloadLocked(*m));
  return true;
}

}  // namespace mxpolicy
