#!/usr/bin/env python3
"""Compare mxpolicy's DANE verdicts with Postfix's posttls-finger (SPEC G).

Two sub-commands, used by posttls_finger_dane.sh:

  plan MXPOLICY_JSONL
      Print one "DOMAIN<TAB>HOST" line per MX host of every answer (the hosts
      posttls-finger is run against), in answer order.

  compare MXPOLICY_JSONL MANIFEST [--no-ipv6]
      MANIFEST has one tab-separated line per posttls-finger run:
          host   DOMAIN HOST LOGFILE SNI
          walk   DOMAIN -    LOGFILE SNI
      ("host": `posttls-finger -v -c -l dane [HOST]`; "walk": the same with
      the bare DOMAIN, i.e. Postfix's own MX walk. SNI is what the test SMTP
      server received, "-" for none, "?" when no TLS handshake was seen.)
      Prints one OK/MISMATCH/SKIP line per run and a summary; exits 0 only if
      nothing mismatched, at least --min-hosts hosts were compared and every
      --need-hosts domain had at least one per-host run.

posttls-finger is run without any CA (no -F/-P), so a connection can only be
authenticated through DANE: "Verified"/"Trusted" means DANE authentication,
"Untrusted"/"Anonymous" means TLS without authentication.

Expected correspondence, per host (mxpolicy tlsRequirement/tlsaState ->
posttls-finger connection/TLSA evidence):

  DANE/USABLE              -> verified|trusted / usable
  ENCRYPT/UNUSABLE         -> untrusted|anonymous / unusable
                              ("all TLSA records unusable, fallback to
                              unauthenticated TLS")
  OPPORTUNISTIC/NONE       -> untrusted|anonymous / none   (TLSA queried,
                              secure denial: "no TLSA records found")
  OPPORTUNISTIC/INSECURE   -> untrusted|anonymous / insecure (no TLSA query:
                              the host's address RRset is insecure)
  UNUSABLE/ERROR           -> tlsa-lookup-error / error ("TLSA lookup error")
    ... with no addresses  -> dns-tempfail / -   (the address lookup failed:
                              "Destination address lookup failed: ... try again")
  PKIX or UNUSABLE with NONE/INSECURE (MTA-STS decided; posttls-finger knows
  no MTA-STS) -> the same as OPPORTUNISTIC with that tlsaState.

Also per host: the SNI posttls-finger sent (Postfix sends the TLSA base
domain whenever TLSA records are present, SPEC G12) must equal mxpolicy's
tlsaBaseDomain for USABLE/UNUSABLE, and no SNI otherwise.

Per domain ("walk"): posttls-finger stops at the first host it can use, which
must be mxpolicy's first host whose requirement is not UNUSABLE, with the
verdict expected for that host; "Verified" when the MX RRset is secure (or
implicit MX), "Trusted" when it is insecure (SPEC G4). Without such a host:
  DECISION_TEMPFAIL, no MX hosts (MX lookup bogus/failed, G3)
                         -> "Destination address lookup failed: ... try again"
  DECISION_TEMPFAIL, every host UNUSABLE (G5/G7)
                         -> what those hosts expect (TLSA lookup error, or the
                            address lookup's "try again")
  DECISION_NO_MAIL       -> "does not accept mail (nullMX)" or "Host not found"
"""

import argparse
import json
import re
import sys

ESTABLISHED = re.compile(
    r"posttls-finger: (Verified|Trusted|Untrusted|Anonymous) TLS connection "
    r"established to ([^\[\s]+)\[")
FAILED = re.compile(
    r"posttls-finger: Failed to establish session to \S+ via ([^:\s]+): (.*)")
DEST_FAILED = re.compile(r"posttls-finger: Destination address lookup failed: (.*)")
TLSA_QUERY = re.compile(r"dns_query: _\d+\._tcp\.(\S+) \(TLSA\): (.*)")


def short(enum_value, prefix):
    return enum_value[len(prefix):] if enum_value.startswith(prefix) else enum_value


def load_answers(path):
    answers = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                answers.append(json.loads(line))
    return answers


class Finger:
    """What one posttls-finger -v -c -l dane run reported.

    conn: verified | trusted | untrusted | anonymous   (TLS established)
          tlsa-lookup-error                            (host skipped)
          dns-tempfail   (address/MX lookup: "Host not found, try again")
          not-found      (address/MX lookup: NXDOMAIN, permanent)
          null-mx        ("does not accept mail (nullMX)")
          failed         (anything else; detail says what)
    tlsa: usable | unusable | none | insecure | error | - (never got there)
    """

    def __init__(self, path):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.text = text
        self.conn = "failed"
        self.host = None           # host it connected to / gave up on
        self.detail = ""
        m = ESTABLISHED.search(text)
        f = FAILED.search(text)
        d = DEST_FAILED.search(text)
        if m:
            self.conn, self.host = m.group(1).lower(), m.group(2)
        elif f:
            self.host, self.detail = f.group(1), f.group(2)
            if "TLSA lookup error" in self.detail:
                self.conn = "tlsa-lookup-error"
        elif d:
            self.detail = d.group(1)
            if "does not accept mail (nullMX)" in self.detail:
                self.conn = "null-mx"
            elif "try again" in self.detail:
                self.conn = "dns-tempfail"
            elif "Host not found" in self.detail:
                self.conn = "not-found"
        else:
            last = [l for l in text.splitlines() if l.startswith("posttls-finger:")]
            self.detail = last[-1] if last else "(no output)"
        queries = TLSA_QUERY.findall(text)
        if self.conn == "tlsa-lookup-error":
            self.tlsa = "error"
        elif d:
            self.tlsa = "-"
        elif "all TLSA records unusable" in text:
            self.tlsa = "unusable"
        elif any(result.strip() == "OK" for _, result in queries):
            self.tlsa = "usable"
        elif queries:
            self.tlsa = "none"
        else:
            self.tlsa = "insecure"

    @property
    def category(self):
        return {"verified": "authenticated", "trusted": "authenticated",
                "untrusted": "unauthenticated", "anonymous": "unauthenticated",
                }.get(self.conn, self.conn)

    EVIDENCE = re.compile(r"TLS connection|TLSA|DANE|Failed|unusable|lookup failed|"
                          r"warning|panic|fatal|error")
    NOISE = re.compile(r"dns_get_answer|ctable_")

    def evidence(self):
        """posttls-finger's lines that explain its verdict."""
        return [l[:220] for l in self.text.splitlines()
                if self.EVIDENCE.search(l) and not self.NOISE.search(l)]

    def verdict(self):
        v = "%s/%s" % (self.conn, self.tlsa)
        if self.conn == "failed" and self.detail:
            v += " (%s)" % self.detail.replace(" ", "_")[:120]
        return v


# (tlsRequirement, tlsaState) -> (posttls-finger category, posttls-finger tlsa)
EXPECTED = {
    ("DANE", "USABLE"): ("authenticated", "usable"),
    ("ENCRYPT", "UNUSABLE"): ("unauthenticated", "unusable"),
    ("OPPORTUNISTIC", "NONE"): ("unauthenticated", "none"),
    ("OPPORTUNISTIC", "INSECURE"): ("unauthenticated", "insecure"),
    ("PKIX", "NONE"): ("unauthenticated", "none"),
    ("PKIX", "INSECURE"): ("unauthenticated", "insecure"),
    ("UNUSABLE", "NONE"): ("unauthenticated", "none"),
    ("UNUSABLE", "INSECURE"): ("unauthenticated", "insecure"),
    ("UNUSABLE", "ERROR"): ("tlsa-lookup-error", "error"),
}


def expected(h):
    """(posttls-finger category, TLSA evidence) expected for host h, or None."""
    req, tlsa = host_state(h)
    if (req, tlsa) == ("UNUSABLE", "ERROR") and not h.get("addresses"):
        # the address lookup failed (SERVFAIL/bogus): Postfix gets no address
        # and defers ("Host not found, try again"); no TLSA lookup happens
        return ("dns-tempfail", "-")
    return EXPECTED.get((req, tlsa))


def host_state(h):
    req = short(h.get("tlsRequirement", "TLS_REQUIREMENT_UNSPECIFIED"), "TLS_REQUIREMENT_")
    tlsa = short(h.get("tlsaState", "TLSA_STATE_UNSPECIFIED"), "TLSA_STATE_")
    return req, tlsa


def cmd_plan(args):
    for ans in load_answers(args.mxpolicy):
        for h in ans.get("mxHosts", []):
            print("%s\t%s" % (ans["domain"], h["hostname"]))
    return 0


def compare_host(ans, h, finger, sni, no_ipv6):
    """Returns (status, text) with status in OK, MISMATCH, SKIP."""
    req, tlsa = host_state(h)
    mine = "%s/%s" % (req, tlsa)
    theirs = finger.verdict()
    if no_ipv6 and ipv6_only(h):
        return "SKIP", "mxpolicy=%s posttls-finger=%s (IPv6-only host, no IPv6 here)" % (
            mine, theirs)
    problems = []
    want = expected(h)
    if want is None:
        problems.append("no expectation for mxpolicy %s" % mine)
    else:
        if finger.category != want[0]:
            problems.append("expected connection %s" % want[0])
        if finger.tlsa != want[1]:
            problems.append("expected TLSA evidence %s" % want[1])
    if finger.host and finger.host != h["hostname"]:
        problems.append("posttls-finger reported host %s" % finger.host)
    if sni != "?":  # a handshake happened
        base = h.get("tlsaBaseDomain", "")
        want_sni = base if tlsa in ("USABLE", "UNUSABLE") else ""
        if (sni if sni != "-" else "") != want_sni:
            problems.append("SNI %s, expected %s (mxpolicy tlsaBaseDomain=%s)"
                            % (sni, want_sni or "none", base or "(none)"))
    text = "mxpolicy=%s posttls-finger=%s sni=%s" % (mine, theirs, sni)
    if problems:
        return "MISMATCH", text + " [" + "; ".join(problems) + "]"
    return "OK", text


def ipv6_only(h):
    addrs = h.get("addresses", [])
    return bool(addrs) and all(":" in a for a in addrs)


def compare_walk(ans, finger, no_ipv6):
    hosts = ans.get("mxHosts", [])
    if no_ipv6 and hosts:
        hosts = [h for h in hosts if not ipv6_only(h)]
        if not hosts:
            return "SKIP", "posttls-finger=%s:%s (IPv6-only MX hosts, no IPv6 here)" % (
                finger.host or "-", finger.conn)
    decision = short(ans.get("decision", ""), "DECISION_")
    usable = [h for h in hosts if host_state(h)[0] != "UNUSABLE"]
    problems = []
    if usable:
        h = usable[0]
        req, tlsa = host_state(h)
        mine = "%s:%s/%s" % (h["hostname"], req, tlsa)
        want = expected(h)
        want_conn = None
        if want and want[0] == "authenticated":
            mx_secure = ans.get("mxDnssec") == "DNSSEC_STATE_SECURE"
            want_conn = "verified" if mx_secure else "trusted"
        if finger.host != h["hostname"]:
            problems.append("expected host %s" % h["hostname"])
        if want is None:
            problems.append("no expectation for mxpolicy %s/%s" % (req, tlsa))
        elif want_conn and finger.conn != want_conn:
            problems.append("expected %s" % want_conn)
        elif finger.category != want[0]:
            problems.append("expected connection %s" % want[0])
    elif decision == "NO_MAIL":
        # null MX (RFC 7505) or NXDOMAIN: Postfix bounces, no connection
        mine = decision
        if hosts:
            problems.append("NO_MAIL with MX hosts")
        if finger.conn not in ("null-mx", "not-found"):
            problems.append("expected null-mx or not-found")
    elif decision == "TEMPFAIL" and not hosts:
        # the MX lookup itself failed (bogus, SERVFAIL, timeout): defer (G3)
        mine = "%s(MX %s)" % (decision, short(ans.get("mxDnssec", ""), "DNSSEC_STATE_"))
        if finger.conn != "dns-tempfail":
            problems.append("expected dns-tempfail")
    else:
        # every host UNUSABLE: Postfix skips them all and defers (G5/G7)
        mine = "%s(no usable host)" % decision
        if decision != "TEMPFAIL":
            problems.append("mxpolicy has no usable host but decision %s" % decision)
        want = {expected(h)[0] for h in hosts if expected(h)}
        if finger.conn not in want:
            problems.append("expected %s" % " or ".join(sorted(want)) or "?")
    theirs = "%s:%s" % (finger.host or "-", finger.conn)
    text = "mxpolicy=%s posttls-finger=%s" % (mine, theirs)
    if problems:
        return "MISMATCH", text + " [" + "; ".join(problems) + "]"
    return "OK", text


def cmd_compare(args):
    answers = {a["domain"]: a for a in load_answers(args.mxpolicy)}
    counts = {"OK": 0, "MISMATCH": 0, "SKIP": 0}
    hosts_compared = 0
    host_domains = set()
    with open(args.manifest, encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    for kind, domain, host, logfile, sni in rows:
        if kind == "host":
            host_domains.add(domain)
        ans = answers.get(domain)
        finger = None
        if ans is None:
            status, text = "MISMATCH", "mxpolicy gave no answer"
        else:
            finger = Finger(logfile)
            if kind == "host":
                h = next((x for x in ans.get("mxHosts", []) if x["hostname"] == host), None)
                if h is None:
                    status, text = "MISMATCH", "host not in mxpolicy's answer"
                else:
                    status, text = compare_host(ans, h, finger, sni, args.no_ipv6)
                if status != "SKIP":
                    hosts_compared += 1
            else:
                host = "(mx-walk)"
                status, text = compare_walk(ans, finger, args.no_ipv6)
        counts[status] += 1
        print("%s %s %s %s" % (status, domain, host, text), flush=True)
        if finger is not None and (status == "MISMATCH" or args.verbose):
            print("    posttls-finger %s (%s):" % (logfile.rsplit("/", 1)[-1],
                                                 "-v -c -l dane"))
            for l in finger.evidence():
                print("      " + l)
    for domain in args.need_hosts:
        if domain not in host_domains:
            counts["MISMATCH"] += 1
            print("MISMATCH %s - no per-host comparison: mxpolicy returned no MX host "
                  "(has the world zone changed?)" % domain)
    print("posttls-finger conformance: %d hosts compared, %d OK, %d mismatches, %d skipped"
          % (hosts_compared, counts["OK"], counts["MISMATCH"], counts["SKIP"]))
    if counts["MISMATCH"]:
        return 1
    if hosts_compared < args.min_hosts:
        print("FAIL: only %d hosts compared (need >= %d)" % (hosts_compared, args.min_hosts))
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("mxpolicy")
    c = sub.add_parser("compare")
    c.add_argument("mxpolicy")
    c.add_argument("manifest")
    c.add_argument("--no-ipv6", action="store_true")
    c.add_argument("--verbose", action="store_true",
                   help="print posttls-finger's evidence for every run, not only mismatches")
    c.add_argument("--min-hosts", type=int, default=10)
    c.add_argument("--need-hosts", nargs="*", default=[], metavar="DOMAIN",
                   help="domains that must have been compared per host")
    args = ap.parse_args()
    return cmd_plan(args) if args.cmd == "plan" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
