// ServerTls: the credentials of mxpolicyd's main gRPC listener — plaintext,
// TLS, or mTLS (every client must present a certificate signed by the client
// CA) — and their reload without a restart (issue 7, "Security").
//
// How reload stays safe. gRPC 1.51's FileWatcherCertificateProvider re-reads
// its files every second and swaps the served key material when the bytes
// change. It would happily serve whatever an operator's half-written or
// mismatched files contain, so it never watches them directly:
//   1. the operator's files are read (until two reads agree) and validated
//      with OpenSSL — the chain parses, the key parses and matches the leaf
//      certificate, the client CA bundle parses — and an error names the file;
//   2. only then are the validated bytes written into a private directory
//      under $TMPDIR (mode 0700; the only writable path on a read-only root
//      file system) and the provider watches those copies. Every new copy is
//      first written in full as a temp file; only when all are written are
//      they renamed into place, and if the last rename fails the previous
//      client CA is put back — a refused reload never leaves a half-published
//      set.
// The key and the chain go into ONE file ("identity.pem", key first), given
// to the provider as both its key path and its chain path: OpenSSL's PEM
// readers skip blocks of other types, so one rename replaces key and chain
// together and no instant on disk pairs a new key with an old certificate.
// The provider reads its key path and its chain path separately, so a read
// could still straddle the rename; 1.51 compares each file's mtime (whole
// seconds) before and after reading and retries on a change, and every new
// copy gets an mtime at least one second after the one it replaces, so a
// straddling read is always seen and retried (verified in
// grpc_tls_certificate_provider.cc of 1.51: ReadIdentityKeyCertPairFromFiles).
// A refused reload leaves the copies — and so the served credentials — as
// they were. The copies are removed when the ServerTls is destroyed.
#ifndef MXPOLICY_RPC_SERVER_TLS_H_
#define MXPOLICY_RPC_SERVER_TLS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace grpc {
class ServerCredentials;
namespace experimental {
class CertificateProviderInterface;
}  // namespace experimental
}  // namespace grpc

namespace mxpolicy {

// Contract: Create() validates the files and returns plaintext credentials
// when `cert_file` is empty. Reload() and ReloadIfChanged() may be called
// from any thread (they serialise); the counters are lock-free.
class ServerTls {
 public:
  struct Options {
    // PEM chain (leaf first) and PEM private key; both empty: plaintext.
    std::string cert_file;
    std::string key_file;
    // PEM CA bundle for client certificates; set: mTLS.
    std::string client_ca_file;
    // Parent of the private copy directory; empty: $TMPDIR, else /tmp.
    std::string tmp_dir;
    // How often gRPC re-reads the private copies (whole seconds, >= 1).
    unsigned refresh_interval_sec = 1;
  };

  // INVALID_ARGUMENT naming the file for unreadable or invalid files or a key
  // that does not match the certificate; INTERNAL when the private copies
  // cannot be written.
  static absl::StatusOr<std::unique_ptr<ServerTls>> Create(
      const Options& options);
  ~ServerTls();

  // For the main listener's AddListeningPort; the same object for the
  // ServerTls's lifetime (reloads change what it serves, not the object).
  std::shared_ptr<grpc::ServerCredentials> credentials() const {
    return credentials_;
  }
  bool enabled() const { return !options_.cert_file.empty(); }
  bool mtls() const { return !options_.client_ca_file.empty(); }

  // Re-reads and validates the operator's files and, when valid, publishes
  // them to the listener (new handshakes use them within
  // refresh_interval_sec; open connections keep theirs). Errors as Create();
  // the served credentials are then unchanged. OK and no effect without TLS.
  absl::Status Reload();

  // Reload() only when the files' bytes differ from those last published or
  // last refused as invalid, so a broken file is reported once, not at every
  // check. Bytes that were valid but could not be published (INTERNAL:
  // writing the private copies failed) are tried again at the next call.
  // True when a reload succeeded.
  absl::StatusOr<bool> ReloadIfChanged();

  // Reload outcomes since start (the start-up load is not counted), for
  // mxpolicy_tls_reloads_total{result="ok"|"error"}.
  uint64_t reloads_ok() const { return reloads_ok_.load(); }
  uint64_t reloads_failed() const { return reloads_failed_.load(); }

  // The private directory holding the watched copies (empty without TLS).
  const std::string& copy_dir() const { return dir_; }

 private:
  // The operator's files as read once, consistently.
  struct Material {
    std::string cert, key, client_ca;
    bool operator==(const Material&) const = default;
  };

  explicit ServerTls(const Options& options) : options_(options) {}
  // Reads the three files until two consecutive reads agree (an operator's
  // copy or a Kubernetes secret update may be in progress).
  absl::StatusOr<Material> ReadFiles() const;
  absl::Status Validate(const Material& m) const;
  // Writes the private copies: all staged, then renamed (see the header
  // comment). On error the served copies are as before.
  absl::Status Publish(const Material& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Validate + Publish + count, for a reload of `m`.
  absl::Status ReloadLocked(const Material& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  std::string dir_;
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  absl::Mutex mu_;
  // What was last published, or last refused as invalid (see
  // ReloadIfChanged).
  Material last_seen_ ABSL_GUARDED_BY(mu_);
  // What the private copies hold (none before the first Publish).
  std::optional<Material> published_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_failed_{0};
};

// Validates PEM bytes as a server identity: `cert` holds one or more
// certificates (leaf first), `key` a private key matching the leaf; errors
// name `cert_name` / `key_name`. Exposed for tests.
absl::Status ValidateIdentityPem(const std::string& cert,
                                 const std::string& key,
                                 const std::string& cert_name,
                                 const std::string& key_name);

// Validates PEM bytes as a CA bundle (at least one certificate, all parse).
absl::Status ValidateCaBundlePem(const std::string& bundle,
                                 const std::string& name);

}  // namespace mxpolicy

#endif  // MXPOLICY_RPC_SERVER_TLS_H_
