#!/usr/bin/env bash
# The scale benchmark: N Deployments with one ScalingPolicy each, spread over NAMESPACES, on the
# local control plane (kwok nodes, so every pod "runs" without a container), reconciled by one
# release `trimtab run` (webhook and leader election off). After a warm-up it measures, over
# BENCH_SECONDS (default 120):
#   - the operator's RSS (peak over the whole run, and the mean of the window) and CPU share;
#   - the share of policies evaluated within two intervals (the operator's
#     trimtab_last_decision_timestamp_seconds: status is not written by a quiet round);
#   - API requests/s by verb and resource, from the API server's own apiserver_request_total
#     (every client's: the operator's are the scalingpolicies and deployments/scale rows);
#   - Prometheus queries/s, from Prometheus's own prometheus_http_requests_total.
#
#   scripts/bench-scale.sh [N] [NAMESPACES]      (just bench-scale N NAMESPACES)
#
# Env: BENCH_SECONDS (measured window), BENCH_INTERVAL (policies' interval, default 15s).
# Uses the running local cluster if there is one (and leaves it up), else brings one up and down.
# Everything it creates is deleted at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
NAMESPACES=${2:-1}
WINDOW=${BENCH_SECONDS:-120}
INTERVAL=${BENCH_INTERVAL:-15s}
INTERVAL_S=${INTERVAL%s}

log() { echo "[bench-scale $(date +%H:%M:%S)] $*" >&2; }

work=$(mktemp -d)
operator_pid=""
started_cluster=0
cleanup() {
  local rc=$?
  [[ -n "$operator_pid" ]] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  if [[ -n "${KUBECONFIG:-}" ]]; then
    for ((k = 0; k < NAMESPACES; k++)); do kubectl delete namespace "bench-$k" --wait=false >/dev/null 2>&1 || true; done
    kubectl delete nodes -l trimtab.dev/bench=true --wait=false >/dev/null 2>&1 || true
  fi
  [[ $started_cluster == 1 ]] && bash e2e/cluster/down.sh >/dev/null 2>&1
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT INT TERM

if ! bash e2e/cluster/kubeconfig.sh >/dev/null 2>&1; then
  log "bringing up the local cluster"
  started_cluster=1
  bash e2e/cluster/up.sh
fi
# shellcheck disable=SC1091
source "$(dirname "$(bash e2e/cluster/kubeconfig.sh)")/env"

cargo build --quiet --release --locked -p trimtab
bin=$PWD/target/release/trimtab

# Room for every pod: kwok nodes of 1,000 pods each, without taints.
python3 - "$N" >"$work/nodes.yaml" <<'PY'
import sys
n = int(sys.argv[1])
for i in range((n + 999) // 1000):
    print(f"""---
apiVersion: v1
kind: Node
metadata:
  name: bench-{i}
  annotations: {{kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}}
  labels: {{type: kwok, trimtab.dev/bench: "true", kubernetes.io/hostname: bench-{i}, kubernetes.io/os: linux}}
status:
  capacity: {{cpu: "1000", memory: 4000Gi, pods: "1000"}}
  allocatable: {{cpu: "1000", memory: 4000Gi, pods: "1000"}}""")
PY
kubectl apply -f "$work/nodes.yaml" >/dev/null
kubectl apply --server-side -f crds/trimtab.dev.yaml >/dev/null
kubectl wait --for=condition=Established crd/scalingpolicies.trimtab.dev --timeout=60s >/dev/null

# N Deployments (one replica, tiny requests) and N policies, each with its own constant query.
python3 - "$N" "$NAMESPACES" "$INTERVAL" "$work" <<'PY'
import json, sys
n, namespaces, interval, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(f"{work}/namespaces.json", "w") as f:
    json.dump({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{k}"}} for k in range(namespaces)]}, f)
items = []
for i in range(n):
    ns, name = f"bench-{i % namespaces}", f"app-{i}"
    labels = {"app": name}
    items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "bench", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})
    items.append({"apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": name, "namespace": ns},
        "spec": {"targetRef": {"kind": "Deployment", "name": name}, "minReplicas": 1, "maxReplicas": 10, "interval": interval,
            "objectives": [{"name": "load", "kind": "AverageValue", "query": f"vector({i})", "target": "1000000"}]}})
for start in range(0, len(items), 2000):
    with open(f"{work}/objects-{start // 2000:04d}.json", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items[start:start + 2000]}, f)
PY
kubectl apply -f "$work/namespaces.json" >/dev/null
log "creating $N Deployments and ScalingPolicies in $NAMESPACES namespace(s)"
for file in "$work"/objects-*.json; do kubectl apply --server-side -f "$file" >/dev/null; done

# Counters from the API server and from Prometheus, as "name{labels} value" lines.
api_counters() { kubectl get --raw /metrics | grep -E '^apiserver_request_total\{' || true; }
prom_queries() {
  curl -fsS "$PROMETHEUS_URL/metrics" | awk '/^prometheus_http_requests_total\{.*handler="\/api\/v1\/query"/ {s += $NF} END {print s + 0}'
}
evaluated_share() { # policies whose newest decided round is within two intervals (the operator's own gauge)
  local total
  total=$(kubectl get scalingpolicies -A --no-headers 2>/dev/null | wc -l)
  curl -fsS "http://$metrics_addr/metrics" 2>/dev/null | python3 -c '
import sys, time
interval, total = float(sys.argv[1]), int(sys.argv[2]); now = time.time()
recent = sum(1 for line in sys.stdin
             if line.startswith("trimtab_last_decision_timestamp_seconds{") and now - float(line.split()[-1]) <= 2 * interval)
print(f"{recent} {total}")' "$INTERVAL_S" "$total" || echo "0 $total"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$operator_pid/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$operator_pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$operator_pid/stat"; }

metrics_addr=127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "starting the operator (metrics on $metrics_addr)"
RUST_LOG=warn "$bin" run --prometheus-url "$PROMETHEUS_URL" --webhook false --leader-elect false \
  --metrics-addr "$metrics_addr" >"$work/operator.log" 2>&1 &
operator_pid=$!

# Warm-up: until 99 % of the policies are evaluated within two intervals, or five minutes.
deadline=$((SECONDS + 300))
while :; do
  read -r done_ total < <(evaluated_share)
  kill -0 "$operator_pid" 2>/dev/null || { cat "$work/operator.log" >&2; log "the operator exited"; exit 1; }
  ((done_ * 100 >= total * 99)) && break
  ((SECONDS < deadline)) || { log "warm-up did not reach 99 % in 5 minutes ($done_ / $total)"; break; }
  sleep 5
done
# Steady state: every Deployment has its pods (kwok's controller-manager creates about 5 pods/s
# here, so a thousand take minutes), or ten minutes.
deadline=$((SECONDS + 600))
while :; do
  pending=$(kubectl get deployments -A -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(sum(1 for d in items if (d.get("status") or {}).get("readyReplicas", 0) < (d.get("spec") or {}).get("replicas", 1)))')
  ((pending == 0)) && break
  ((SECONDS < deadline)) || { log "$pending Deployments still without their pods after 10 minutes"; break; }
  sleep 10
done
read -r done_ total < <(evaluated_share)
log "warm: $done_ / $total evaluated, every Deployment's pods up; measuring for ${WINDOW}s"

status_writes() { curl -fsS "http://$metrics_addr/metrics" | awk '/^trimtab_status_writes_total / {print $2}'; }
writes_before=$(status_writes)
api_counters >"$work/api_before"
prom_before=$(prom_queries)
ticks_before=$(cpu_ticks)
rss_sum=0
samples=0
start=$SECONDS
while ((SECONDS - start < WINDOW)); do
  rss_sum=$((rss_sum + $(rss_kib)))
  samples=$((samples + 1))
  sleep 5
done
elapsed=$((SECONDS - start))
writes_after=$(status_writes)
api_counters >"$work/api_after"
prom_after=$(prom_queries)
ticks_after=$(cpu_ticks)
read -r done_ total < <(evaluated_share)
hz=$(getconf CLK_TCK)

python3 - "$elapsed" "$N" "$NAMESPACES" "$(hwm_kib)" "$((rss_sum / samples))" "$((ticks_after - ticks_before))" "$hz" \
  "$done_" "$total" "$prom_before" "$prom_after" "$work/api_before" "$work/api_after" "${writes_before:-0}" "${writes_after:-0}" <<'PY'
import re, sys, collections
(elapsed, n, namespaces, hwm, rss, ticks, hz, done, total, prom_before, prom_after, before_file, after_file,
 writes_before, writes_after) = sys.argv[1:16]
elapsed = float(elapsed)
def counters(path):
    out = collections.Counter()
    for line in open(path):
        m = re.match(r'apiserver_request_total\{(.*)\} (\S+)', line)
        if not m: continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        resource = labels.get("resource", "") + ("/" + labels["subresource"] if labels.get("subresource") else "")
        out[(labels.get("verb", ""), resource)] += float(m.group(2))
    return out
before, after = counters(before_file), counters(after_file)
rates = {k: (after[k] - before.get(k, 0)) / elapsed for k in after}
writes = sum(r for (verb, _), r in rates.items() if verb in ("POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"))
print(f"| policies | namespaces | RSS peak | RSS steady | CPU | evaluated within 2 intervals | API requests/s | API writes/s | Prometheus queries/s |")
print(f"|---|---|---|---|---|---|---|---|---|")
print(f"| {n} | {namespaces} | {int(hwm) / 1024:.0f} MiB | {int(rss) / 1024:.0f} MiB | {int(ticks) / int(hz) / elapsed * 100:.1f} % | "
      f"{int(done) / max(int(total), 1) * 100:.1f} % ({done}/{total}) | {sum(rates.values()):.1f} | {writes:.1f} | "
      f"{(float(prom_after) - float(prom_before)) / elapsed:.1f} |")
print()
print(f"Trimtab's own status patches/s (trimtab_status_writes_total): {(float(writes_after) - float(writes_before)) / elapsed:.2f}")
print()
print("API requests/s by verb and resource (every client of the API server; over 0.05/s):")
for (verb, resource), rate in sorted(rates.items(), key=lambda kv: -kv[1]):
    if rate > 0.05:
        print(f"  {verb:8} {resource:40} {rate:7.2f}")
PY
