#!/usr/bin/env python3
"""Checks what the mxpolicy Helm chart renders (run by chart_test.sh).

Usage: chart_check.py HELM CHART_DIR SOURCE_ROOT

Renders the chart with `helm template` under several value sets and checks
the objects, not the text: kinds, probes (gRPC, on a declared port: the gRPC
port without TLS, the plaintext health port with TLS), the security context
(fsGroup 65532, Secret modes group-readable; the Redis password and HMAC
key Secrets mounted whole, no subPath), the in-memory /tmp emptyDir,
the preStop sleep within terminationGracePeriodSeconds, the headless
Service (ready pods only), the NetworkPolicy (DNS and HTTPS egress to any
destination), value -> flag mappings, that every argument is a flag
mxpolicyd knows (parsed from server/src/app/flags.cc) and that every such
flag has a chart value, values the chart must refuse, NOTES.txt's "Try it"
(TLS form with TLS on), and the Grafana dashboard (valid JSON, every queried
metric one mxpolicyd exports, the hit ratio formula).
Exits 1 listing every failed check.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HELM, CHART, ROOT = sys.argv[1:4]
ALL_FEATURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "all-features-values.yaml")
RELEASE, NAMESPACE = "mxp", "mail"

# The metrics mxpolicyd exports (the contract the dashboard is built on).
METRICS = {
    "mxpolicy_requests_total",
    "mxpolicy_request_duration_seconds",
    "mxpolicy_dns_query_duration_seconds",
    "mxpolicy_sts_fetch_duration_seconds",
    "mxpolicy_cache_entries",
    "mxpolicy_cache_hits_total",
    "mxpolicy_cache_misses_total",
    "mxpolicy_cache_evictions_total",
    "mxpolicy_sts_enforce_evictions_total",
    "mxpolicy_singleflight_joins_total",
    "mxpolicy_refresh_attempts_total",
    "mxpolicy_refresh_failures_total",
    "mxpolicy_cold_resolutions_rejected_total",
    "mxpolicy_dnssec_bogus_total",
    "mxpolicy_upstream_errors_total",
    "mxpolicy_l2_requests_total",
    "mxpolicy_tls_reloads_total",
    "mxpolicy_build_info",
    "mxpolicy_l2_reconnects_total",  # exported by the Redis tier too
}
HISTOGRAMS = {
    "mxpolicy_request_duration_seconds",
    "mxpolicy_dns_query_duration_seconds",
    "mxpolicy_sts_fetch_duration_seconds",
}

failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)
    return ok


def exported_metrics():
    """Metric names that appear as string literals in server/src."""
    names = set()
    for d, _, files in os.walk(os.path.join(ROOT, "server/src")):
        for f in files:
            if f.endswith((".cc", ".h")):
                names |= set(re.findall(r'"(mxpolicy_[a-z0-9_]+)"', open(os.path.join(d, f)).read()))
    return names


def server_flags():
    """Flag names of mxpolicyd's table in flags.cc (the source of truth)."""
    src = open(os.path.join(ROOT, "server/src/app/flags.cc")).read()
    start = src.index("std::vector<Flag> ServerFlags(")
    end = src.index("void PrintHelp(", start)
    names = re.findall(r'^\s*\{"([a-z][a-z0-9-]*)",', src[start:end], re.M)
    if len(names) < 10:
        sys.exit(f"chart_check: parsed only {names} from flags.cc")
    return set(names)


FLAGS = server_flags()


def helm_template(*args, expect_fail=False):
    cmd = [HELM, "template", RELEASE, CHART, "--namespace", NAMESPACE, *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if expect_fail:
        return r
    if r.returncode != 0:
        failures.append(f"helm template {' '.join(args)} failed: {r.stderr.strip()}")
        return None
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind, what):
    found = by_kind(docs, kind)
    check(len(found) == 1, f"{what}: want exactly one {kind}, got {len(found)}")
    return found[0] if found else None


def container(docs, what):
    dep = one(docs, "Deployment", what)
    if dep is None:
        return None, None
    pod = dep["spec"]["template"]["spec"]
    c = [c for c in pod["containers"] if c["name"] == "mxpolicyd"]
    check(len(c) == 1, f"{what}: no container mxpolicyd")
    return pod, (c[0] if c else None)


def arg_map(c):
    """--name=value arguments as a dict name -> value (all must be that form)."""
    out = {}
    for a in c.get("args", []):
        m = re.fullmatch(r"--([a-z0-9-]+)=(.*)", a, re.S)
        if not check(m is not None, f"argument {a!r} is not --flag=value"):
            continue
        check(m.group(1) not in out, f"flag --{m.group(1)} given twice")
        out[m.group(1)] = m.group(2)
    return out


def duration_seconds(text):
    """Seconds of a duration made of whole h/m/s parts (1m30s), or None."""
    parts = re.findall(r"(\d+)(h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def deployment_invariants(docs, what, tls, host="0.0.0.0", prestop=5):
    """Checks that hold for every rendering (host: listenHost; prestop:
    preStopSleepSeconds)."""
    pod, c = container(docs, what)
    if c is None:
        return None, None, {}
    args = arg_map(c)
    for name in args:
        check(name in FLAGS, f"{what}: --{name} is not an mxpolicyd flag (flags.cc)")

    # Ports and probes.
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check("grpc" in ports, f"{what}: no container port grpc")
    check(args.get("listen") == f"{host}:{ports.get('grpc')}",
          f"{what}: --listen {args.get('listen')!r} is not {host}:<grpc port>")
    if "metrics" in ports:
        check(args.get("metrics-listen") == f"{host}:{ports['metrics']}",
              f"{what}: --metrics-listen does not match {host}:<metrics port>")
    want_port = ports.get("health") if tls else ports.get("grpc")
    if tls:
        check("health" in ports, f"{what}: TLS on but no container port health")
        check(ports.get("health") != ports.get("grpc"), f"{what}: health port == grpc port")
        check(args.get("health-listen") == f"{host}:{ports.get('health')}",
              f"{what}: TLS on but --health-listen={host}:<health port> missing")
        check("tls-cert" in args and "tls-key" in args, f"{what}: TLS on but no --tls-cert/--tls-key")
    else:
        check("health" not in ports, f"{what}: TLS off but a health port")
        check("health-listen" not in args, f"{what}: TLS off but --health-listen")
        check("tls-cert" not in args, f"{what}: TLS off but --tls-cert")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if not check(p is not None, f"{what}: no {probe}"):
            continue
        handlers = {"grpc", "httpGet", "tcpSocket", "exec"} & set(p)
        check(handlers == {"grpc"}, f"{what}: {probe} is {sorted(handlers)}, want grpc only")
        port = (p.get("grpc") or {}).get("port")
        check(port in ports.values(), f"{what}: {probe} port {port} is not a container port")
        check(port == want_port,
              f"{what}: {probe} port {port}, want {'health' if tls else 'grpc'} port {want_port}")

    # Security context: container-level, falling back to the pod's.
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}

    def eff(key):
        return csc.get(key, psc.get(key))
    check(eff("runAsNonRoot") is True, f"{what}: runAsNonRoot is not true")
    check(eff("runAsUser") == 65532, f"{what}: runAsUser is not 65532")
    check(eff("runAsGroup") == 65532, f"{what}: runAsGroup is not 65532")
    check(csc.get("readOnlyRootFilesystem") is True, f"{what}: readOnlyRootFilesystem is not true")
    check(csc.get("allowPrivilegeEscalation") is False, f"{what}: allowPrivilegeEscalation is not false")
    check(csc.get("privileged") in (None, False), f"{what}: privileged")
    check("ALL" in ((csc.get("capabilities") or {}).get("drop") or []), f"{what}: capabilities do not drop ALL")
    check(not (csc.get("capabilities") or {}).get("add"), f"{what}: capabilities added")
    check((eff("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{what}: seccompProfile is not RuntimeDefault")
    check(psc.get("runAsNonRoot") is True, f"{what}: pod runAsNonRoot is not true")
    # Mounted Secret files belong to group fsGroup: 65532 lets uid 65532
    # (in group 65532) read the 0440 TLS key.
    check(psc.get("fsGroup") == 65532, f"{what}: pod fsGroup is {psc.get('fsGroup')!r}, want 65532")

    # /tmp: an emptyDir, the only writable path; TMPDIR points at it.
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = c.get("volumeMounts", [])
    tmp = [m for m in mounts if m["mountPath"] == "/tmp"]
    check(len(tmp) == 1 and "emptyDir" in vols.get(tmp[0]["name"], {}),
          f"{what}: /tmp is not an emptyDir mount")
    if len(tmp) == 1:
        # In memory: the TLS key copies must never touch the node's disk.
        check(((vols.get(tmp[0]["name"], {}).get("emptyDir")) or {}).get("medium") == "Memory",
              f"{what}: the /tmp emptyDir is not medium: Memory")
    for v in vols.values():
        if "secret" in v:
            mode = v["secret"].get("defaultMode", 0o644)
            check(mode & 0o040 != 0,
                  f"{what}: Secret volume {v['name']} defaultMode {oct(mode)} lacks group read (uid 65532 reads via fsGroup)")
            check(mode & 0o007 == 0, f"{what}: Secret volume {v['name']} defaultMode {oct(mode)} is world-accessible")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("TMPDIR", {}).get("value") == "/tmp", f"{what}: TMPDIR is not /tmp")
    for m in mounts:
        check("subPath" not in m and "subPathExpr" not in m,
              f"{what}: mount {m['mountPath']} uses subPath (Secret updates would not propagate)")
        check(m["name"] in vols, f"{what}: mount {m['name']} has no volume")
        if m["mountPath"] != "/tmp":
            check(m.get("readOnly") is True, f"{what}: mount {m['mountPath']} is writable")
    # Every file flag points into a mounted volume.
    for flag in ("tls-cert", "tls-key", "tls-client-ca", "unbound-config",
                 *(f[0] for f in REDIS_SECRET_FILES.values())):
        if flag in args:
            check(any(args[flag].startswith(m["mountPath"].rstrip("/") + "/") for m in mounts),
                  f"{what}: --{flag}={args[flag]} is not under a mounted volume")
    # $(VAR) in args needs the env var.
    for v in re.findall(r"\$\(([A-Z_]+)\)", " ".join(c.get("args", []))):
        check(v in env, f"{what}: $({v}) in args but no env {v}")

    res = c.get("resources") or {}
    check(bool(res.get("requests")) and bool(res.get("limits")), f"{what}: resources need requests and limits")
    check(bool((res.get("requests") or {}).get("cpu")), f"{what}: no CPU request (the HPA needs one)")

    # preStop sleep, then SIGTERM and --shutdown-grace: all within
    # terminationGracePeriodSeconds.
    hook = ((c.get("lifecycle") or {}).get("preStop") or {})
    if prestop:
        check(hook.get("exec", {}).get("command") == ["/bin/sleep", str(prestop)],
              f"{what}: preStop is {hook!r}, want exec /bin/sleep {prestop}")
    else:
        check(not hook, f"{what}: preStopSleepSeconds=0 but a preStop hook {hook!r}")
    grace = args.get("shutdown-grace", "10s")
    secs = duration_seconds(grace)
    if check(secs is not None, f"{what}: cannot read --shutdown-grace={grace}"):
        check(pod.get("terminationGracePeriodSeconds", 30) > prestop + secs,
              f"{what}: terminationGracePeriodSeconds does not exceed preStop {prestop}s + --shutdown-grace {secs}s")
    check(bool(((pod.get("affinity") or {}).get("podAntiAffinity"))), f"{what}: no pod anti-affinity")
    check(pod.get("automountServiceAccountToken") is False, f"{what}: service account token mounted")

    # Services select the pods and target declared ports.
    labels = pod_labels(docs)
    for svc in by_kind(docs, "Service"):
        sel = svc["spec"].get("selector") or {}
        check(sel and all(labels.get(k) == v for k, v in sel.items()),
              f"{what}: Service {svc['metadata']['name']} does not select the pods")
        for p in svc["spec"]["ports"]:
            check(p.get("targetPort") in ports or p.get("targetPort") in ports.values(),
                  f"{what}: Service {svc['metadata']['name']} targets undeclared port {p.get('targetPort')}")
        if svc["spec"].get("clusterIP") == "None":
            # Only ready pods in the DNS answer.
            check(svc["spec"].get("publishNotReadyAddresses") is not True,
                  f"{what}: headless Service publishes not-ready addresses")

    # DNS (recursion from the root servers) and HTTPS (policy fetches from
    # any domain's web servers) need any destination: no "to".
    https = int(args.get("sts-https-port", 443))
    for np in by_kind(docs, "NetworkPolicy"):
        for r in np["spec"].get("egress", []):
            rports = {(p.get("port"), p.get("protocol", "TCP")) for p in r.get("ports", [])}
            if rports & {(53, "UDP"), (53, "TCP"), (https, "TCP")}:
                check(not r.get("to"), f"{what}: NetworkPolicy egress {sorted(rports)} has a \"to\": {r.get('to')}")
    return pod, c, args


def pod_labels(docs):
    dep = by_kind(docs, "Deployment")
    return dep[0]["spec"]["template"]["metadata"]["labels"] if dep else {}


def selects_pods(docs, selector):
    labels = pod_labels(docs)
    ml = (selector or {}).get("matchLabels") or {}
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


# redis.<value> {name, key} -> (flag, mount directory, what the file holds,
# default key): Secret files of the Redis tier, all checked alike.
REDIS_SECRET_FILES = {
    "passwordSecret": ("redis-password-file", "/etc/mxpolicy/redis-password", "the Redis password", "password"),
    "hmacKeySecret": ("redis-hmac-key-file", "/etc/mxpolicy/redis-hmac-key", "the Redis HMAC key", "hmac-key"),
}


def redis_secret_file(pod, c, args, what, value, secret, key):
    """--<flag> of redis.<value> reads <key> of Secret <secret>, mounted as
    a whole directory (no subPath, read-only, group-readable mode) and
    never put into the environment."""
    flag, mdir, holds, _ = REDIS_SECRET_FILES[value]
    want = f"{mdir}/{key}"
    check(args.get(flag) == want, f"{what}: --{flag}={args.get(flag)!r}, want {want!r}")
    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"].rstrip("/") == mdir]
    if not check(len(mounts) == 1, f"{what}: {holds}: {len(mounts)} mounts at {mdir}, want one"):
        return
    m = mounts[0]
    check("subPath" not in m and "subPathExpr" not in m,
          f"{what}: {mdir} mounted with subPath (a rotated Secret would not reach the pod)")
    check(m.get("readOnly") is True, f"{what}: {mdir} mount is writable")
    vols = [v for v in pod.get("volumes", []) if v["name"] == m["name"]]
    if not check(len(vols) == 1 and "secret" in vols[0], f"{what}: {mdir} is not a Secret volume"):
        return
    sv = vols[0]["secret"]
    check(sv.get("secretName") == secret, f"{what}: {mdir} is Secret {sv.get('secretName')!r}, want {secret!r}")
    mode = sv.get("defaultMode")
    check(mode is not None and mode & 0o040 != 0 and mode & 0o007 == 0,
          f"{what}: Secret {secret} defaultMode {mode if mode is None else oct(mode)}, want group-readable (0440)")
    check("items" not in sv or any(i.get("key") == key for i in sv["items"]),
          f"{what}: Secret {secret} volume does not project key {key}")
    check(not any(((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret
                  for e in c.get("env", [])),
          f"{what}: Secret {secret} ({holds}) must not go through the environment")


def redis_secret_files(pod, c, args, what, want):
    """want: redis.<value> -> (secret, key) for the set ones; the others
    render neither flag nor mount."""
    for value, (flag, mdir, holds, _) in REDIS_SECRET_FILES.items():
        if value in want:
            redis_secret_file(pod, c, args, what, value, *want[value])
        else:
            check(flag not in args, f"{what}: --{flag} without redis.{value}")
            check(not [m for m in c.get("volumeMounts", []) if m["mountPath"].startswith(mdir)],
                  f"{what}: {holds} mounted without redis.{value}")


def kebab(key):
    return re.sub(r"[A-Z]", lambda m: "-" + m.group(0).lower(), key)


# --- default values -------------------------------------------------------
docs = helm_template()
if docs is not None:
    what = "default values"
    _, c, args = deployment_invariants(docs, what, tls=False)
    kinds = sorted(d["kind"] for d in docs)
    for k in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"):
        check(k in kinds, f"{what}: no {k}")
    check("ServiceMonitor" not in kinds, f"{what}: ServiceMonitor must be off by default")
    check("ConfigMap" not in kinds, f"{what}: no ConfigMap expected by default (dashboard/unbound are opt-in)")
    svcs = by_kind(docs, "Service")
    check(len(svcs) == 2, f"{what}: want 2 Services, got {len(svcs)}")
    headless = [s for s in svcs if s["spec"].get("clusterIP") == "None"]
    check(len(headless) == 1 and headless[0]["metadata"]["name"] == f"{RELEASE}-mxpolicy-headless",
          f"{what}: no headless Service {RELEASE}-mxpolicy-headless")
    main = [s for s in svcs if s["spec"].get("clusterIP") != "None"]
    if check(len(main) == 1, f"{what}: no ClusterIP Service"):
        check(main[0]["spec"].get("type") == "ClusterIP", f"{what}: main Service is not ClusterIP")
        names = {p["name"]: p["port"] for p in main[0]["spec"]["ports"]}
        check(names == {"grpc": 8460, "metrics": 9464}, f"{what}: main Service ports {names}")
    if headless:
        check([p["port"] for p in headless[0]["spec"]["ports"]] == [8460], f"{what}: headless port")
    check(args.get("listen") == "0.0.0.0:8460", f"{what}: --listen")
    check(args.get("metrics-listen") == "0.0.0.0:9464", f"{what}: --metrics-listen")
    check(args.get("log-format") == "json", f"{what}: --log-format=json by default")
    hpa = one(docs, "HorizontalPodAutoscaler", what)
    if hpa:
        check(hpa["apiVersion"] == "autoscaling/v2", f"{what}: HPA apiVersion")
        check(hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "name": f"{RELEASE}-mxpolicy"}, f"{what}: HPA target")
        check([m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"], f"{what}: HPA on CPU")
        check(hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], f"{what}: HPA min > max")
        dep = one(docs, "Deployment", what)
        check(dep is None or "replicas" not in dep["spec"], f"{what}: replicas set although the HPA owns them")
    pdb = one(docs, "PodDisruptionBudget", what)
    if pdb:
        check(pdb["apiVersion"] == "policy/v1", f"{what}: PDB apiVersion")
        check(("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"]), f"{what}: PDB needs one of min/max")
        check(selects_pods(docs, pdb["spec"]["selector"]), f"{what}: PDB does not select the pods")
    np = one(docs, "NetworkPolicy", what)
    if np:
        check(selects_pods(docs, np["spec"]["podSelector"]), f"{what}: NetworkPolicy does not select the pods")
        eg = [(p.get("port"), p.get("protocol")) for r in np["spec"]["egress"] for p in r.get("ports", [])]
        for want in ((53, "UDP"), (53, "TCP"), (443, "TCP")):
            check(want in eg, f"{what}: NetworkPolicy egress lacks {want}")
        check(6379 not in [p for p, _ in eg], f"{what}: Redis egress without Redis")
        ing = np["spec"]["ingress"]
        check(any(8460 in [p.get("port") for p in r.get("ports", [])] for r in ing), f"{what}: no ingress to grpc")
        check(len(ing) == 2, f"{what}: want 2 ingress rules (grpc, metrics; no probe rule), got {len(ing)}")
        met = [r for r in ing if 9464 in [p.get("port") for p in r.get("ports", [])]]
        check(len(met) == 1 and all("namespaceSelector" in f for f in met[0].get("from", [{}])),
              f"{what}: metrics ingress not limited to a namespace selector")

# --- all features ---------------------------------------------------------
docs = helm_template("-f", ALL_FEATURES)
if docs is not None:
    what = "all-features values"
    values = yaml.safe_load(open(ALL_FEATURES))
    pod, c, args = deployment_invariants(docs, what, tls=True, host=values["listenHost"],
                                         prestop=values["preStopSleepSeconds"])
    check(pod.get("imagePullSecrets") == [{"name": "regcred"}, {"name": "mirror-cred"}],
          f"{what}: imagePullSecrets {pod.get('imagePullSecrets')} from [name, {{name: ...}}]")
    kinds = [d["kind"] for d in docs]
    for k in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
              "ServiceMonitor", "ServiceAccount"):
        check(kinds.count(k) == 1, f"{what}: want one {k}, got {kinds.count(k)}")
    check(kinds.count("Service") == 2, f"{what}: want 2 Services")
    check(kinds.count("ConfigMap") == 2, f"{what}: want 2 ConfigMaps (unbound, dashboard)")

    # Every mxpolicyd flag is reachable from a chart value.
    missing = FLAGS - set(args)
    check(not missing, f"{what}: mxpolicyd flags without a chart value: {sorted('--' + f for f in missing)}")
    # Every server.<key> renders --<kebab key>=<value>.
    for key, val in values["server"].items():
        flag = kebab(key)
        check(flag in FLAGS, f"values server.{key}: --{flag} is not an mxpolicyd flag")
        want = str(val).lower() if isinstance(val, bool) else str(val)
        check(args.get(flag) == want, f"server.{key}={val!r} renders --{flag}={args.get(flag)!r}, want {want!r}")
    check(args.get("tls-cert") == "/etc/mxpolicy/tls/tls.crt", f"{what}: --tls-cert")
    check(args.get("tls-key") == "/etc/mxpolicy/tls/tls.key", f"{what}: --tls-key")
    check(args.get("tls-client-ca") == "/etc/mxpolicy/client-ca/ca.crt", f"{what}: --tls-client-ca")
    check(args.get("admin-identity") == "admin.mail.example.org,spiffe://example.org/ops", f"{what}: --admin-identity")
    check(args.get("tls-check-interval") == "30s", f"{what}: --tls-check-interval")
    check(args.get("redis") == "$(REDIS_URL)", f"{what}: --redis=$(REDIS_URL)")
    check(args.get("redis-timeout") == "80ms", f"{what}: --redis-timeout")
    redis_secret_files(pod, c, args, what, {
        value: (values["redis"][value]["name"], values["redis"][value]["key"]) for value in REDIS_SECRET_FILES})
    check(args.get("redis-password-file") == "/etc/mxpolicy/redis-password/redis-password", f"{what}: --redis-password-file")
    check(args.get("redis-hmac-key-file") == "/etc/mxpolicy/redis-hmac-key/mac-key", f"{what}: --redis-hmac-key-file")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("REDIS_URL", {}).get("valueFrom", {}).get("secretKeyRef") == {"name": "mxpolicy-redis", "key": "url"},
          f"{what}: REDIS_URL not from Secret mxpolicy-redis/url")
    vols = {v["name"]: v for v in pod["volumes"]}
    secrets = {v["secret"]["secretName"] for v in vols.values() if "secret" in v}
    check(secrets == {"mxpolicy-tls", "mxpolicy-client-ca", "mxpolicy-redis-auth", "mxpolicy-redis-hmac"},
          f"{what}: secret volumes {secrets}")
    mounted = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    for v in vols.values():
        if "secret" in v:
            check(v["name"] in mounted, f"{what}: secret {v['secret']['secretName']} not mounted")
    # The unbound ConfigMap is what --unbound-config reads.
    ucm = [d for d in by_kind(docs, "ConfigMap") if "unbound.conf" in d.get("data", {})]
    if check(len(ucm) == 1, f"{what}: no unbound ConfigMap"):
        check(ucm[0]["data"]["unbound.conf"].strip() == values["unbound"]["config"].strip(), f"{what}: unbound.conf content")
        uvol = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == ucm[0]["metadata"]["name"]]
        check(len(uvol) == 1 and args.get("unbound-config") == mounted.get(uvol[0], "?") + "/unbound.conf",
              f"{what}: --unbound-config does not point at the mounted ConfigMap")
    # Dashboard ConfigMap carries the dashboard file.
    dcm = [d for d in by_kind(docs, "ConfigMap") if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if check(len(dcm) == 1, f"{what}: no ConfigMap labelled grafana_dashboard: \"1\""):
        data = list(dcm[0]["data"].values())
        with open(os.path.join(CHART, "dashboards/mxpolicy.json")) as f:
            check(len(data) == 1 and json.loads(data[0]) == json.load(f), f"{what}: dashboard ConfigMap != dashboards/mxpolicy.json")
    sm = one(docs, "ServiceMonitor", what)
    if sm:
        check(sm["apiVersion"] == "monitoring.coreos.com/v1", f"{what}: ServiceMonitor apiVersion")
        check([e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"], f"{what}: ServiceMonitor port")
        check(sm["metadata"]["labels"].get("release") == "prometheus", f"{what}: serviceMonitor.labels")
        sel = sm["spec"]["selector"]
        hits = [s for s in by_kind(docs, "Service")
                if all(s["metadata"]["labels"].get(k) == v for k, v in sel.get("matchLabels", {}).items())
                and all(e["key"] not in s["metadata"]["labels"] for e in sel.get("matchExpressions", [])
                        if e["operator"] == "DoesNotExist")]
        check(len(hits) == 1 and hits[0]["spec"].get("clusterIP") != "None"
              and "metrics" in [p["name"] for p in hits[0]["spec"]["ports"]],
              f"{what}: ServiceMonitor must select exactly the main Service (with a metrics port)")
    np = one(docs, "NetworkPolicy", what)
    if np:
        eg = np["spec"]["egress"]
        ports = [(p.get("port"), p.get("protocol")) for r in eg for p in r.get("ports", [])]
        check((6380, "TCP") in ports, f"{what}: NetworkPolicy lacks Redis egress on redis.port")
        check((8443, "TCP") in ports and (443, "TCP") not in ports,
              f"{what}: HTTPS egress must follow server.stsHttpsPort")
        grpc_rule = [r for r in np["spec"]["ingress"] if 8460 in [p.get("port") for p in r.get("ports", [])]]
        check(len(grpc_rule) == 1 and grpc_rule[0].get("from") == values["networkPolicy"]["grpcFrom"],
              f"{what}: grpc ingress is not from networkPolicy.grpcFrom")
        probe_rule = [r for r in np["spec"]["ingress"] if 8462 in [p.get("port") for p in r.get("ports", [])]]
        check(len(probe_rule) == 1 and probe_rule[0].get("from") == [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
              f"{what}: no ingress to the health (probe) port from networkPolicy.probeCIDR")
    hpa = one(docs, "HorizontalPodAutoscaler", what)
    check(hpa and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12), f"{what}: HPA min/max")
    pdb = one(docs, "PodDisruptionBudget", what)
    check(pdb and pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"], f"{what}: PDB maxUnavailable")
    aff = pod["affinity"]["podAntiAffinity"]
    check("requiredDuringSchedulingIgnoredDuringExecution" in aff, f"{what}: podAntiAffinity.type=hard")
    tsc = pod.get("topologySpreadConstraints") or []
    check(len(tsc) == 1 and selects_pods(docs, tsc[0]["labelSelector"]), f"{what}: topologySpreadConstraints")
    check(pod["terminationGracePeriodSeconds"] == 45, f"{what}: terminationGracePeriodSeconds")

# --- single values -> flags -----------------------------------------------
CASES = [
    (["--set", "server.cacheEntries=123"], {"cache-entries": "123"}),
    (["--set", "server.cacheEntries=100000000"], {"cache-entries": "100000000"}),
    (["--set", "server.maxTtl=2h"], {"max-ttl": "2h"}),
    (["--set", "server.dnsQnameMinimisation=true"], {"dns-qname-minimisation": "true"}),
    (["--set", "server.cacheShards=0"], {"cache-shards": "0"}),
    (["--set", "server.stsDiscoveryFailure=tempfail"], {"sts-discovery-failure": "tempfail"}),
    (["--set", "server.logLevel=debug,server.logFormat=text"], {"log-level": "debug", "log-format": "text"}),
    (["--set", "server.shutdownGrace=20s"], {"shutdown-grace": "20s"}),
    (["--set", "server.shutdownGrace=1m30s,terminationGracePeriodSeconds=96"], {"shutdown-grace": "1m30s"}),
    (["--set", "server.maxConnectionAge=2m"], {"max-connection-age": "2m"}),
    (["--set", "server.maxTtl=1h30m,server.dnsTimeout=1500ms"], {"max-ttl": "1h30m", "dns-timeout": "1500ms"}),
    (["--set", "preStopSleepSeconds=0"], {}),
    (["--set", "preStopSleepSeconds=14"], {}),
    (["--set-string", "listenHost=[::]"], {"listen": "[::]:8460", "metrics-listen": "[::]:9464"}),
    (["--set-string", "listenHost=[::]", "--set", "tls.enabled=true,tls.secretName=s"],
     {"listen": "[::]:8460", "health-listen": "[::]:8462"}),
    (["--set", "ports.grpc=9000,ports.metrics=9100"], {"listen": "0.0.0.0:9000", "metrics-listen": "0.0.0.0:9100"}),
    (["--set", "metrics.enabled=false"], {"metrics-listen": ""}),
    (["--set", "redis.url=redis://redis.mail.svc:6379/2,redis.timeout=75ms"],
     {"redis": "redis://redis.mail.svc:6379/2", "redis-timeout": "75ms"}),
    (["--set", "redis.urlSecret.name=r,redis.urlSecret.key=k"], {"redis": "$(REDIS_URL)"}),
    (["--set", "redis.url=redis://mxpolicy@redis.mail.svc:6379/0,redis.passwordSecret.name=rp"],
     {"redis": "redis://mxpolicy@redis.mail.svc:6379/0",
      "redis-password-file": "/etc/mxpolicy/redis-password/password"}),
    (["--set", "redis.urlSecret.name=r,redis.urlSecret.key=k,redis.passwordSecret.name=rp,redis.passwordSecret.key=pw"],
     {"redis": "$(REDIS_URL)", "redis-password-file": "/etc/mxpolicy/redis-password/pw"}),
    (["--set", "redis.url=redis://redis.mail.svc:6379/0,redis.hmacKeySecret.name=hk"],
     {"redis": "redis://redis.mail.svc:6379/0",
      "redis-hmac-key-file": "/etc/mxpolicy/redis-hmac-key/hmac-key"}),
    (["--set", "redis.urlSecret.name=r,redis.urlSecret.key=k,redis.hmacKeySecret.name=hk,redis.hmacKeySecret.key=mac.v2"],
     {"redis": "$(REDIS_URL)", "redis-hmac-key-file": "/etc/mxpolicy/redis-hmac-key/mac.v2"}),
    # One Secret holding both: two mounts of it, one per file.
    (["--set", "redis.url=redis://r,redis.passwordSecret.name=rs,redis.hmacKeySecret.name=rs"],
     {"redis-password-file": "/etc/mxpolicy/redis-password/password",
      "redis-hmac-key-file": "/etc/mxpolicy/redis-hmac-key/hmac-key"}),
    (["--set", "unbound.config=server:"], {"unbound-config": "/etc/mxpolicy/unbound/unbound.conf"}),
    (["--set", "tls.enabled=true,tls.secretName=s"],
     {"tls-cert": "/etc/mxpolicy/tls/tls.crt", "tls-key": "/etc/mxpolicy/tls/tls.key",
      "health-listen": "0.0.0.0:8462"}),
    (["--set", "tls.enabled=true,tls.secretName=s,ports.health=7000"], {"health-listen": "0.0.0.0:7000"}),
    (["--set", "tls.enabled=true,tls.secretName=s,tls.clientCA.secretName=ca,tls.clientCA.key=bundle.pem",
      "--set-json", 'tls.adminIdentities=["a.example","b.example"]'],
     {"tls-client-ca": "/etc/mxpolicy/client-ca/bundle.pem", "admin-identity": "a.example,b.example"}),
    (["--set-json", 'extraArgs=["--dns-timeout=1s"]'], {"dns-timeout": "1s"}),
]
for set_args, want in CASES:
    what = " ".join(set_args)
    docs = helm_template(*set_args)
    if docs is None:
        continue
    tls = "tls.enabled=true" in what
    m = re.search(r"preStopSleepSeconds=(\d+)", what)
    host = "[::]" if "listenHost=[::]" in what else "0.0.0.0"
    pod, c, args = deployment_invariants(docs, what, tls=tls, host=host, prestop=int(m.group(1)) if m else 5)
    for flag, value in want.items():
        check(args.get(flag) == value, f"{what}: --{flag}={args.get(flag)!r}, want {value!r}")
    if "metrics.enabled=false" in what:
        check("metrics" not in [p["name"] for p in c["ports"]], f"{what}: metrics port still declared")
    if "redis.url=" in what:
        np = one(docs, "NetworkPolicy", what)
        check(np and 6379 in [p.get("port") for r in np["spec"]["egress"] for p in r.get("ports", [])],
              f"{what}: no Redis egress")
    files = {}
    for value, (_, _, _, default_key) in REDIS_SECRET_FILES.items():
        name = re.search(rf"redis\.{value}\.name=([^,]+)", what)
        key = re.search(rf"redis\.{value}\.key=([^,]+)", what)
        if name:
            files[value] = (name.group(1), key.group(1) if key else default_key)
    redis_secret_files(pod, c, args, what, files)
    if "redis.urlSecret" in what:
        env = {e["name"]: e for e in c.get("env", [])}
        check(env.get("REDIS_URL", {}).get("valueFrom", {}).get("secretKeyRef") == {"name": "r", "key": "k"},
              f"{what}: REDIS_URL secretKeyRef")

# redis.port follows the port in redis.url; redis.port when the URL has none.
for url, port in (("redis://:pw@redis.mail.svc:6380/2", 6380), ("redis://redis.mail.svc/2", 6379),
                  ("redis://[fd00::7]:6391", 6391)):
    docs = helm_template("--set", f"redis.url={url}")
    np = docs and one(docs, "NetworkPolicy", url)
    if np:
        rp = [p.get("port") for r in np["spec"]["egress"] for p in r.get("ports", []) if p.get("port") not in (53, 443)]
        check(rp == [port], f"redis.url={url}: Redis egress ports {rp}, want [{port}]")

# imagePullSecrets: names or {name: ...}.
for form in ('["a","b"]', '[{"name":"a"},{"name":"b"}]'):
    docs = helm_template("--set-json", f"imagePullSecrets={form}")
    pod = docs and container(docs, form)[0]
    check(pod and pod.get("imagePullSecrets") == [{"name": "a"}, {"name": "b"}],
          f"imagePullSecrets={form}: rendered {pod and pod.get('imagePullSecrets')}")

# A PDB that leaves room for a disruption is accepted.
for set_args in (["--set", "autoscaling.enabled=false,replicaCount=3,podDisruptionBudget.minAvailable=2"],
                 ["--set", "autoscaling.minReplicas=3,podDisruptionBudget.minAvailable=2"],
                 ["--set", "podDisruptionBudget.minAvailable=50%"]):
    docs = helm_template(*set_args)
    pdb = docs and one(docs, "PodDisruptionBudget", " ".join(set_args))
    check(pdb and str(pdb["spec"].get("minAvailable")) == set_args[1].rsplit("=", 1)[1],
          f"{' '.join(set_args)}: PDB minAvailable not rendered")

docs = helm_template("--set", "autoscaling.enabled=false,replicaCount=5")
if docs is not None:
    check(not by_kind(docs, "HorizontalPodAutoscaler"), "autoscaling.enabled=false: HPA rendered")
    dep = one(docs, "Deployment", "replicaCount")
    check(dep and dep["spec"].get("replicas") == 5, "replicaCount=5 not rendered")

# --- values the chart must refuse -----------------------------------------
REFUSED = [
    (["--set", "server.cachEntries=1"], "server.cachEntries"),
    (["--set", "tls.enabled=true"], "tls.secretName"),
    (["--set", "tls.clientCA.secretName=ca"], "tls.enabled"),
    (["--set", "tls.enabled=true,tls.secretName=s", "--set-json", 'tls.adminIdentities=["a"]'], "clientCA"),
    (["--set", "redis.url=redis://r,redis.urlSecret.name=s"], "not both"),
    (["--set", "terminationGracePeriodSeconds=10"], "terminationGracePeriodSeconds"),
    (["--set", "server.shutdownGrace=2m"], "terminationGracePeriodSeconds"),
    (["--set", "server.shutdownGrace=25s"], "preStopSleepSeconds"),  # 5 + 25 = 30
    (["--set", "preStopSleepSeconds=20"], "terminationGracePeriodSeconds"),  # 20 + 10 = 30
    (["--set", "server.shutdownGrace=1m30s,terminationGracePeriodSeconds=95"], "terminationGracePeriodSeconds"),
    (["--set", "server.shutdownGrace=500ms"], "server.shutdownGrace"),
    (["--set", "server.shutdownGrace=1.5s"], "server.shutdownGrace"),
    (["--set", "server.shutdownGrace=10s5"], "server.shutdownGrace"),
    (["--set", "server.maxTtl=3600"], "server.maxTtl"),
    (["--set", "server.maxConnectionAge=5"], "server.maxConnectionAge"),
    (["--set", "server.dnsTimeout=5 s"], "server.dnsTimeout"),
    (["--set", "tls.enabled=true,tls.secretName=s,tls.checkInterval=60"], "tls.checkInterval"),
    (["--set", "redis.url=redis://r,redis.timeout=50"], "redis.timeout"),
    (["--set", "redis.passwordSecret.name=rp"], "redis.url or redis.urlSecret"),
    (["--set", "redis.passwordSecret.name=rp,redis.timeout=80ms"], "redis.url or redis.urlSecret"),
    (["--set", "redis.url=redis://r,redis.passwordSecret.name=rp,redis.passwordSecret.key=a/b"],
     "redis.passwordSecret.key"),
    (["--set", "redis.url=redis://r,redis.passwordSecret.name=rp,redis.passwordSecret.key="],
     "redis.passwordSecret.key"),
    (["--set", "redis.hmacKeySecret.name=hk"], "redis.url or redis.urlSecret"),
    (["--set", "redis.hmacKeySecret.name=hk,redis.passwordSecret.name=rp"], "redis.url or redis.urlSecret"),
    (["--set", "redis.url=redis://r,redis.hmacKeySecret.name=hk,redis.hmacKeySecret.key=../k"],
     "redis.hmacKeySecret.key"),
    (["--set", "redis.urlSecret.name=r,redis.hmacKeySecret.name=hk,redis.hmacKeySecret.key="],
     "redis.hmacKeySecret.key"),
    (["--set", "podDisruptionBudget.minAvailable=2"], "autoscaling.minReplicas"),
    (["--set", "autoscaling.enabled=false,replicaCount=2,podDisruptionBudget.minAvailable=2"], "replicaCount"),
    (["--set", "autoscaling.enabled=false,replicaCount=1"], "replicaCount"),
    (["--set", "listenHost=::"], "listenHost"),
    (["--set", "listenHost=0.0.0.0:1"], "listenHost"),
    (["--set", "podDisruptionBudget.maxUnavailable=1"], "not both"),
    (["--set", "podAntiAffinity.type=sometimes"], "podAntiAffinity.type"),
]
for set_args, msg in REFUSED:
    r = helm_template(*set_args, expect_fail=True)
    check(r.returncode != 0 and msg in r.stderr,
          f"{' '.join(set_args)}: want a refusal mentioning {msg!r}, got rc={r.returncode} {r.stderr.strip()[:200]}")

# --- NOTES.txt ------------------------------------------------------------
# `helm template` does not render NOTES.txt: a copy of the chart wraps it in
# a template that renders it into a ConfigMap-like document.
def notes(*args):
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "chart")
        shutil.copytree(CHART, copy)
        src = open(os.path.join(copy, "templates/NOTES.txt")).read()
        with open(os.path.join(copy, "templates/_notes_check.tpl"), "w") as f:
            f.write('{{- define "notes.check" }}' + src + "{{ end }}")
        with open(os.path.join(copy, "templates/notes-check.yaml"), "w") as f:
            f.write('kind: NotesCheck\nnotes: {{ include "notes.check" . | toJson }}\n')
        r = subprocess.run([HELM, "template", RELEASE, copy, "--namespace", NAMESPACE,
                            "--show-only", "templates/notes-check.yaml", *args], capture_output=True, text=True)
    if not check(r.returncode == 0, f"NOTES.txt {' '.join(args)}: {r.stderr.strip()[:200]}"):
        return ""
    return yaml.safe_load(r.stdout)["notes"]


def try_it(text):
    return text.split("Try it:", 1)[-1].split("\n\n", 1)[0]


plain = try_it(notes())
check("mxpolicy resolve --server=127.0.0.1:8460" in plain and "--tls" not in plain,
      f"NOTES.txt without TLS: want a plaintext 'Try it', got {plain!r}")
tls = try_it(notes("--set", "tls.enabled=true,tls.secretName=s"))
check(all(f in tls for f in ("--tls-ca=", f"--tls-server-name={RELEASE}-mxpolicy.{NAMESPACE}.svc"))
      and "--tls-cert" not in tls, f"NOTES.txt with TLS: 'Try it' lacks the TLS form: {tls!r}")
mtls = try_it(notes("-f", ALL_FEATURES))
check(all(f in mtls for f in ("--tls-ca=", "--tls-server-name=", "--tls-cert=", "--tls-key=")),
      f"NOTES.txt with mTLS: 'Try it' lacks the client certificate: {mtls!r}")

# --- the Grafana dashboard ------------------------------------------------
path = os.path.join(CHART, "dashboards/mxpolicy.json")
try:
    dash = json.load(open(path))
except ValueError as e:
    dash = None
    check(False, f"{path}: not JSON: {e}")
if dash is not None:
    tvars = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = tvars.get("DS_PROMETHEUS", {})
    check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
          "dashboard: no datasource variable DS_PROMETHEUS (prometheus)")
    check(bool(dash.get("title")) and bool(dash.get("uid")), "dashboard: title and uid")

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    used = set()
    ids = []
    for p in panels(dash.get("panels", [])):
        ids.append(p.get("id"))
        if p.get("type") == "row":
            continue
        check(p.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}",
              f"dashboard panel {p.get('title')!r}: datasource is not ${{DS_PROMETHEUS}}")
        check(bool(p.get("targets")), f"dashboard panel {p.get('title')!r}: no query")
        for t in p.get("targets", []):
            check(t.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}",
                  f"dashboard panel {p.get('title')!r}: target datasource")
            expr = t.get("expr", "")
            check(expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"),
                  f"dashboard panel {p.get('title')!r}: unbalanced query {expr}")
            for name in re.findall(r"\b(mxpolicy_[a-z0-9_]+)", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if base in HISTOGRAMS:
                    check(name.endswith("_bucket") or name != base,
                          f"dashboard: histogram {name} queried without _bucket/_sum/_count")
                    name = base
                check(name in METRICS, f"dashboard panel {p.get('title')!r}: unknown metric {name}")
                used.add(name)
            if "histogram_quantile" in expr:
                check("_bucket" in expr and re.search(r"by \([^)]*\ble\b", expr),
                      f"dashboard panel {p.get('title')!r}: histogram_quantile needs buckets summed by le")
    check(len(ids) == len(set(ids)), "dashboard: duplicate panel ids")
    check(used == METRICS, f"dashboard: metrics without a panel: {sorted(METRICS - used)}")
    # And mxpolicyd really exports them (names as literals in its source).
    exported = exported_metrics()
    check(not (used - exported), f"dashboard: metrics mxpolicyd does not export: {sorted(used - exported)}")
    # L1 hit ratio: a call joining another's resolution is no cache hit.
    ratio = [p for p in panels(dash["panels"]) if "hit ratio" in p.get("title", "").lower()]
    if check(len(ratio) == 1 and len(ratio[0].get("targets", [])) == 1, "dashboard: one hit ratio panel, one query"):
        expr = re.sub(r"\{[^}]*\}|\[[^]]*\]|\s", "", ratio[0]["targets"][0]["expr"])
        hits, misses, joins = (f"sum(rate({m}))" for m in (
            "mxpolicy_cache_hits_total", "mxpolicy_cache_misses_total", "mxpolicy_singleflight_joins_total"))
        check(expr == f"{hits}/({hits}+{misses}+{joins})",
              f"dashboard: hit ratio is {expr}, want hits / (hits + misses + single-flight joins)")
    titles = " ".join(p.get("title", "") for p in panels(dash["panels"])).lower()
    for word in ("decision", "source", "code", "p99", "hit ratio", "evict", "single-flight",
                 "refresh", "dnssec", "upstream", "l2", "tls"):
        check(word in titles, f"dashboard: no panel about {word!r}")

if failures:
    print(f"chart_check: {len(failures)} of {checks} checks FAILED:")
    for f in failures:
        print("  FAIL", f)
    sys.exit(1)
print(f"chart_check: all {checks} checks passed ({len(FLAGS)} mxpolicyd flags)")
