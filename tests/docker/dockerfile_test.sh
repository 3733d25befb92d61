#!/usr/bin/env bash
# Usage: tests/docker/dockerfile_test.sh DOCKERFILE BINARY...
#
# No Docker engine runs in CI, so the Dockerfile's runtime stage is checked
# against the binaries built here instead:
#   - every shared library a binary loads (ldd) belongs to a Debian package
#     (dpkg -S) that the runtime stage installs: listed in its apt-get
#     install line when the binary links it directly (readelf NEEDED),
#     listed or pulled in by a listed package's Depends otherwise (what apt
#     does); libc6, libstdc++6 and libgcc-s1 come with debian:12-slim;
#   - the runtime stage copies every binary, runs as a non-root USER,
#     exposes 8460 and 9464 and starts mxpolicyd on 0.0.0.0 at the path the
#     Helm chart runs.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 DOCKERFILE BINARY..." >&2
  exit 2
fi
dockerfile=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

# One line per library: BINARY SONAME PATH DIRECT(0/1); the owning package
# is looked up below, in dpkg's file lists read once (a dpkg -S per library
# took minutes).
libs=$(mktemp)
trap 'rm -f "$libs"' EXIT
for bin in "$@"; do
  [ -x "$bin" ] || { echo "FAIL: $bin is not a built binary" >&2; exit 1; }
  needed=" $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ') "
  while read -r soname path; do
    direct=0
    case "$needed" in *" $soname "*) direct=1 ;; esac
    echo "$(basename "$bin") $soname $path $direct" >>"$libs"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
done

"$py" - "$dockerfile" "$libs" "$root" "$@" <<'PY'
import os, re, subprocess, sys

dockerfile, libs, root, *bins = sys.argv[1:]
BASE = {"libc6", "libstdc++6", "libgcc-s1"}
fails = []

# Dockerfile instructions (continuations joined, comments dropped), by stage.
lines, cur = [], ""
for raw in open(dockerfile):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if cur and s.lstrip().startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
stages = []
for l in lines:
    if re.match(r"(?i)FROM\s", l):
        stages.append([])
    if stages:
        stages[-1].append(l)
if len(stages) < 2:
    sys.exit("FAIL: want a multi-stage Dockerfile (build + runtime)")
runtime = stages[-1]
base = runtime[0].split()[1]
if base != "debian:12-slim":
    fails.append(f"runtime stage is FROM {base}, want debian:12-slim")

installed = set()
for l in runtime:
    for m in re.finditer(r"apt-get install((?:\s+[^&;|]+)*)", l):
        installed |= {t for t in m.group(1).split() if not t.startswith("-")}
if not installed:
    fails.append("runtime stage installs no packages")
for must in ("dns-root-data", "ca-certificates"):
    if must not in installed:
        fails.append(f"runtime stage lacks {must}")

def depends_closure(pkgs):
    """Packages apt installs with pkgs: Depends/Pre-Depends, recursively
    (first alternative), from the local dpkg database."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p],
                           capture_output=True, text=True)
        if r.returncode != 0:
            continue
        for dep in r.stdout.split(","):
            first = dep.split("|")[0].strip()
            if first:
                todo.append(re.split(r"[\s(:]", first)[0])
    return seen

# Every listed package exists (known to the local dpkg or apt database; both
# work offline).
for p in sorted(installed):
    known = any(subprocess.run(cmd + [p], capture_output=True).returncode == 0
                for cmd in (["dpkg-query", "-W"], ["apt-cache", "show", "-q"]))
    if not known:
        fails.append(f"runtime package {p} is unknown to dpkg and apt here")

closure = depends_closure(installed)
# File → package from dpkg's lists. Merged /usr: dpkg may know a file under
# /lib or /usr/lib, by the name ldd gives or by its target.
owner = {}
info = "/var/lib/dpkg/info"
for name in os.listdir(info):
    if name.endswith(".list"):
        pkg = name[:-5].split(":")[0]
        with open(os.path.join(info, name), errors="replace") as f:
            for entry in f:
                owner.setdefault(entry.rstrip("\n"), pkg)

def package_of(path):
    for p in (path, os.path.realpath(path)):
        bare = p[4:] if p.startswith("/usr/") else p
        for q in (p, "/usr" + bare, bare):
            if q in owner:
                return owner[q]
    return "?"

checked = 0
for row in open(libs):
    binname, soname, path, direct = row.split()
    pkg = package_of(path)
    checked += 1
    if pkg == "?":
        fails.append(f"{binname}: {soname} ({path}) belongs to no Debian package")
    elif pkg in BASE:
        continue
    elif direct == "1" and pkg not in installed:
        fails.append(f"{binname} links {soname} directly: package {pkg} must be in the runtime apt-get install list")
    elif pkg not in closure:
        fails.append(f"{binname} loads {soname}: package {pkg} is neither installed by the runtime stage nor a dependency of it")

text = "\n".join(runtime)
users = [l.split(None, 1)[1].strip() for l in runtime if re.match(r"(?i)USER\s", l)]
if not users:
    fails.append("runtime stage has no USER")
elif users[-1].split(":")[0] in ("0", "root"):
    fails.append(f"runtime stage runs as {users[-1]}, want non-root")
elif users[-1] != "65532:65532":
    fails.append(f"runtime USER is {users[-1]}, want 65532:65532 (the chart's runAsUser/runAsGroup)")
copies = " ".join(l for l in runtime if re.match(r"(?i)COPY\s+--from=", l))
for b in bins:
    if not re.search(r"/" + re.escape(os.path.basename(b)) + r"(\s|$)", copies):
        fails.append(f"runtime stage does not COPY {os.path.basename(b)} from the build stage")
expose = {t for l in runtime if re.match(r"(?i)EXPOSE\s", l) for t in l.split()[1:]}
if not {"8460", "9464"} <= expose:
    fails.append(f"EXPOSE {sorted(expose)}, want 8460 and 9464")
ep = [l for l in runtime if re.match(r"(?i)ENTRYPOINT\s", l)]
want = ["--listen=0.0.0.0:8460", "--metrics-listen=0.0.0.0:9464"]
if not ep or not all(w in ep[-1] for w in want) or "mxpolicyd" not in ep[-1]:
    fails.append(f"ENTRYPOINT must run mxpolicyd with {' '.join(want)}")
else:
    path = re.search(r'"(/[^"]*mxpolicyd)"', ep[-1])
    chart = open(os.path.join(root, "helm/mxpolicy/templates/deployment.yaml")).read()
    if not path or f'command: ["{path.group(1)}"]' not in chart:
        fails.append("the Helm chart's command is not the image's mxpolicyd path")
build = "\n".join(stages[0])
for b in bins:
    if os.path.basename(b) not in build:
        fails.append(f"build stage does not build {os.path.basename(b)}")

if fails:
    print(f"dockerfile_test: {len(fails)} problem(s):")
    for f in fails:
        print("  FAIL", f)
    sys.exit(1)
print(f"dockerfile_test: ok ({checked} libraries of {len(bins)} binaries, "
      f"{len(installed)} runtime packages)")
PY
