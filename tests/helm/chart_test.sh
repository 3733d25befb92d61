#!/usr/bin/env bash
# Usage: tests/helm/chart_test.sh HELM CHART_DIR
#
# The Helm chart's test: `helm lint` with the default and the all-features
# values, then chart_check.py on what `helm template` renders (kinds, gRPC
# probes on declared ports, security context, /tmp, value -> flag mappings
# against server/src/app/flags.cc, refused values, the Grafana dashboard).
# Runs offline: helm is fetched beforehand by `make test` (scripts/fetch-helm.sh).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 HELM CHART_DIR" >&2
  exit 2
fi
helm=$1
chart=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ ! -x "$helm" ] || ! "$helm" version --short >/dev/null 2>&1; then
  echo "FAIL: no working helm at $helm." >&2
  echo "Run 'make test' (it fetches helm first) or: scripts/fetch-helm.sh $(dirname "$helm")" >&2
  exit 1
fi

# Debian's python3 has python3-yaml (scripts/install-deps.sh); another
# python3 first on PATH may not.
py=python3
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  py=/usr/bin/python3
fi

# Helm keeps no state outside this run.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HELM_CACHE_HOME=$tmp/cache HELM_CONFIG_HOME=$tmp/config HELM_DATA_HOME=$tmp/data

echo "== $("$helm" version --short)"
echo "== helm lint (default values)"
"$helm" lint --strict "$chart"
echo "== helm lint (all-features values)"
"$helm" lint --strict "$chart" -f "$here/all-features-values.yaml"
echo "== rendered objects"
"$py" "$here/chart_check.py" "$helm" "$chart" "$root"
