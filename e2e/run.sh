#!/usr/bin/env bash
# `just e2e`: the end-to-end suite against the cluster in KUBECONFIG and the Prometheus at
# PROMETHEUS_URL, or, when KUBECONFIG is not set, against a local control plane brought up for the
# run and torn down after it (on success or failure). Starts the simulated app (appsim) that
# Prometheus scrapes; each scenario starts its own operator process.
set -euo pipefail
cd "$(dirname "$0")/.."

export APPSIM_ADDR="${APPSIM_ADDR:-127.0.0.1:18080}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/trimtab-e2e.XXXXXX")"
appsim_pid=""
own_cluster=""
chart_installed=""
# The chart release whose ServiceAccount the scenarios' operators run as (not the release the
# chart lifecycle test installs and removes).
chart_env=(TRIMTAB_RELEASE=trimtab-e2e TRIMTAB_NAMESPACE=trimtab-e2e TRIMTAB_CHART_STATE="$logs/chart")

cleanup() {
  local status=$?
  set +e
  if [ -n "$appsim_pid" ]; then
    kill "$appsim_pid" 2>/dev/null
    wait "$appsim_pid" 2>/dev/null
  fi
  if [ "$status" -ne 0 ]; then
    echo "e2e failed; appsim log:" >&2
    tail -n 50 "$logs/appsim.log" >&2 2>/dev/null
  fi
  if [ -n "$chart_installed" ]; then
    # Uninstall checks nothing but the CRDs is left; a leftover fails the run.
    if ! env "${chart_env[@]}" bash e2e/chart/install.sh uninstall && [ "$status" -eq 0 ]; then
      status=1
    fi
  fi
  if [ -n "$own_cluster" ]; then
    bash e2e/cluster/down.sh
  fi
  rm -rf "$logs"
  exit "$status"
}
trap cleanup EXIT INT TERM

if [ -z "${KUBECONFIG:-}" ]; then
  own_cluster=1
  bash e2e/cluster/up.sh
  KUBECONFIG="$(bash e2e/cluster/kubeconfig.sh)"
  PROMETHEUS_URL="$(bash e2e/cluster/prometheus-url.sh)"
  export KUBECONFIG PROMETHEUS_URL
fi
: "${PROMETHEUS_URL:?set PROMETHEUS_URL to the Prometheus that scrapes appsim at $APPSIM_ADDR}"

cargo build --locked -p trimtab -p trimtab-e2e --bins
export TRIMTAB_BIN="$PWD/target/debug/trimtab"

target/debug/appsim --listen "$APPSIM_ADDR" --kubeconfig "$KUBECONFIG" >"$logs/appsim.log" 2>&1 &
appsim_pid=$!
for _ in $(seq 1 300); do   # up to 60 s
  curl -fsS "http://$APPSIM_ADDR/healthz" >/dev/null 2>&1 && break
  kill -0 "$appsim_pid" 2>/dev/null || { echo "appsim exited:" >&2; cat "$logs/appsim.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "http://$APPSIM_ADDR/healthz" >/dev/null 2>&1 || { echo "appsim not healthy after 60 s:" >&2; cat "$logs/appsim.log" >&2; exit 1; }

# The operator scenarios run with exactly the chart's RBAC: a token of its ServiceAccount.
if [ "${E2E_CHART_IDENTITY:-1}" = 1 ]; then
  chart_installed=1
  OPERATOR_KUBECONFIG="$(env "${chart_env[@]}" bash e2e/chart/install.sh install)"
  export OPERATOR_KUBECONFIG E2E_OPERATOR_NAMESPACE=trimtab-e2e
fi

# Scenarios within a file run in parallel, each in its own namespace with its own operator.
# --no-fail-fast: every scenario file runs and reports, even after one fails.
# Arguments select scenarios, as cargo test takes them: `just e2e --test alerts`.
cargo test --locked --no-fail-fast -p trimtab-e2e "$@" -- --ignored --test-threads "${E2E_THREADS:-6}"
