#!/usr/bin/env bash
# The soak: one release `trimtab run` (webhook and leader election off) on a local control plane of
# its own, while ScalingPolicies (each with its Deployment) are created and deleted every few
# seconds, for SOAK_MINUTES (default 30). Every SOAK_SAMPLE seconds it records the operator's RSS,
# the number of per-policy series on /metrics and the policies alive; at the end it prints those
# figures by minute and the RSS growth after warm-up. Then it deletes every policy and checks that
# their metric series go too (exit 1 if any is left: that is a leak, not noise).
#
#   scripts/soak.sh                  (just soak)
#
# Env: SOAK_MINUTES (30), SOAK_WARMUP_MINUTES (5), SOAK_ALIVE (policies kept alive, 100),
# SOAK_CHURN_SECONDS (one create and one delete every this many seconds, 3), SOAK_INTERVAL (the
# policies' interval, 5s), SOAK_SAMPLE (seconds between samples, 15).
# Its cluster state lives in its own directory with its own ports, so it runs beside `just e2e`.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${SOAK_MINUTES:-30}
WARMUP=${SOAK_WARMUP_MINUTES:-5}
ALIVE=${SOAK_ALIVE:-100}
CHURN=${SOAK_CHURN_SECONDS:-3}
INTERVAL=${SOAK_INTERVAL:-5s}
SAMPLE=${SOAK_SAMPLE:-15}

export TRIMTAB_CLUSTER_DIR=${TRIMTAB_SOAK_CLUSTER_DIR:-${TMPDIR:-/tmp}/trimtab-soak-cluster}
export TRIMTAB_CLUSTER_NAME=trimtab-soak
unset KUBECONFIG

log() { echo "[soak $(date +%H:%M:%S)] $*" >&2; }

work=$(mktemp -d)
operator_pid=""
cleanup() {
  local rc=$?
  [[ -n "$operator_pid" ]] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  bash e2e/cluster/down.sh >/dev/null 2>&1 || rc=1
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT INT TERM

cargo build --quiet --release --locked -p trimtab
bin=$PWD/target/release/trimtab
log "bringing up a cluster of its own in $TRIMTAB_CLUSTER_DIR"
bash e2e/cluster/up.sh >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$TRIMTAB_CLUSTER_DIR/env"
export KUBECONFIG

kubectl apply --server-side -f crds/trimtab.dev.yaml >/dev/null
kubectl wait --for=condition=Established crd/scalingpolicies.trimtab.dev --timeout=60s >/dev/null
kubectl create namespace soak >/dev/null

# Policy i and its Deployment, as one List.
objects() {
  python3 - "$1" "$INTERVAL" <<'PY'
import json, sys
i, interval = int(sys.argv[1]), sys.argv[2]
name, labels = f"app-{i}", {"app": f"app-{i}"}
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "soak"},
     "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
         "spec": {"containers": [{"name": "app", "image": "soak", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}},
    {"apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": name, "namespace": "soak"},
     "spec": {"targetRef": {"kind": "Deployment", "name": name}, "minReplicas": 1, "maxReplicas": 5, "interval": interval,
         "objectives": [{"name": "load", "kind": "AverageValue", "query": f"vector({i % 7})", "target": "4"}]}}]}))
PY
}
for ((i = 0; i < ALIVE; i++)); do objects "$i"; done | kubectl apply --server-side -f - >/dev/null

metrics_addr=127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn "$bin" run --prometheus-url "$PROMETHEUS_URL" --webhook false --leader-elect false \
  --namespace soak --metrics-addr "$metrics_addr" >"$work/operator.log" 2>&1 &
operator_pid=$!
log "operator pid $operator_pid, metrics on $metrics_addr; churning for $MINUTES minutes"

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$operator_pid/status"; }
policy_series() { curl -fsS "http://$metrics_addr/metrics" | grep -c 'policy="' || true; }

next=$ALIVE
oldest=0
created=0
deleted=0
start=$SECONDS
last_sample=-$SAMPLE
echo "seconds rss_mib policy_series alive created deleted" >"$work/samples"
while ((SECONDS - start < MINUTES * 60)); do
  kill -0 "$operator_pid" 2>/dev/null || { cat "$work/operator.log" >&2; log "the operator exited"; exit 1; }
  objects "$next" | kubectl apply --server-side -f - >/dev/null
  kubectl delete -n soak scalingpolicy "app-$oldest" --wait=false >/dev/null
  kubectl delete -n soak deployment "app-$oldest" --wait=false >/dev/null
  next=$((next + 1)); oldest=$((oldest + 1)); created=$((created + 1)); deleted=$((deleted + 1))
  if ((SECONDS - last_sample >= SAMPLE)); then
    last_sample=$SECONDS
    alive=$(kubectl get scalingpolicies -n soak --no-headers 2>/dev/null | wc -l)
    echo "$((SECONDS - start)) $(rss_mib) $(policy_series) $alive $created $deleted" >>"$work/samples"
  fi
  sleep "$CHURN"
done

log "deleting every policy; their series must leave /metrics"
kubectl delete scalingpolicies -n soak --all --wait=true >/dev/null
left=""
for _ in $(seq 1 60); do
  left=$(policy_series)
  ((left == 0)) && break
  sleep 1
done
final_rss=$(rss_mib)

python3 - "$work/samples" "$WARMUP" "$left" "$final_rss" <<'PY'
import sys
path, warmup, left, final_rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rows = [list(map(float, line.split())) for line in open(path).readlines()[1:]]
print("| minute | RSS MiB | per-policy series on /metrics | policies alive | created | deleted |")
print("|---|---|---|---|---|---|")
shown = set()
for s, rss, series, alive, created, deleted in rows:
    minute = int(s // 60)
    if minute in shown or (minute % 5 and minute != int(rows[-1][0] // 60)):
        continue
    shown.add(minute)
    print(f"| {minute} | {rss:.1f} | {int(series)} | {int(alive)} | {int(created)} | {int(deleted)} |")
after = [r for r in rows if r[0] >= warmup * 60]
if after:
    base, peak, last = after[0][1], max(r[1] for r in after), after[-1][1]
    print()
    print(f"RSS after the {warmup}-minute warm-up: {base:.1f} MiB; peak after it {peak:.1f} MiB; at the end {last:.1f} MiB "
          f"({(last - base) / base * 100:+.1f} %); {int(rows[-1][4])} policies created and deleted.")
print(f"After deleting every policy: {left} per-policy series left on /metrics; RSS {final_rss:.1f} MiB.")
PY
if ((left != 0)); then
  log "FAILED: $left per-policy series outlived their policies"
  exit 1
fi
