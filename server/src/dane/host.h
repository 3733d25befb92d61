// The per-host step of RFC 7672 §2.2 (SPEC G2, G5–G7, G14, G17): which
// lookups an MX host needs — addresses, a CNAME probe, TLSA at the expanded
// and/or the original name — and, once they are in, what TLS the host
// requires. Pure logic over DNS answers; the resolver does the I/O and asks
// NeededLookups() after each answer, so independent lookups run at once.
#ifndef MXPOLICY_DANE_HOST_H_
#define MXPOLICY_DANE_HOST_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "server/src/common/dns_records.h"
#include "server/src/dane/mx.h"

namespace mxpolicy::dane {

struct Query {
  std::string name;
  RrType type = RrType::kA;
  bool operator==(const Query&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const Query& q) {
    return H::combine(std::move(h), q.name, q.type);
  }
};

// "_25._tcp.<base>" (RFC 7672 §2.2.3: SMTP on port 25).
std::string TlsaQueryName(absl::string_view base);

// Answers gathered so far for one host.
using HostAnswers = absl::flat_hash_map<Query, DnsResult>;

// The lookups to start as soon as the host is known: A, AAAA and —
// speculatively, so that a secure host costs one round-trip level — TLSA at
// the MX name. Empty for invalid targets.
std::vector<Query> InitialLookups(const MxHost& host);

// The lookups whose answers are still missing to decide `host`; empty when
// EvaluateHost() can decide. Never contains a query already answered.
std::vector<Query> NeededLookups(const MxHost& host,
                                 const HostAnswers& answers);

enum class TlsaState { kUsable, kUnusable, kNone, kInsecure, kError };
enum class Requirement { kDane, kEncrypt, kOpportunistic, kUnusable };

struct HostVerdict {
  MxHost host;
  DnssecState address_state = DnssecState::kIndeterminate;
  std::vector<std::string> addresses;
  TlsaState tlsa_state = TlsaState::kNone;
  Requirement requirement = Requirement::kOpportunistic;
  // Where the TLSA RRset was found (RFC 7672 §2.2.3); "" without TLSA.
  std::string tlsa_base_domain;
  // Usable records after SPEC G8/G9.
  std::vector<TlsaRecord> tlsa;
  // True when the host is unusable because a lookup failed (bogus,
  // SERVFAIL, timeout) — as opposed to data that rules it out (an invalid
  // target, a name without addresses).
  bool lookup_failed = false;
  // True when that failed lookup was a TLSA lookup of a host with secure
  // addresses, i.e. DANE could apply (SPEC F3/F4).
  bool dane_lookup_failed = false;
  absl::Duration ttl = absl::InfiniteDuration();
  std::string reason;
};

// Decides the host from its answers. Requires NeededLookups() to be empty.
HostVerdict EvaluateHost(const MxHost& host, const HostAnswers& answers);

}  // namespace mxpolicy::dane

#endif  // MXPOLICY_DANE_HOST_H_
