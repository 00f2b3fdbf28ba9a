#!/usr/bin/env bash
# Start the e2e cluster: etcd + kube-apiserver + kube-controller-manager + kube-scheduler
# + kwok (via `kwokctl --runtime binary`, all binaries ours), six fake nodes from
# nodes.yaml, and a Prometheus on loopback. Idempotent: a healthy cluster is left as is;
# a broken leftover is torn down and recreated. On failure it stops whatever it started.
#
# Env (all optional):
#   TRIMTAB_CLUSTER_DIR     state dir (default ${XDG_RUNTIME_DIR:-/tmp}/trimtab-cluster)
#   TRIMTAB_APISERVER_PORT  kube-apiserver port (default: a free one picked by kwokctl)
#   PROMETHEUS_PORT         Prometheus port (default 19090, or the next free one above it)
#   APPSIM_ADDR             scrape target of job "appsim"  (default 127.0.0.1:18080)
#   OPERATOR_METRICS_ADDR   scrape target of job "trimtab" (default 127.0.0.1:18081)
#   TRIMTAB_TOOLS_CACHE     see tools.sh
#   TRIMTAB_CONTROL_PLANE_QPS  client QPS of the controller-manager and the scheduler; their
#                           defaults (20 and 50) create about 5 pods/s, too few for
#                           `just bench-scale` at 10,000 pods
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

APPSIM_ADDR=${APPSIM_ADDR:-127.0.0.1:18080}
OPERATOR_METRICS_ADDR=${OPERATOR_METRICS_ADDR:-127.0.0.1:18081}
K8S_VERSION=v1.36.3

T0=$SECONDS
log() { echo "[up.sh +$((SECONDS - T0))s] $*" >&2; }
die() { echo "[up.sh] ERROR: $*" >&2; exit 1; }

# 1. Tools (no-op when cached; a cold build takes ~20 min).
"$CLUSTER_HERE/tools.sh"
export PATH="$TOOLS_BIN:$PATH"   # our kubectl, before the distro's old one; kwokctl looks it up too
kc() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }
export KUBECACHEDIR="$STATE/kube-cache"   # kubectl's discovery cache: not in ~/.kube

take_lock

healthy() {
  [[ -f "$STATE/up.done" && -f "$ENV_FILE" ]] || return 1
  local url; url=$(sed -n 's/^export PROMETHEUS_URL=//p' "$ENV_FILE")
  kc --request-timeout=5s get --raw /readyz >/dev/null 2>&1 &&
    curl -fsS --max-time 5 "$url/-/ready" >/dev/null 2>&1 &&
    [[ $(kc get nodes -l type=kwok --no-headers 2>/dev/null | grep -cw Ready) -eq 6 ]]
}

if healthy; then
  log "cluster already up and healthy ($STATE); nothing to do"
  exit 0
fi
if [[ -e "$STATE" ]]; then
  log "found a stale or broken cluster in $STATE: tearing it down first"
  "$CLUSTER_HERE/down.sh"
fi

# From here on, anything that fails tears down what this run started.
on_exit() {
  local rc=$?
  [[ $rc -eq 0 ]] && return 0
  echo "[up.sh] FAILED (exit $rc). Last lines of the component logs:" >&2
  local f
  for f in "$KWOK_CLUSTER_DIR"/logs/*.log "$PROM_DIR"/prometheus.log; do
    [[ -f "$f" ]] || continue
    echo "----- $f" >&2; tail -n 15 "$f" >&2
  done
  if [[ "${TRIMTAB_KEEP_ON_FAILURE:-0}" == 1 ]]; then
    echo "[up.sh] TRIMTAB_KEEP_ON_FAILURE=1: leaving $STATE and its processes; run down.sh" >&2
  else
    echo "[up.sh] cleaning up (down.sh)" >&2
    "$CLUSTER_HERE/down.sh" || echo "[up.sh] WARNING: down.sh failed too" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT    # make Ctrl-C / kill go through on_exit with a non-zero status
trap 'exit 143' TERM

mkdir -p "$STATE" "$PROM_DIR"

# 2. Control plane + kwok through kwokctl's binary runtime. Every binary is given as a
#    local path (kwokctl would otherwise download it); everything binds to loopback.
export KWOK_WORKDIR="$KWOK_DIR"
export KWOK_RUNTIME=binary
export KWOK_KUBE_VERSION=$K8S_VERSION
export KWOK_KUBE_BINARY_PREFIX="$TOOLS_BIN"
export KWOK_KUBE_APISERVER_BINARY="$TOOLS_BIN/kube-apiserver"
export KWOK_KUBE_CONTROLLER_MANAGER_BINARY="$TOOLS_BIN/kube-controller-manager"
export KWOK_KUBE_SCHEDULER_BINARY="$TOOLS_BIN/kube-scheduler"
export KWOK_KUBECTL_BINARY="$TOOLS_BIN/kubectl"
export KWOK_CONTROLLER_BINARY="$TOOLS_BIN/kwok"
export KWOK_ETCD_BINARY="$TOOLS_BIN/etcd"

mkdir -p "$KWOK_DIR"
{
  echo "apiVersion: config.kwok.x-k8s.io/v1alpha1"
  echo "kind: KwokctlConfiguration"
  echo "options:"
  echo "  runtime: binary"
  echo "  kubeVersion: $K8S_VERSION"
  echo "  bindAddress: 127.0.0.1       # etcd, apiserver, KCM, scheduler, kwok: loopback only"
  [[ -n "${TRIMTAB_APISERVER_PORT:-}" ]] && echo "  kubeApiserverPort: $TRIMTAB_APISERVER_PORT"
  true
} >"$STATE/kwokctl.yaml"
if [[ -n "${TRIMTAB_APISERVER_PORT:-}" ]] && port_busy "$TRIMTAB_APISERVER_PORT"; then
  die "TRIMTAB_APISERVER_PORT=$TRIMTAB_APISERVER_PORT is already in use"
fi

log "starting control plane (kwokctl create cluster --runtime binary)"
# advertise-address: with a loopback bind address the apiserver otherwise looks for a
#   default-route interface and fails to start on hosts without one.
# unsafe-no-fsync: test data is throwaway; fsync only slows etcd down.
qps_args=()
if [[ -n "${TRIMTAB_CONTROL_PLANE_QPS:-}" ]]; then
  for component in kube-controller-manager kube-scheduler; do
    # One argument per component: kwokctl v0.8.0 indexes a component's second --extra-args by
    # the wrong position (and panics). The QPS alone sets the steady rate.
    qps_args+=(--extra-args "$component=kube-api-qps=$TRIMTAB_CONTROL_PLANE_QPS")
  done
fi
kwokctl -c "$STATE/kwokctl.yaml" create cluster --name "$CLUSTER_NAME" \
  --kubeconfig "$KUBECONFIG_PATH" \
  --extra-args kube-apiserver=advertise-address=127.0.0.1 \
  "${qps_args[@]}" \
  --extra-args etcd=unsafe-no-fsync=true \
  --wait 2m >"$STATE/kwokctl-create.log" 2>&1 9>&- ||
  { cat "$STATE/kwokctl-create.log" >&2; die "kwokctl create cluster failed"; }
kc config use-context "kwok-$CLUSTER_NAME" >/dev/null
kc get --raw /readyz >/dev/null || die "kube-apiserver not ready after kwokctl create"
SERVER_VERSION=$(kc get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')
[[ "$SERVER_VERSION" == "$K8S_VERSION" ]] || die "apiserver reports version '$SERVER_VERSION', want $K8S_VERSION"
log "kube-apiserver $SERVER_VERSION ready at $(kc config view --minify -o jsonpath='{.clusters[0].cluster.server}')"

# 3. Fake nodes.
kc apply -f "$CLUSTER_HERE/nodes.yaml" >/dev/null
kc wait --for=condition=Ready node -l type=kwok --timeout=90s >/dev/null ||
  die "kwok nodes did not become Ready"
n=$(kc get nodes -l type=kwok --no-headers | grep -cw Ready)
[[ $n -eq 6 ]] || die "expected 6 Ready kwok nodes, got $n"
log "6 kwok nodes Ready"

# Pods can only be created once KCM's serviceaccount controller made 'default' SA.
for _ in $(seq 120); do
  kc -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.5
done
kc -n default get serviceaccount default >/dev/null 2>&1 ||
  die "serviceaccount default/default never appeared (is kube-controller-manager running?)"

# 4. Prometheus (Debian binary), its own process, config and TSDB in the state dir.
command -v prometheus >/dev/null || die "prometheus not on PATH (tools.sh installs it)"
if [[ -n "${PROMETHEUS_PORT:-}" ]]; then
  port_busy "$PROMETHEUS_PORT" && die "PROMETHEUS_PORT=$PROMETHEUS_PORT is already in use"
  PROM_PORT=$PROMETHEUS_PORT
else
  PROM_PORT=19090
  while port_busy "$PROM_PORT"; do
    PROM_PORT=$((PROM_PORT + 1))
    [[ $PROM_PORT -lt 19190 ]] || die "no free port in 19090-19189 for Prometheus"
  done
fi
PROMETHEUS_URL="http://127.0.0.1:$PROM_PORT"
cat >"$PROM_DIR/prometheus.yml" <<EOF
# Generated by e2e/cluster/up.sh. Edit and reload: curl -X POST $PROMETHEUS_URL/-/reload
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
scrape_configs:
  - job_name: appsim        # simulated app (APPSIM_ADDR)
    static_configs:
      - targets: ['$APPSIM_ADDR']
  - job_name: trimtab       # the operator's own metrics (OPERATOR_METRICS_ADDR)
    static_configs:
      - targets: ['$OPERATOR_METRICS_ADDR']
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$PROM_PORT']
EOF
log "starting prometheus on $PROMETHEUS_URL"
# setsid: own session, so it outlives this script and a Ctrl-C in the calling terminal.
# 9>&-: don't let the long-lived process inherit (and so hold) the cluster lock fd.
setsid prometheus \
  --config.file="$PROM_DIR/prometheus.yml" \
  --storage.tsdb.path="$PROM_DIR/data" \
  --storage.tsdb.retention.time=1d \
  --web.listen-address="127.0.0.1:$PROM_PORT" \
  --web.enable-lifecycle \
  --web.enable-admin-api \
  </dev/null >"$PROM_DIR/prometheus.log" 2>&1 9>&- &
echo $! >"$PROM_PID_FILE"
for _ in $(seq 300); do   # up to 60 s
  curl -fsS --max-time 2 "$PROMETHEUS_URL/-/ready" >/dev/null 2>&1 && break
  pid_is "$(cat "$PROM_PID_FILE")" prometheus || die "prometheus exited during startup"
  sleep 0.2
done
curl -fsS --max-time 2 "$PROMETHEUS_URL/-/ready" >/dev/null || die "prometheus not ready after 60 s"
log "prometheus ready"

# 5. Env file for tests and humans: `source "$TRIMTAB_CLUSTER_DIR/env"`.
cat >"$ENV_FILE" <<EOF
export TRIMTAB_CLUSTER_DIR=$STATE
export KUBECONFIG=$KUBECONFIG_PATH
export KUBECACHEDIR=$STATE/kube-cache
export PROMETHEUS_URL=$PROMETHEUS_URL
export TOOLS_BIN=$TOOLS_BIN
export PATH=$TOOLS_BIN:\$PATH
EOF
touch "$STATE/up.done"
log "cluster up. source $ENV_FILE"
