#!/usr/bin/env bash
# The scale benchmark: N Deployments with one ScalingPolicy each, spread over NAMESPACES, on the
# local control plane (kwok nodes, so every pod "runs" without a container), reconciled by
# REPLICAS release `trimtab run` processes (webhook off; leader election off for one replica and
# one shard, else on with --shards SHARDS and the Leases in the namespace bench-leases). After
# every shard has its holder and a warm-up, it measures, over BENCH_SECONDS (default 120):
#   - each replica's RSS (peak over the whole run, and the mean of the window), CPU share and shards;
#   - the share of policies evaluated within two intervals, per replica and in all (each replica's
#     trimtab_last_decision_timestamp_seconds, which has series only for the policies it owns:
#     status is not written by a quiet round);
#   - API requests/s by verb and resource, from the API server's own apiserver_request_total
#     (every client's: the operator's are the scalingpolicies and deployments/scale rows);
#   - Prometheus queries/s, from Prometheus's own prometheus_http_requests_total.
#
#   scripts/bench-scale.sh [N] [NAMESPACES] [REPLICAS] [SHARDS]   (just bench-scale N NAMESPACES REPLICAS SHARDS)
#
# Env: BENCH_SECONDS (measured window), BENCH_INTERVAL (policies' interval, default 15s),
# BENCH_PODS_SECONDS (how long to wait for every Deployment's pods before measuring, default 600),
# BENCH_REPLICAS and BENCH_SHARDS (when not given as arguments; default 1 and 1).
# Uses the running local cluster if there is one (and leaves it up), else brings one up and down.
# Everything it creates is deleted at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
NAMESPACES=${2:-1}
REPLICAS=${3:-${BENCH_REPLICAS:-1}}
SHARDS=${4:-${BENCH_SHARDS:-1}}
LEASES=bench-leases
ELECT=false
((REPLICAS > 1 || SHARDS > 1)) && ELECT=true
WINDOW=${BENCH_SECONDS:-120}
INTERVAL=${BENCH_INTERVAL:-15s}
INTERVAL_S=${INTERVAL%s}

log() { echo "[bench-scale $(date +%H:%M:%S)] $*" >&2; }

work=$(mktemp -d)
pids=()
addrs=()
started_cluster=0
cleanup() {
  local rc=$?
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "${KUBECONFIG:-}" ]]; then
    [[ $ELECT == true ]] && { kubectl delete namespace "$LEASES" --wait=false >/dev/null 2>&1 || true; }
    for ((k = 0; k < NAMESPACES; k++)); do kubectl delete namespace "bench-$k" --wait=false >/dev/null 2>&1 || true; done
    kubectl delete nodes -l trimtab.dev/bench=true --wait=false >/dev/null 2>&1 || true
  fi
  [[ $started_cluster == 1 ]] && bash e2e/cluster/down.sh >/dev/null 2>&1
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT INT TERM
# A failing command ends the script (set -e): say which, rather than exit without a word.
set -o errtrace
trap 'log "failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR

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
# Four files at a time: one kubectl applies its objects one request after the other (about 10/s here).
printf '%s\0' "$work"/objects-*.json | xargs -0 -P 4 -n 1 kubectl apply --server-side -f >/dev/null

# Counters from the API server and from Prometheus, as "name{labels} value" lines.
api_counters() { kubectl get --raw /metrics | grep -E '^apiserver_request_total\{' || true; }
prom_queries() {
  curl -fsS "$PROMETHEUS_URL/metrics" | awk '/^prometheus_http_requests_total\{.*handler="\/api\/v1\/query"/ {s += $NF} END {print s + 0}'
}
scrape() { curl -fsS "http://${addrs[$1]}/metrics" 2>/dev/null || true; }
# Replica $1's "SHARDS EVALUATED": the shards it holds (trimtab_shard_owned; "all" with leader
# election off) and how many of its policies' newest decided round is at most two intervals old
# (its own gauge, which has series only for the policies it owns); with a second argument
# "series", then those series, one a line.
replica_state() {
  scrape "$1" | python3 -c '
import sys, time
interval, elect = float(sys.argv[1]), sys.argv[2] == "true"; now = time.time()
recent, owned = [], []
for line in sys.stdin:
    if line.startswith("trimtab_last_decision_timestamp_seconds{") and now - float(line.split()[-1]) <= 2 * interval:
        recent.append(line.rsplit(" ", 1)[0])
    elif line.startswith("trimtab_shard_owned{") and float(line.split()[-1]) == 1:
        owned.append(line.split("\"")[1])
print((",".join(sorted(owned, key=int)) or "none") if elect else "all", len(recent))
if sys.argv[3] == "series": print(*recent, sep="\n")' "$INTERVAL_S" "$ELECT" "${2:-}"
}
# "evaluated total": the policies evaluated by some replica within two intervals (the union), and
# the N created. (Not a count from the API server: listing 20,000 policies on a loaded machine can
# time out, and a failed count would end the script without a word.)
evaluated_share() {
  local i
  for ((i = 0; i < REPLICAS; i++)); do replica_state "$i" series | tail -n +2; done | sort -u | wc -l | sed "s/\$/ $N/"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
alive() {
  local i
  for ((i = 0; i < REPLICAS; i++)); do
    kill -0 "${pids[$i]}" 2>/dev/null || { cat "$work/operator-$i.log" >&2; log "replica $i exited"; exit 1; }
  done
}

if [[ $ELECT == true ]]; then
  kubectl create namespace "$LEASES" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  election=(--leader-elect true --shards "$SHARDS" --leader-election-namespace "$LEASES")
else
  election=(--leader-elect false)
fi
for ((i = 0; i < REPLICAS; i++)); do
  addrs[i]=127.0.0.1:$(free_port)
  log "starting replica $i (metrics on ${addrs[$i]}, leader election $ELECT, $SHARDS shard(s))"
  RUST_LOG=warn "$bin" run --prometheus-url "$PROMETHEUS_URL" --webhook false "${election[@]}" \
    --identity "bench-$i" --metrics-addr "${addrs[$i]}" >"$work/operator-$i.log" 2>&1 &
  pids[i]=$!
done

# Every shard held by exactly one replica, and no replica above its fair share (ceil(SHARDS /
# REPLICAS)), or two minutes: the balancing hands shards over on the next renew.
if [[ $ELECT == true ]]; then
  deadline=$((SECONDS + 120))
  share=$(((SHARDS + REPLICAS - 1) / REPLICAS))
  while :; do
    alive
    held=$(for ((i = 0; i < REPLICAS; i++)); do replica_state "$i" | cut -d' ' -f1; done)
    if python3 -c '
import sys
shards, share, held = int(sys.argv[1]), int(sys.argv[2]), [[] if l == "none" else l.split(",") for l in sys.argv[3].split("\n")]
owners = [s for h in held for s in h]
sys.exit(0 if sorted(owners, key=int) == [str(s) for s in range(shards)] and all(len(h) <= share for h in held) else 1)' \
      "$SHARDS" "$share" "$held"; then
      log "every shard held: $(echo "$held" | paste -sd'|')"
      break
    fi
    ((SECONDS < deadline)) || { log "shards not balanced after 2 minutes: $(echo "$held" | paste -sd'|')"; break; }
    sleep 2
  done
fi

# Warm-up: until 99 % of the policies are evaluated within two intervals, or five minutes plus a
# second per 20 policies a replica owns: a policy's first round writes its status, and a replica
# got through about 21 first rounds a second with 10,000 to do on a loaded machine.
warmup=$((300 + N / REPLICAS / 20))
deadline=$((SECONDS + warmup))
while :; do
  read -r done_ total < <(evaluated_share)
  alive
  ((done_ * 100 >= total * 99)) && break
  ((SECONDS < deadline)) || { log "warm-up did not reach 99 % in ${warmup}s ($done_ / $total)"; break; }
  sleep 5
done
# Steady state: every Deployment has its pods (kwok's controller-manager creates about 5 pods/s
# here, so a thousand take minutes), or BENCH_PODS_SECONDS (default ten minutes).
pods_wait=${BENCH_PODS_SECONDS:-600}
deadline=$((SECONDS + pods_wait))
while :; do
  # A list that fails (a timeout on a loaded machine) counts as "not yet", and is said.
  pending=$(kubectl get deployments -A -o json 2>"$work/list.err" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(sum(1 for d in items if (d.get("status") or {}).get("readyReplicas", 0) < (d.get("spec") or {}).get("replicas", 1)))' \
    2>/dev/null) || { log "listing Deployments failed: $(tail -n 1 "$work/list.err")"; pending=unknown; }
  [[ $pending == 0 ]] && break
  ((SECONDS < deadline)) || { log "$pending Deployments still without their pods after ${pods_wait}s"; break; }
  sleep 10
done
read -r done_ total < <(evaluated_share)
log "warm: $done_ / $total evaluated, every Deployment's pods up; measuring for ${WINDOW}s"

# Replica $1's "STATUS_WRITES WAIT_SUM WAIT_COUNT": its status patches, and the seconds its due
# rounds waited for a round slot and how many waited (trimtab_round_wait_seconds), so far.
replica_counters() {
  scrape "$1" | awk '/^trimtab_status_writes_total / {w = $2} /^trimtab_round_wait_seconds_sum / {s = $2}
    /^trimtab_round_wait_seconds_count / {c = $2} END {printf "%d %f %d\n", w, s, c}'
}
counters_before=() ticks_before=() rss_sum=()
for ((i = 0; i < REPLICAS; i++)); do
  counters_before[i]=$(replica_counters "$i")
  ticks_before[i]=$(cpu_ticks "${pids[$i]}")
  rss_sum[i]=0
done
api_counters >"$work/api_before"
prom_before=$(prom_queries)
samples=0
start=$SECONDS
while ((SECONDS - start < WINDOW)); do
  for ((i = 0; i < REPLICAS; i++)); do rss_sum[i]=$((rss_sum[i] + $(rss_kib "${pids[$i]}"))); done
  samples=$((samples + 1))
  sleep 5
done
elapsed=$((SECONDS - start))
api_counters >"$work/api_after"
prom_after=$(prom_queries)
# One line per replica: shards, RSS peak and mean (KiB), CPU ticks, policies evaluated, status
# writes, and the mean wait of a due round for a slot in the window (ms; "-" when none waited).
for ((i = 0; i < REPLICAS; i++)); do
  read -r shards evaluated < <(replica_state "$i")
  read -r writes0 wait_sum0 wait_count0 <<<"${counters_before[$i]}"
  read -r writes1 wait_sum1 wait_count1 < <(replica_counters "$i")
  wait_ms=$(awk -v s="$wait_sum1" -v s0="$wait_sum0" -v c=$((wait_count1 - wait_count0)) \
    'BEGIN {if (c > 0) printf "%.0f\n", (s - s0) / c * 1000; else print "-"}')
  echo "$i ${shards:-none} $(hwm_kib "${pids[$i]}") $((rss_sum[i] / samples)) $(($(cpu_ticks "${pids[$i]}") - ticks_before[i])) \
${evaluated:-0} $((writes1 - writes0)) $wait_ms"
done >"$work/replicas"
read -r done_ total < <(evaluated_share)
hz=$(getconf CLK_TCK)

python3 - "$elapsed" "$N" "$NAMESPACES" "$REPLICAS" "$SHARDS" "$hz" "$done_" "$total" "$prom_before" "$prom_after" \
  "$work/api_before" "$work/api_after" "$work/replicas" <<'PY'
import re, sys, collections
(elapsed, n, namespaces, replicas, shards, hz, done, total, prom_before, prom_after, before_file, after_file,
 replicas_file) = sys.argv[1:14]
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
per_replica = [line.split() for line in open(replicas_file)]
cpu = lambda ticks: int(ticks) / int(hz) / elapsed * 100
share = lambda part: f"{int(part) / max(int(total), 1) * 100:.1f} % ({part}/{total})"
print(f"| policies | namespaces | replicas × shards | RSS peak | RSS steady | CPU | evaluated within 2 intervals | API requests/s | API writes/s | Prometheus queries/s |")
print(f"|---|---|---|---|---|---|---|---|---|---|")
print(f"| {int(n):,} | {namespaces} | {replicas} × {shards} | {' + '.join(f'{int(r[2]) / 1024:.0f}' for r in per_replica)} MiB | "
      f"{' + '.join(f'{int(r[3]) / 1024:.0f}' for r in per_replica)} MiB | {' + '.join(f'{cpu(r[4]):.1f}' for r in per_replica)} % | "
      f"{share(done)} | {sum(rates.values()):.1f} | {writes:.1f} | {(float(prom_after) - float(prom_before)) / elapsed:.1f} |")
if int(replicas) > 1:
    print()
    print("| replica | shards held (ids) | RSS peak | RSS steady | CPU | its policies evaluated within 2 intervals | status patches/s | mean wait for a round slot |")
    print("|---|---|---|---|---|---|---|---|")
    for i, held, hwm, rss, ticks, evaluated, patches, wait_ms in per_replica:
        print(f"| bench-{i} | {held} | {int(hwm) / 1024:.0f} MiB | {int(rss) / 1024:.0f} MiB | {cpu(ticks):.1f} % | "
              f"{share(evaluated)} | {int(patches) / elapsed:.2f} | {wait_ms if wait_ms == '-' else wait_ms + ' ms'} |")
print()
print(f"Trimtab's own status patches/s (trimtab_status_writes_total, all replicas): "
      f"{sum(int(r[6]) for r in per_replica) / elapsed:.2f}")
print(f"Mean wait of a due round for a round slot (trimtab_round_wait_seconds), per replica: "
      f"{', '.join(r[7] if r[7] == '-' else r[7] + ' ms' for r in per_replica)}")
print()
print("API requests/s by verb and resource (every client of the API server; over 0.05/s):")
for (verb, resource), rate in sorted(rates.items(), key=lambda kv: -kv[1]):
    if rate > 0.05:
        print(f"  {verb:8} {resource:40} {rate:7.2f}")
PY
