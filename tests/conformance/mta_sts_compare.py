#!/usr/bin/env python3
"""Compare mxpolicy's MTA-STS verdicts with postfix-mta-sts-resolver's.

Used by mta_sts_resolver.sh:

  mta_sts_compare.py EXPECT MXPOLICY_JSONL REF_DIR [EXPECT MXPOLICY_JSONL REF_DIR]...

EXPECT: one line per domain, "DOMAIN|VERDICT|DECISION [HOST=REQ ...]|DIVERGENCE"
(the table in mta_sts_resolver.sh). MXPOLICY_JSONL: `mxpolicy resolve --json`
output. REF_DIR/DOMAIN: the output of `mta-sts-query -v debug DOMAIN`, whose
last line is the printed result, e.g.
    (<STSFetchResult.VALID: 1>, ('id1', {'mx': ['mx.a.test'], 'mode': 'enforce', ...}))

Verdicts, normalised on both sides:
    valid MODE id=ID mx=P1,P2 | none | fetch-error

For each domain:
  * mxpolicy's verdict must equal the expected one, and its decision (and the
    listed hosts' TLS requirements) the expected decision;
  * with no DIVERGENCE entry, the reference's verdict must equal it too -> OK;
  * with a DIVERGENCE entry ("SPEC-ITEM: what the reference does"), the
    reference may differ -> DIVERGES(SPEC Xn, as expected); if it happens to
    agree, the line says OK and notes the stale entry;
  * anything else -> MISMATCH, with both raw verdicts (and mxpolicy's reason).
Exit 0 only when there is no MISMATCH.
"""

import ast
import json
import os
import re
import sys

RESULT_RE = re.compile(r"^\(<STSFetchResult\.(\w+): \d+>, (.*)\)$")


def ours(answer):
    """(verdict, decision, {host: requirement}, reason) from one JSON answer"""
    pol = answer.get("stsPolicy")
    reason = answer.get("reason", "")
    if pol:
        mode = pol.get("mode", "STS_MODE_UNSPECIFIED").replace("STS_MODE_", "").lower()
        verdict = "valid %s id=%s mx=%s" % (mode, pol.get("id", ""),
                                            ",".join(pol.get("mxPatterns", [])))
    elif "policy fetch:" in reason:
        verdict = "fetch-error"
    else:
        verdict = "none"
    decision = answer.get("decision", "").replace("DECISION_", "")
    hosts = {h.get("hostname", ""): h.get("tlsRequirement", "").replace("TLS_REQUIREMENT_", "")
             for h in answer.get("mxHosts", [])}
    return verdict, decision, hosts, reason


def reference(path):
    """(verdict, raw result line) from mta-sts-query's output"""
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        return "missing", str(e)
    for line in reversed(lines):
        m = RESULT_RE.match(line.strip())
        if not m:
            continue
        kind, rest = m.group(1), ast.literal_eval(m.group(2))
        if kind == "VALID":
            pid, pol = rest
            return ("valid %s id=%s mx=%s" % (pol.get("mode"), pid, ",".join(pol.get("mx", []))),
                    line.strip())
        if kind == "NONE":
            return "none", line.strip()
        if kind == "FETCH_ERROR":
            return "fetch-error", line.strip()
        return kind.lower(), line.strip()
    return "no-result", (lines[-1] if lines else "(empty output)")


def fetch_error_detail(path):
    """the reference's logged fetch failure, if any (for the report)"""
    try:
        for line in open(path, encoding="utf-8", errors="replace"):
            if "failed with error:" in line:
                detail = line.split("failed with error:", 1)[1].strip()
                m = re.search(r"certificate verify failed: ([^(]*)", detail)
                return m.group(1).strip() if m else detail
    except OSError:
        pass
    return ""


def compare(expect_file, jsonl, ref_dir):
    answers = {}
    for line in open(jsonl):
        if line.strip():
            a = json.loads(line)
            answers[a.get("domain", "")] = a
    n_ok = n_div = n_bad = 0
    for row in open(expect_file):
        row = row.rstrip("\n")
        if not row:
            continue
        domain, want, want_decision, divergence = row.split("|", 3)
        if domain not in answers:
            print(f"MISMATCH {domain}: no mxpolicy answer")
            n_bad += 1
            continue
        verdict, decision, hosts, reason = ours(answers[domain])
        ref_verdict, ref_raw = reference(os.path.join(ref_dir, domain))
        problems = []
        if verdict != want:
            problems.append(f"mxpolicy verdict is not the expected '{want}'")
        dec, *host_reqs = want_decision.split()
        if decision != dec:
            problems.append(f"mxpolicy decision {decision}, expected {dec}")
        for hr in host_reqs:
            host, req = hr.split("=")
            if hosts.get(host) != req:
                problems.append(f"mxpolicy host {host}: {hosts.get(host, 'absent')}, expected {req}")
        item = divergence.split(":", 1)[0].strip() if divergence else ""
        show = (f"mxpolicy=\"{verdict}\" ({decision}) "
                f"postfix-mta-sts-resolver=\"{ref_verdict}\"")
        detail = fetch_error_detail(os.path.join(ref_dir, domain))
        if ref_verdict == "fetch-error" and detail:
            show += f" [{detail[:100]}]"
        if not problems and ref_verdict == want:
            note = f" (expected divergence SPEC {item} not seen: table entry stale?)" if item else ""
            print(f"OK {domain} {show}{note}")
            n_ok += 1
        elif not problems and item:
            print(f"DIVERGES(SPEC {item}, as expected) {domain} {show}"
                  f" -- {divergence.split(':', 1)[1].strip()}")
            n_div += 1
        else:
            if not problems:
                problems.append("postfix-mta-sts-resolver disagrees and no divergence is documented")
            print(f"MISMATCH {domain} {show}: " + "; ".join(problems))
            print(f"    expected: {want} ({want_decision})")
            print(f"    mxpolicy reason: {reason}")
            print(f"    mta-sts-query: {ref_raw}")
            n_bad += 1
    return n_ok, n_div, n_bad


def main(argv):
    if len(argv) < 4 or (len(argv) - 1) % 3:
        print(__doc__, file=sys.stderr)
        return 2
    tot = [0, 0, 0]
    for i in range(1, len(argv), 3):
        for k, n in enumerate(compare(*argv[i:i + 3])):
            tot[k] += n
    print(f"mta-sts-resolver conformance: {sum(tot)} domains, {tot[0]} OK, "
          f"{tot[1]} expected divergences, {tot[2]} mismatches")
    return 1 if tot[2] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
