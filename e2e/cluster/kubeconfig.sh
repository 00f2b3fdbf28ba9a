#!/usr/bin/env bash
# Print the e2e cluster's kubeconfig path (fails if the cluster is not up).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ -f "$KUBECONFIG_PATH" ]] || { echo "kubeconfig.sh: no cluster at $STATE (run e2e/cluster/up.sh)" >&2; exit 1; }
echo "$KUBECONFIG_PATH"
