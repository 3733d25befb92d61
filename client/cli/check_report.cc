#include "client/cli/check_report.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/cli/common.h"
#include "server/src/sts/policy.h"

namespace mxpolicy::cli {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kWeek = 7 * kDay;

const char kDnssecSection[] = "DNSSEC and DANE";
const char kStsSection[] = "MTA-STS";
const char kTlsRptSection[] = "TLSRPT";
const char kResultSection[] = "result";

std::string Plural(int64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// "3 1 1 23ff5418b1ca4d7a…": enough to recognise a record next to the
// zone file; `mxpolicy resolve` prints the whole digest.
std::string ShortTlsa(const v1::TlsaRecord& t) {
  const std::string hex = absl::BytesToHexString(t.data());
  return absl::StrFormat("%d %d %d %s%s", t.usage(), t.selector(),
                         t.matching_type(), hex.substr(0, 16),
                         hex.size() > 16 ? "..." : "");
}

std::string FormatSeconds(int64_t s) {
  if (s < 60) return absl::StrCat(s, "s");
  if (s >= kDay && s % kDay == 0) {
    return absl::StrCat(s, "s (", Plural(s / kDay, "day", "days"), ")");
  }
  return absl::StrCat(s, "s (", HumanDuration(absl::Seconds(s)), ")");
}

class Checker {
 public:
  explicit Checker(const v1::ResolveResponse& r) : r_(r) {}

  std::vector<Finding> Run() {
    const bool no_mail = r_.decision() == v1::DECISION_NO_MAIL;
    CheckMx();
    if (!no_mail) {
      for (const v1::MxHost& h : r_.mx_hosts()) CheckHost(h);
      CheckSts();
      CheckTlsRpt();
    }
    CheckDecision();
    return std::move(out_);
  }

 private:
  void Add(Level level, absl::string_view section, absl::string_view check,
           absl::string_view subject, std::string detail) {
    out_.push_back(Finding{level, std::string(section), std::string(check),
                           std::string(subject), std::move(detail)});
  }

  bool MxSecure() const { return r_.mx_dnssec() == v1::DNSSEC_STATE_SECURE; }
  bool DaneApplies() const {
    return r_.decision() == v1::DECISION_DANE_REQUIRED ||
           r_.decision() == v1::DECISION_DANE;
  }
  bool StsActive() const {
    return r_.has_sts_policy() &&
           (r_.sts_policy().mode() == v1::STS_MODE_ENFORCE ||
            r_.sts_policy().mode() == v1::STS_MODE_TESTING);
  }

  void CheckMx() {
    const std::string& reason = r_.reason();
    if (r_.decision() == v1::DECISION_NO_MAIL) {
      if (absl::StrContains(reason, "null MX")) {
        Add(Level::kInfo, kDnssecSection, "MX RRset", "",
            "null MX (RFC 7505): the domain accepts no mail, so DANE and "
            "MTA-STS do not apply");
      } else {
        Add(Level::kFail, kDnssecSection, "domain", "",
            absl::StrCat(Printable(reason),
                         ": senders return mail to this domain as "
                         "undeliverable"));
      }
      return;
    }
    switch (r_.mx_dnssec()) {
      case v1::DNSSEC_STATE_SECURE:
        Add(Level::kOk, kDnssecSection, "MX RRset", "",
            r_.implicit_mx()
                ? "no MX RRset, proven by DNSSEC: the domain itself is the "
                  "(implicit) MX host (RFC 5321 §5.1)"
                : "DNSSEC-signed and validated (secure): DANE can bind the "
                  "domain to its MX hosts");
        break;
      case v1::DNSSEC_STATE_INSECURE:
        Add(Level::kWarn, kDnssecSection, "MX RRset", "",
            "not DNSSEC-signed (insecure): DANE cannot authenticate the "
            "domain's MX hosts (RFC 7672 §2.2.1), and the MX names in DNS "
            "can be forged; sign the zone and publish its DS");
        break;
      case v1::DNSSEC_STATE_BOGUS:
        Add(Level::kFail, kDnssecSection, "MX RRset", "",
            absl::StrCat("DNSSEC validation fails (bogus): validating "
                         "senders defer all mail until the signatures or the "
                         "DS record are fixed — ",
                         Printable(reason)));
        break;
      case v1::DNSSEC_STATE_INDETERMINATE:
        Add(Level::kFail, kDnssecSection, "MX RRset", "",
            absl::StrCat("lookup failed, senders defer mail: ",
                         Printable(reason)));
        break;
      default:
        Add(Level::kInfo, kDnssecSection, "MX RRset", "",
            "no DNSSEC state in the answer");
    }
    if (r_.mx_hosts_size() == 0 && r_.mx_dnssec() == v1::DNSSEC_STATE_SECURE) {
      Add(Level::kFail, kDnssecSection, "MX hosts", "",
          absl::StrCat("none in the answer: ", Printable(reason)));
    }
  }

  void CheckHost(const v1::MxHost& h) {
    const std::string host = Printable(h.hostname());
    const size_t fails_before = CountFails();
    // Address records.
    const std::string addresses =
        h.addresses().empty()
            ? std::string("no addresses")
            : Printable(absl::StrJoin(h.addresses(), ", "), 120);
    switch (h.address_dnssec()) {
      case v1::DNSSEC_STATE_SECURE:
        Add(Level::kOk, kDnssecSection, "address DNSSEC", host,
            absl::StrCat("A/AAAA signed and validated (", addresses, ")"));
        break;
      case v1::DNSSEC_STATE_INSECURE:
        // Behind an unsigned MX RRset the domain has no DANE anyway; only a
        // signed domain pointing at an unsigned host loses it here.
        Add(MxSecure() ? Level::kWarn : Level::kInfo, kDnssecSection,
            "address DNSSEC", host,
            absl::StrCat("A/AAAA not signed (insecure): no DANE for this "
                         "host, its TLSA records are not even looked up "
                         "(RFC 7672 §2.2.2)",
                         MxSecure() ? "; sign the host's zone" : "", " (",
                         addresses, ")"));
        break;
      case v1::DNSSEC_STATE_BOGUS:
      case v1::DNSSEC_STATE_INDETERMINATE:
        Add(Level::kFail, kDnssecSection, "address DNSSEC", host,
            absl::StrCat("address lookup ", DnssecName(h.address_dnssec()),
                         ": senders skip this host — ", Printable(h.reason())));
        break;
      default:
        Add(Level::kInfo, kDnssecSection, "address DNSSEC", host,
            absl::StrCat("not looked up: ", Printable(h.reason())));
    }
    if (h.addresses().empty() &&
        (h.address_dnssec() == v1::DNSSEC_STATE_SECURE ||
         h.address_dnssec() == v1::DNSSEC_STATE_INSECURE)) {
      Add(Level::kFail, kDnssecSection, "addresses", host,
          "the host has no A or AAAA record: senders cannot reach it");
    }

    // TLSA records.
    switch (h.tlsa_state()) {
      case v1::TLSA_STATE_USABLE: {
        std::vector<std::string> records;
        for (const v1::TlsaRecord& t : h.tlsa_records()) {
          records.push_back(ShortTlsa(t));
        }
        Add(Level::kOk, kDnssecSection, "TLSA", host,
            absl::StrCat(Plural(h.tlsa_records_size(), "usable record",
                                "usable records"),
                         " at _25._tcp.", Printable(h.tlsa_base_domain()), ": ",
                         absl::StrJoin(records, ", ")));
        if (h.tlsa_records_size() == 1) {
          Add(Level::kInfo, kDnssecSection, "TLSA rollover", host,
              "a single record: before changing the key or certificate, "
              "publish the next one's TLSA record next to it and wait two "
              "TTLs (RFC 7671 §8.1)");
        }
        break;
      }
      case v1::TLSA_STATE_UNUSABLE:
        Add(Level::kFail, kDnssecSection, "TLSA", host,
            absl::StrCat(
                "no usable record: DANE senders insist on TLS but cannot "
                "authenticate (Postfix encrypt), dane-only senders defer; "
                "publish DANE-EE (3 1 1) or DANE-TA (2 1 1) records "
                "(RFC 7672 §3.1) — ",
                Printable(h.reason())));
        break;
      case v1::TLSA_STATE_NONE:
        if (MxSecure() && h.address_dnssec() == v1::DNSSEC_STATE_SECURE) {
          Add(Level::kWarn, kDnssecSection, "TLSA", host,
              absl::StrCat("none at _25._tcp.", host,
                           " (proven absent): MX and host are signed, so "
                           "publishing TLSA records would enable DANE"));
        } else {
          Add(Level::kInfo, kDnssecSection, "TLSA", host,
              absl::StrCat("none at _25._tcp.", host, " (proven absent)"));
        }
        break;
      case v1::TLSA_STATE_INSECURE:
        if (h.address_dnssec() == v1::DNSSEC_STATE_INSECURE) {
          Add(Level::kInfo, kDnssecSection, "TLSA", host,
              "not used: the host's addresses are insecure");
        } else {
          Add(Level::kWarn, kDnssecSection, "TLSA", host,
              absl::StrCat("records are not DNSSEC-signed and therefore "
                           "ignored (RFC 6698 §4.1) — ",
                           Printable(h.reason())));
        }
        break;
      case v1::TLSA_STATE_ERROR:
        Add(Level::kFail, kDnssecSection, "TLSA", host,
            absl::StrCat("lookup failed, DANE senders treat the host as "
                         "unusable (RFC 7672 §2.1.2) — ",
                         Printable(h.reason())));
        break;
      default:
        break;
    }

    // What a sender does with the host (as the service decided).
    const bool sts_refuses = StsActive() &&
                             r_.sts_policy().mode() == v1::STS_MODE_ENFORCE &&
                             !h.sts_allowed();
    switch (h.tls_requirement()) {
      case v1::TLS_REQUIREMENT_DANE:
        Add(Level::kOk, kDnssecSection, "sender", host,
            absl::StrCat("must authenticate with DANE (TLSA base and SNI ",
                         Printable(h.tlsa_base_domain()), "), no fall-back"));
        break;
      case v1::TLS_REQUIREMENT_ENCRYPT:
        Add(Level::kInfo, kDnssecSection, "sender", host,
            "TLS required without authentication (Postfix encrypt)");
        break;
      case v1::TLS_REQUIREMENT_PKIX:
        Add(Level::kOk, kDnssecSection, "sender", host,
            absl::StrCat("MTA-STS: TLS with a PKIX certificate valid for ",
                         host, " (RFC 8461 §4.2)"));
        break;
      case v1::TLS_REQUIREMENT_OPPORTUNISTIC:
        Add(Level::kInfo, kDnssecSection, "sender", host,
            "opportunistic TLS: unauthenticated, cleartext if STARTTLS "
            "fails");
        break;
      case v1::TLS_REQUIREMENT_UNUSABLE:
        // Its cause is a FAIL already, here or (MTA-STS) further down.
        Add(CountFails() > fails_before || sts_refuses ? Level::kInfo
                                                       : Level::kFail,
            kDnssecSection, "sender", host,
            absl::StrCat("will not deliver to this host: ",
                         Printable(h.reason())));
        break;
      default:
        break;
    }
  }

  void CheckSts() {
    const std::string note = Printable(StsNoteFromReason(r_.reason()));
    if (!r_.has_sts_policy()) {
      // The service's note tells "not published" apart from "published but
      // broken"; the latter is what an owner who just published must fix.
      const bool not_published =
          note.empty() || absl::StartsWith(note, "no MTA-STS TXT record");
      if (!not_published) {
        absl::string_view why = note;
        absl::ConsumePrefix(&why, "fetching the policy; ");
        Add(Level::kFail, kStsSection, "policy", "",
            absl::StrCat("no valid policy: ", why,
                         " — senders that find the TXT record report "
                         "sts-policy-fetch-error or sts-policy-invalid "
                         "(RFC 8460 §4.3.2) and go on without MTA-STS"));
      } else if (note.empty() && r_.decision() == v1::DECISION_TEMPFAIL) {
        // The DANE failure decided first (RFC 8461 §2); the answer carries
        // nothing about the MTA-STS lookup then.
        Add(Level::kInfo, kStsSection, "policy", "",
            "none in the answer: the DNS failure above decides first, so "
            "MTA-STS could not be judged; fix it and check again");
      } else if (DaneApplies()) {
        Add(Level::kInfo, kStsSection, "policy", "",
            absl::StrCat("none", note.empty() ? "" : " (" + note + ")",
                         ": DANE protects DANE-capable senders; an MTA-STS "
                         "policy would also protect senders without DANE"));
      } else {
        Add(Level::kWarn, kStsSection, "policy", "",
            absl::StrCat("none (", note.empty() ? "no policy" : note,
                         "): without DANE or MTA-STS, senders use "
                         "opportunistic TLS that an attacker can strip; "
                         "publish _mta-sts.",
                         Printable(r_.domain()), " TXT and https://mta-sts.",
                         Printable(r_.domain()),
                         "/.well-known/mta-sts.txt (RFC 8461 §3)"));
      }
      return;
    }
    const v1::StsPolicy& p = r_.sts_policy();
    const std::string shown_note =
        note == "fetching the policy" ? "fetched for this answer" : note;
    Add(Level::kOk, kStsSection, "policy", "",
        absl::StrCat(
            "id ", Printable(p.id()), ", fetched ",
            absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                             absl::FromUnixSeconds(p.fetched_at().seconds()),
                             absl::UTCTimeZone()),
            shown_note.empty() ? "" : " (" + shown_note + ")"));
    // A cached policy standing in for a broken TXT record or fetch works
    // only until it expires.
    if (absl::StrContains(note, "failed") ||
        absl::StrContains(note, "no valid TXT") ||
        absl::StrContains(note, "policy fetch:") ||
        absl::StrContains(note, "back-off")) {
      Add(Level::kWarn, kStsSection, "policy refresh", "",
          absl::StrCat("the policy in force is a cached one: ", note));
    }
    if (DaneApplies()) {
      Add(Level::kInfo, kStsSection, "precedence", "",
          "DANE applies, so DANE-capable senders ignore this policy "
          "(RFC 8461 §2); it still protects senders without DANE");
    }
    switch (p.mode()) {
      case v1::STS_MODE_ENFORCE:
        Add(Level::kOk, kStsSection, "mode", "",
            "enforce: senders deliver only to listed MX hosts with a valid "
            "certificate");
        break;
      case v1::STS_MODE_TESTING:
        Add(Level::kWarn, kStsSection, "mode", "",
            "testing: failures are only reported, mail still goes out over "
            "unauthenticated TLS; switch to enforce once the TLSRPT reports "
            "are clean");
        break;
      case v1::STS_MODE_NONE:
        Add(Level::kWarn, kStsSection, "mode", "",
            "none: the policy is withdrawn, senders treat the domain as "
            "having no MTA-STS (RFC 8461 §5)");
        break;
      default:
        Add(Level::kWarn, kStsSection, "mode", "", "unknown mode");
    }
    const int64_t max_age = p.max_age().seconds();
    if (p.mode() == v1::STS_MODE_NONE) {
      Add(Level::kInfo, kStsSection, "max_age", "", FormatSeconds(max_age));
    } else if (max_age < kDay) {
      Add(Level::kWarn, kStsSection, "max_age", "",
          absl::StrCat(FormatSeconds(max_age),
                       " is less than a day: senders soon forget the policy "
                       "and are open to downgrade again; RFC 8461 §3.2 "
                       "suggests weeks (e.g. 604800 or more)"));
    } else if (max_age < kWeek) {
      Add(Level::kInfo, kStsSection, "max_age", "",
          absl::StrCat(FormatSeconds(max_age),
                       ": fine while trying the policy out; raise it to "
                       "weeks once it is stable (RFC 8461 §3.2)"));
    } else {
      Add(Level::kOk, kStsSection, "max_age", "", FormatSeconds(max_age));
    }
    std::vector<std::string> lines;
    for (const std::string& l : p.raw_lines()) lines.push_back(Printable(l));
    Add(Level::kInfo, kStsSection, "policy text", "",
        absl::StrJoin(lines, " | "));

    if (!StsActive() || r_.mx_hosts().empty()) return;
    const bool enforce = p.mode() == v1::STS_MODE_ENFORCE;
    const std::vector<std::string> patterns(p.mx_patterns().begin(),
                                            p.mx_patterns().end());
    for (const v1::MxHost& h : r_.mx_hosts()) {
      const std::string host = Printable(h.hostname());
      if (h.sts_allowed()) {
        std::string matched;
        for (const std::string& pattern : patterns) {
          if (sts::MatchesPattern(pattern, h.hostname())) {
            matched = pattern;
            break;
          }
        }
        Add(Level::kOk, kStsSection, "mx match", host,
            absl::StrCat("matched by \"mx: ", Printable(matched), "\""));
        continue;
      }
      // SPEC E1(a): an MX that matches no pattern fails the policy; under
      // enforce senders refuse it (E4), and with no host left they defer
      // (E5). E7: an implicit MX must match too.
      Add(enforce ? Level::kFail : Level::kWarn, kStsSection, "mx match", host,
          absl::StrCat("matches no mx pattern (",
                       Printable(absl::StrJoin(patterns, ", "), 200), "): ",
                       enforce ? "MTA-STS senders will not deliver to it"
                               : "it would be refused once the mode is enforce",
                       " (RFC 8461 §4.1); add \"mx: ", host,
                       "\" or a \"*.\" pattern covering it to the policy"));
    }
    for (const std::string& pattern : patterns) {
      bool used = false;
      for (const v1::MxHost& h : r_.mx_hosts()) {
        used = used || sts::MatchesPattern(pattern, h.hostname());
      }
      if (!used) {
        Add(Level::kWarn, kStsSection, "mx pattern", Printable(pattern),
            "matches no current MX host: a typo, a stale entry, or a host "
            "you have not added to DNS yet");
      }
    }
  }

  void CheckTlsRpt() {
    if (r_.tlsrpt_rua().empty()) {
      Add(Level::kWarn, kTlsRptSection, "record", "",
          absl::StrCat("no valid TLSRPT record at _smtp._tls.",
                       Printable(r_.domain()),
                       ": you get no reports of failed TLS deliveries "
                       "(RFC 8460 §3), e.g. \"v=TLSRPTv1; "
                       "rua=mailto:tlsrpt@",
                       Printable(r_.domain()), "\""));
      return;
    }
    std::vector<std::string> rua;
    for (const std::string& u : r_.tlsrpt_rua()) rua.push_back(Printable(u));
    Add(Level::kOk, kTlsRptSection, "record", "",
        absl::StrCat("reports go to ", absl::StrJoin(rua, ", ")));
  }

  void CheckDecision() {
    const std::string name = DecisionName(r_.decision());
    int usable = 0;
    for (const v1::MxHost& h : r_.mx_hosts()) {
      if (h.tls_requirement() != v1::TLS_REQUIREMENT_UNUSABLE) ++usable;
    }
    switch (r_.decision()) {
      case v1::DECISION_DANE_REQUIRED:
        Add(Level::kOk, kResultSection, "decision", "",
            absl::StrCat(name,
                         ": senders authenticate every MX host with DANE, "
                         "no fall-back (Postfix dane-only)"));
        break;
      case v1::DECISION_DANE:
        Add(Level::kOk, kResultSection, "decision", "",
            absl::StrCat(name,
                         ": senders authenticate the hosts with usable TLSA "
                         "by DANE; the others get encrypt or opportunistic "
                         "TLS (Postfix dane)"));
        break;
      case v1::DECISION_STS_ENFORCE:
        if (usable == 0) {
          Add(Level::kFail, kResultSection, "decision", "",
              absl::StrCat(name,
                           ": no MX host is allowed, so MTA-STS senders "
                           "defer all mail (RFC 8461 §5)"));
        } else {
          Add(Level::kOk, kResultSection, "decision", "",
              absl::StrCat(name, ": senders deliver only to ", usable, " of ",
                           r_.mx_hosts_size(),
                           " MX host(s), over TLS with a certificate valid "
                           "for the host name (Postfix secure)"));
        }
        break;
      case v1::DECISION_STS_TESTING:
        Add(Level::kInfo, kResultSection, "decision", "",
            absl::StrCat(name,
                         ": senders deliver as usual and report TLS "
                         "failures (Postfix may)"));
        break;
      case v1::DECISION_NONE:
        Add(Level::kWarn, kResultSection, "decision", "",
            absl::StrCat(name,
                         ": opportunistic TLS only, mail can be downgraded "
                         "to cleartext (Postfix may)"));
        break;
      case v1::DECISION_TEMPFAIL:
        Add(Level::kFail, kResultSection, "decision", "",
            absl::StrCat(name,
                         ": senders defer all mail to this domain until the "
                         "lookup succeeds"));
        break;
      case v1::DECISION_NO_MAIL:
        Add(Level::kInfo, kResultSection, "decision", "",
            absl::StrCat(name, ": senders do not deliver (they bounce)"));
        break;
      default:
        Add(Level::kWarn, kResultSection, "decision", "",
            absl::StrCat(name, ": the service gave no decision"));
    }
    Add(Level::kInfo, kResultSection, "reason", "", Printable(r_.reason()));
    // The service resolves DNS and fetches policies; it never talks SMTP,
    // so whether the MX hosts' certificates match is for the owner to test.
    if (DaneApplies()) {
      Add(Level::kInfo, kResultSection, "not checked", "",
          absl::StrCat("whether each MX host's certificate matches its TLSA "
                       "records; test with e.g. posttls-finger -c -l dane ",
                       Printable(r_.domain())));
    } else if (StsActive()) {
      const std::string mx = r_.mx_hosts().empty()
                                 ? std::string("MX")
                                 : Printable(r_.mx_hosts(0).hostname());
      Add(Level::kInfo, kResultSection, "not checked", "",
          absl::StrCat("whether each MX host presents a certificate valid "
                       "for its name (RFC 8461 §4.2); test with e.g. openssl "
                       "s_client -starttls smtp -connect ",
                       mx, ":25 -verify_hostname ", mx,
                       " -verify_return_error"));
    }
  }

  size_t CountFails() const {
    size_t n = 0;
    for (const Finding& f : out_) n += f.level == Level::kFail;
    return n;
  }

  const v1::ResolveResponse& r_;
  std::vector<Finding> out_;
};

}  // namespace

const char* LevelName(Level level) {
  switch (level) {
    case Level::kOk:
      return "OK";
    case Level::kInfo:
      return "INFO";
    case Level::kWarn:
      return "WARN";
    case Level::kFail:
      return "FAIL";
  }
  return "?";
}

std::vector<Finding> CheckResponse(const v1::ResolveResponse& r) {
  return Checker(r).Run();
}

std::string StsNoteFromReason(absl::string_view reason) {
  static constexpr absl::string_view kPrefixes[] = {
      "no MTA-STS policy (", "MTA-STS mode none (",
      "MTA-STS discovery failed (", "MTA-STS enforce (", "MTA-STS testing ("};
  for (absl::string_view prefix : kPrefixes) {
    if (!absl::StartsWith(reason, prefix)) continue;
    absl::string_view rest = reason.substr(prefix.size());
    // The note may hold parentheses of its own ("(RFC 8461 §3.3)").
    int depth = 0;
    size_t end = rest.size();
    for (size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '(') {
        ++depth;
      } else if (rest[i] == ')') {
        if (depth == 0) {
          end = i;
          break;
        }
        --depth;
      }
    }
    absl::string_view note = rest.substr(0, end);
    // "id x; note" in the enforce and testing reasons.
    if (absl::StartsWith(note, "id ")) {
      const size_t semi = note.find("; ");
      note = semi == absl::string_view::npos ? absl::string_view()
                                             : note.substr(semi + 2);
    }
    return std::string(note);
  }
  return "";
}

}  // namespace mxpolicy::cli
