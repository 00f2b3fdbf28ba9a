#!/usr/bin/env bash
# Print the e2e Prometheus base URL, e.g. http://127.0.0.1:19090 (fails if not up).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
url=$(sed -n 's/^export PROMETHEUS_URL=//p' "$ENV_FILE" 2>/dev/null || true)
[[ -n "$url" ]] || { echo "prometheus-url.sh: no cluster at $STATE (run e2e/cluster/up.sh)" >&2; exit 1; }
echo "$url"
