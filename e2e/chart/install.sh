#!/usr/bin/env bash
# The Helm chart, installed for real on the cluster in KUBECONFIG (default: the local e2e cluster).
#
#   install.sh install     helm install into a namespace that enforces Pod Security `restricted`,
#                          wait for both replicas, check the ServiceAccount's permissions, and print
#                          the path of a kubeconfig holding a token of the chart's ServiceAccount:
#                          run the operator with it and it has exactly the chart's RBAC.
#   install.sh operator    run the operator beside the cluster with that kubeconfig (exactly the chart's
#                          RBAC) and the chart's settings, and check that it scales a Deployment,
#                          reports status and Events, and keeps its webhook certificate, caBundle
#                          and Lease; TRIMTAB_BIN (default target/debug/trimtab, built if missing).
#   install.sh upgrade     write what the operator writes (webhook certificate, caBundle, Lease) as
#                          the ServiceAccount, helm upgrade with changed values, and check that the
#                          upgrade rolled the pods and kept what the operator wrote.
#   install.sh uninstall   helm uninstall, and check that nothing is left but the CRDs.
#   install.sh lifecycle   all four in turn (and uninstall on failure): the e2e test.
#
# The operator's pods land on kwok's fake nodes, where they "run" without running: the chart's
# objects, their admission (Pod Security, RBAC, schemas) and Helm's lifecycle are what is tested.
#
# Env: TRIMTAB_RELEASE (trimtab), TRIMTAB_NAMESPACE (trimtab-system), KUBECONFIG,
#      TRIMTAB_CHART_STATE (where the ServiceAccount's kubeconfig is written; ${TMPDIR:-/tmp}/trimtab-chart),
#      PROMETHEUS_URL (set as prometheus.url; default: the local cluster's, or the chart's default),
#      TRIMTAB_HELM_FLAGS (extra flags for helm install and upgrade, e.g. --skip-crds when the CRDs
#      are installed another way).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

RELEASE=${TRIMTAB_RELEASE:-trimtab}
NAMESPACE=${TRIMTAB_NAMESPACE:-trimtab-system}
CHART=charts/trimtab
STATE_DIR=${TRIMTAB_CHART_STATE:-${TMPDIR:-/tmp}/trimtab-chart}
SA_KUBECONFIG="$STATE_DIR/$RELEASE.kubeconfig"
CREATED_BY=e2e-chart-install

log() { echo "[install.sh $RELEASE] $*" >&2; }
die() { echo "[install.sh $RELEASE] FAILED: $*" >&2; exit 1; }

TOOLS=$(bash e2e/cluster/tools.sh --print-path)
[[ -x "$TOOLS/helm" && -x "$TOOLS/kubectl" ]] || die "helm or kubectl missing in $TOOLS: run bash e2e/cluster/tools.sh"
if [[ -z "${KUBECONFIG:-}" ]]; then
  KUBECONFIG=$(bash e2e/cluster/kubeconfig.sh) || die "no KUBECONFIG and no local cluster (bash e2e/cluster/up.sh)"
fi
export KUBECONFIG
kc() { "$TOOLS/kubectl" "$@"; }
as_sa() { "$TOOLS/kubectl" --kubeconfig "$SA_KUBECONFIG" "$@"; }
helm() { "$TOOLS/helm" "$@"; }

# The operator process `install.sh operator` starts, stopped however this script ends.
OPERATOR_PID=""
OPERATOR_LOG=""
stop_operator() {
  [[ -n "$OPERATOR_PID" ]] || return 0
  kill "$OPERATOR_PID" 2>/dev/null || true
  wait "$OPERATOR_PID" 2>/dev/null || true
  OPERATOR_PID=""
}
on_exit() {
  local rc=$?
  stop_operator
  if [[ $rc -ne 0 && -n "$OPERATOR_LOG" && -f "$OPERATOR_LOG" ]]; then
    echo "---- the operator's log ($OPERATOR_LOG), last 40 lines" >&2
    tail -n 40 "$OPERATOR_LOG" >&2
  fi
  if [[ -n "${LIFECYCLE:-}" && -z "${LIFECYCLE_DONE:-}" ]]; then
    log "failed: cleaning up the release, its namespace and the smoke test's"
    helm uninstall "$RELEASE" -n "$NAMESPACE" --wait >/dev/null 2>&1 || true
    kc delete namespace "$RELEASE-smoke" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    kc delete capacitypool "$RELEASE-smoke-spot" "$RELEASE-smoke-on-demand" --ignore-not-found >/dev/null 2>&1 || true
    kc -n "$NAMESPACE" delete lease "trimtab-leader-$RELEASE-smoke" --ignore-not-found >/dev/null 2>&1 || true
    if [[ $(kc get namespace "$NAMESPACE" -o jsonpath='{.metadata.annotations.trimtab\.dev/created-by}' 2>/dev/null) == "$CREATED_BY" ]]; then
      kc delete namespace "$NAMESPACE" --wait=false >/dev/null 2>&1 || true
    fi
    rm -f "$SA_KUBECONFIG" "$OPERATOR_LOG"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

fullname() { # the chart's fullname for RELEASE
  if [[ "$RELEASE" == *trimtab* ]]; then echo "${RELEASE:0:50}"; else echo "${RELEASE}-trimtab" | cut -c1-50; fi
}
FULLNAME=$(fullname)
SERVICE_ACCOUNT=$FULLNAME
SELECTOR="app.kubernetes.io/instance=$RELEASE"

prometheus_url() {
  if [[ -n "${PROMETHEUS_URL:-}" ]]; then echo "$PROMETHEUS_URL"; else bash e2e/cluster/prometheus-url.sh 2>/dev/null || true; fi
}

# Polls CMD until it succeeds, up to SECONDS.
wait_for() { # wait_for SECONDS WHAT CMD...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [[ -z "${OPERATOR_EXITED:-}" ]] || die "the operator exited while waiting for $what"
    [[ $SECONDS -lt $deadline ]] || die "timed out after ${seconds}s waiting for $what"
    sleep 1
  done
}

# ------------------------------------------------------------------------------------ install
write_sa_kubeconfig() {
  local token server ca_data ca_file
  # As long as the API server allows; the e2e run is shorter.
  token=$(kc -n "$NAMESPACE" create token "$SERVICE_ACCOUNT" --duration=6h)
  server=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca_data=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  ca_file=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  mkdir -p "$STATE_DIR"
  rm -f "$SA_KUBECONFIG"
  (
    umask 077
    local k=("$TOOLS/kubectl" --kubeconfig "$SA_KUBECONFIG")
    if [[ -n "$ca_data" ]]; then
      echo "$ca_data" | base64 -d >"$STATE_DIR/$RELEASE-ca.crt"
      ca_file="$STATE_DIR/$RELEASE-ca.crt"
    fi
    [[ -n "$ca_file" ]] || die "the admin kubeconfig has no cluster CA"
    "${k[@]}" config set-cluster cluster --server="$server" --certificate-authority="$ca_file" --embed-certs=true >/dev/null
    rm -f "$STATE_DIR/$RELEASE-ca.crt"
    "${k[@]}" config set-credentials "system:serviceaccount:$NAMESPACE:$SERVICE_ACCOUNT" --token="$token" >/dev/null
    "${k[@]}" config set-context "$RELEASE" --cluster=cluster --user="system:serviceaccount:$NAMESPACE:$SERVICE_ACCOUNT" \
      --namespace="$NAMESPACE" >/dev/null
    "${k[@]}" config use-context "$RELEASE" >/dev/null
  )
}

# The ServiceAccount's permissions, asked of the API server as the ServiceAccount itself.
check_permissions() {
  local failures=0 expect verb rest answer
  set -f # the table's "*" is a wildcard for the API server, not for the shell
  while read -r expect verb rest; do
    [[ -z "$expect" || "$expect" == \#* ]] && continue
    # shellcheck disable=SC2086
    answer=$(as_sa auth can-i "$verb" $rest 2>/dev/null || true)
    if [[ "$answer" != "$expect" ]]; then
      echo "  can-i $verb $rest: got '$answer', want '$expect'" >&2
      failures=$((failures + 1))
    fi
  done <<EOF
# The operator's work: read policies, pools, workloads; scale through /scale only.
yes list scalingpolicies.trimtab.dev --all-namespaces
yes watch scalingpolicies.trimtab.dev --all-namespaces
yes patch scalingpolicies.trimtab.dev --subresource=status -n default
no  update scalingpolicies.trimtab.dev -n default
no  create scalingpolicies.trimtab.dev -n default
yes list capacitypools.trimtab.dev
no  create capacitypools.trimtab.dev
yes get deployments.apps -n default
yes update deployments.apps --subresource=scale -n default
yes patch deployments.apps --subresource=scale -n default
no  patch deployments.apps -n default
no  update deployments.apps -n default
no  delete deployments.apps -n default
no  update statefulsets.apps --subresource=scale -n default
no  patch replicasets.apps -n default
yes list pods -n default
yes create pods --subresource=eviction -n default
no  create pods -n default
no  delete pods -n default
no  patch pods -n default
yes list nodes
no  patch nodes
yes list horizontalpodautoscalers.autoscaling -n default
no  create horizontalpodautoscalers.autoscaling -n default
yes create events.events.k8s.io -n default
# Leader election and the webhook certificate: the release namespace, the chart's own objects only.
yes create leases.coordination.k8s.io -n $NAMESPACE
yes update leases.coordination.k8s.io/trimtab-leader -n $NAMESPACE
no  create leases.coordination.k8s.io -n default
yes update secrets/$FULLNAME-webhook-tls -n $NAMESPACE
no  get secrets -n $NAMESPACE
no  list secrets -n $NAMESPACE
no  get secrets/other -n $NAMESPACE
no  get secrets/$FULLNAME-webhook-tls -n default
no  create secrets -n $NAMESPACE
yes update mutatingwebhookconfigurations.admissionregistration.k8s.io/$FULLNAME
no  update mutatingwebhookconfigurations.admissionregistration.k8s.io/other
no  create mutatingwebhookconfigurations.admissionregistration.k8s.io
# Nothing that escalates.
no  create clusterrolebindings.rbac.authorization.k8s.io
no  escalate clusterroles.rbac.authorization.k8s.io
no  impersonate serviceaccounts
no  create serviceaccounts/token -n $NAMESPACE
no  * *
EOF
  set +f
  # KEDA's ScaledObjects, which kubectl auth can-i cannot name while KEDA is not installed.
  answer=$(as_sa create --validate=false -o jsonpath='{.status.allowed}' -f - <<EOF
{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
 "spec": {"resourceAttributes": {"group": "keda.sh", "resource": "scaledobjects", "verb": "list", "namespace": "default"}}}
EOF
)
  [[ "$answer" == true ]] || { echo "  list scaledobjects.keda.sh: got '$answer', want 'true'" >&2; failures=$((failures + 1)); }
  [[ $failures -eq 0 ]] || die "$failures permission(s) of system:serviceaccount:$NAMESPACE:$SERVICE_ACCOUNT differ from the chart's intent"
  log "permissions checked as the ServiceAccount (kubectl auth can-i): least privilege holds"
}

namespace_terminating() { [[ $(kc get namespace "$NAMESPACE" -o jsonpath='{.status.phase}' 2>/dev/null) == Terminating ]]; }
namespace_settled() { ! namespace_terminating; }

install() {
  # A namespace still being deleted (by an earlier uninstall) accepts nothing new.
  wait_for 120 "namespace $NAMESPACE to finish terminating" namespace_settled
  if ! kc get namespace "$NAMESPACE" >/dev/null 2>&1; then
    kc create namespace "$NAMESPACE" >/dev/null
    kc annotate namespace "$NAMESPACE" "trimtab.dev/created-by=$CREATED_BY" >/dev/null
  fi
  # The API server itself refuses any pod of the chart that does not meet `restricted`.
  kc label --overwrite namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest pod-security.kubernetes.io/warn=restricted \
    pod-security.kubernetes.io/audit=restricted >/dev/null
  local url args=()
  url=$(prometheus_url)
  [[ -n "$url" ]] && args+=(--set "prometheus.url=$url")
  # shellcheck disable=SC2206
  args+=(${TRIMTAB_HELM_FLAGS:-})
  log "helm install $RELEASE $CHART -n $NAMESPACE ${args[*]}"
  helm install "$RELEASE" "$CHART" -n "$NAMESPACE" "${args[@]}" --wait --timeout 3m >&2
  check_running 1
  write_sa_kubeconfig
  check_permissions
  # Real reads as the ServiceAccount, as the operator makes them.
  local read
  for read in "get scalingpolicies.trimtab.dev --all-namespaces" "get capacitypools.trimtab.dev" "get nodes" \
    "get deployments.apps --all-namespaces" "-n $NAMESPACE get lease trimtab-leader"; do
    # shellcheck disable=SC2086
    as_sa $read >/dev/null 2>"$STATE_DIR/read.err" || { cat "$STATE_DIR/read.err" >&2; die "kubectl $read as the ServiceAccount"; }
  done
  rm -f "$STATE_DIR/read.err"
  log "installed; the ServiceAccount's kubeconfig: $SA_KUBECONFIG"
}

# Both replicas exist (so Pod Security admitted them), are Ready, and run revision REVISION.
check_running() {
  local revision=$1 pods
  helm status "$RELEASE" -n "$NAMESPACE" -o json | grep -q "\"version\":$revision" || die "release is not at revision $revision"
  kc -n "$NAMESPACE" rollout status deployment "$FULLNAME" --timeout=120s >&2 || die "the Deployment did not roll out"
  pods=$(kc -n "$NAMESPACE" get pods -l "$SELECTOR" --field-selector=status.phase=Running -o name | wc -l)
  [[ $pods -eq 2 ]] || die "expected 2 running operator pods, found $pods"
  if kc -n "$NAMESPACE" get events --field-selector=reason=FailedCreate -o name | grep -q .; then
    kc -n "$NAMESPACE" get events --field-selector=reason=FailedCreate >&2
    die "a pod was refused (Pod Security?)"
  fi
  log "revision $revision: 2 operator pods Running and Ready under Pod Security 'restricted'"
}

# ------------------------------------------------------------------------------------ operator
# The operator itself, under the chart's identity: it must scale a Deployment and report, and every
# write it makes (scale, status, Events, Lease, webhook Secret and caBundle) must be allowed.
operator() {
  [[ -f "$SA_KUBECONFIG" ]] || write_sa_kubeconfig
  local bin=${TRIMTAB_BIN:-$PWD/target/debug/trimtab} url smoke="$RELEASE-smoke" log="$STATE_DIR/$RELEASE-operator.log"
  if [[ ! -x "$bin" ]]; then
    log "building the operator (cargo build -p trimtab)"
    cargo build --locked --quiet -p trimtab --bin trimtab
    bin=$PWD/target/debug/trimtab
  fi
  url=$(prometheus_url)
  [[ -n "$url" ]] || die "the operator needs a Prometheus: set PROMETHEUS_URL (or bring up the local cluster)"

  wait_for 120 "namespace $smoke to finish terminating" smoke_settled "$smoke"
  kc create namespace "$smoke" >/dev/null
  kc apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $smoke}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          resources: {requests: {cpu: 250m, memory: 256Mi}}
---
# 120 requests a second at 20 per replica: ceil(120 / 20) = 6 replicas, reached in one step
# (HPA's default scale-up allows +4 pods per 15 s from 2).
apiVersion: trimtab.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: web, namespace: $smoke}
spec:
  targetRef: {kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 10
  objectives:
    - {name: rps-per-replica, kind: AverageValue, query: "vector(120)", target: "20"}
  placement: {spotPool: $smoke-spot, onDemandPool: $smoke-on-demand, onDemandBase: 1, spotPercentage: 50}
---
# Its pools (cluster-scoped: named after the smoke namespace, deleted after), so that the operator
# also reads pods and nodes and may rebalance through evictions.
apiVersion: trimtab.dev/v1alpha1
kind: CapacityPool
metadata: {name: $smoke-spot}
spec:
  capacityType: Spot
  nodeSelector: {karpenter.sh/capacity-type: spot}
  tolerations: [{key: karpenter.sh/capacity-type, operator: Equal, value: spot, effect: NoSchedule}]
  interruptionTaints: [karpenter.sh/disrupted]
  price: {cpuCoreHour: "0.0105", memoryGiBHour: "0.0014"}
---
apiVersion: trimtab.dev/v1alpha1
kind: CapacityPool
metadata: {name: $smoke-on-demand}
spec:
  capacityType: OnDemand
  nodeSelector: {karpenter.sh/capacity-type: on-demand}
  price: {cpuCoreHour: "0.035", memoryGiBHour: "0.0047"}
EOF

  # The chart's own settings (the Deployment's env), as the pods would run with them, but watching
  # the smoke namespace only: other tests' policies elsewhere in the cluster are not its business.
  # (Its Lease is then trimtab-leader-$smoke, which it creates itself and which is deleted after.)
  log "running $bin as system:serviceaccount:$NAMESPACE:$SERVICE_ACCOUNT (log: $log)"
  KUBECONFIG="$SA_KUBECONFIG" RUST_LOG=info,kube=warn POD_NAME="$RELEASE-e2e" POD_NAMESPACE="$NAMESPACE" \
    WATCH_NAMESPACE="$smoke" TRIMTAB_LEADER_ELECT=true PROMETHEUS_URL="$url" PROMETHEUS_TIMEOUT=2s \
    TRIMTAB_METRICS_ADDR=127.0.0.1:0 TRIMTAB_WEBHOOK=true TRIMTAB_WEBHOOK_ADDR=127.0.0.1:0 \
    TRIMTAB_WEBHOOK_SERVICE="$FULLNAME-webhook" TRIMTAB_WEBHOOK_CONFIGURATION="$FULLNAME" \
    TRIMTAB_WEBHOOK_SECRET="$FULLNAME-webhook-tls" \
    "$bin" run >"$log" 2>&1 &
  OPERATOR_PID=$!
  OPERATOR_LOG=$log
  wait_for 90 "the operator to scale Deployment $smoke/web to 6" while_operator_runs replicas_are "$smoke" web 6
  wait_for 30 "ScalingPolicy $smoke/web to report Ready=True and desiredReplicas 6" while_operator_runs policy_ready "$smoke" web
  wait_for 60 "the operator to publish an Event in namespace $smoke" while_operator_runs events_exist "$smoke"
  # Checked while it runs: a replica that stops releases the Lease.
  [[ $(kc -n "$NAMESPACE" get lease "trimtab-leader-$smoke" -o jsonpath='{.spec.holderIdentity}') == "$RELEASE-e2e" ]] ||
    die "the operator did not take the leader Lease"
  stop_operator
  kc -n "$NAMESPACE" delete lease "trimtab-leader-$smoke" >/dev/null
  if grep -qiE 'forbidden|cannot (patch|update|create|get|list|watch)' "$log"; then
    grep -iE 'forbidden|cannot' "$log" | head -20 >&2
    die "the operator was refused something under the chart's RBAC (above)"
  fi
  local ca
  ca=$(kc -n "$NAMESPACE" get secret "$FULLNAME-webhook-tls" -o jsonpath='{.data.ca\.crt}')
  kc -n "$NAMESPACE" get secret "$FULLNAME-webhook-tls" -o jsonpath='{.metadata.annotations}' | grep -q 'trimtab.dev/not-after' ||
    die "the operator did not write its webhook certificate into $FULLNAME-webhook-tls"
  [[ -n "$ca" && $(kc get mutatingwebhookconfiguration "$FULLNAME" -o jsonpath='{.webhooks[0].clientConfig.caBundle}') == "$ca" ]] ||
    die "the operator did not publish its CA into MutatingWebhookConfiguration $FULLNAME"
  kc -n "$smoke" get scalingpolicy web -o jsonpath='{.status.placement}' | grep -q '"spot"' ||
    die "the operator reported no placement (it reads pods and nodes for it)"
  kc delete namespace "$smoke" --wait=false >/dev/null
  kc delete capacitypool "$smoke-spot" "$smoke-on-demand" --ignore-not-found >/dev/null
  rm -f "$log"
  OPERATOR_LOG=""
  log "the operator, with the chart's RBAC and settings, scaled $smoke/web 2 -> 6, reported status, placement and Events, and wrote its certificate, caBundle and Lease"
}

# Runs CMD while the operator process runs; once it has exited, notes that (for wait_for) and fails.
OPERATOR_EXITED=""
while_operator_runs() {
  if ! kill -0 "$OPERATOR_PID" 2>/dev/null; then
    OPERATOR_EXITED=1
    return 1
  fi
  "$@"
}
smoke_settled() { [[ $(kc get namespace "$1" -o jsonpath='{.status.phase}' 2>/dev/null) != Terminating ]]; }
events_exist() { kc -n "$1" get events -o jsonpath='{range .items[*]}{.reason}{"\n"}{end}' | grep -q .; }
replicas_are() { [[ $(kc -n "$1" get deployment "$2" -o jsonpath='{.spec.replicas}') == "$3" ]]; }
policy_ready() {
  [[ $(kc -n "$1" get scalingpolicy "$2" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True &&
    $(kc -n "$1" get scalingpolicy "$2" -o jsonpath='{.status.desiredReplicas}') == 6 ]]
}

# ------------------------------------------------------------------------------------ upgrade
upgrade() {
  [[ -f "$SA_KUBECONFIG" ]] || write_sa_kubeconfig
  # What the operator writes at runtime, written here as the ServiceAccount (proving it may).
  local dir ca tls key not_after=2099-01-01T00:00:00Z
  dir=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=trimtab e2e CA" \
    -keyout "$dir/key.pem" -out "$dir/ca.pem" 2>/dev/null || { rm -rf "$dir"; die "openssl could not make a test CA"; }
  ca=$(base64 -w0 <"$dir/ca.pem"); tls=$ca; key=$(base64 -w0 <"$dir/key.pem")
  rm -rf "$dir"
  as_sa -n "$NAMESPACE" patch secret "$FULLNAME-webhook-tls" --type=merge -p \
    "{\"metadata\":{\"annotations\":{\"trimtab.dev/not-after\":\"$not_after\"}},\"data\":{\"ca.crt\":\"$ca\",\"tls.crt\":\"$tls\",\"tls.key\":\"$key\"}}" >/dev/null
  as_sa patch mutatingwebhookconfiguration "$FULLNAME" --type=json \
    -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca\"}]" >/dev/null
  as_sa -n "$NAMESPACE" patch lease trimtab-leader --type=merge \
    -p '{"spec":{"holderIdentity":"e2e-holder","leaseDurationSeconds":15}}' >/dev/null
  local before
  before=$(kc -n "$NAMESPACE" get deployment "$FULLNAME" -o jsonpath='{.metadata.generation}')

  local url args=()
  url=$(prometheus_url)
  [[ -n "$url" ]] && args+=(--set "prometheus.url=$url")
  # shellcheck disable=SC2206
  args+=(${TRIMTAB_HELM_FLAGS:-})
  log "helm upgrade $RELEASE (operator.logLevel=debug)"
  helm upgrade "$RELEASE" "$CHART" -n "$NAMESPACE" "${args[@]}" --set operator.logLevel=debug --wait --timeout 3m >&2
  check_running 2
  [[ $(kc -n "$NAMESPACE" get deployment "$FULLNAME" -o jsonpath='{.metadata.generation}') -gt $before ]] ||
    die "the upgrade did not change the Deployment"
  kc -n "$NAMESPACE" get deployment "$FULLNAME" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="RUST_LOG")].value}' |
    grep -qx debug || die "the upgraded Deployment does not have RUST_LOG=debug"
  [[ $(kc -n "$NAMESPACE" get secret "$FULLNAME-webhook-tls" -o jsonpath='{.data.ca\.crt}') == "$ca" ]] ||
    die "the upgrade lost the webhook certificate the operator wrote"
  [[ $(kc -n "$NAMESPACE" get secret "$FULLNAME-webhook-tls" -o jsonpath='{.metadata.annotations.trimtab\.dev/not-after}') == "$not_after" ]] ||
    die "the upgrade lost the certificate's annotations"
  [[ $(kc get mutatingwebhookconfiguration "$FULLNAME" -o jsonpath='{.webhooks[0].clientConfig.caBundle}') == "$ca" ]] ||
    die "the upgrade lost the webhook's caBundle"
  [[ $(kc -n "$NAMESPACE" get lease trimtab-leader -o jsonpath='{.spec.holderIdentity}') == e2e-holder ]] ||
    die "the upgrade reset the leader Lease"
  log "upgraded: pods rolled; the certificate, caBundle and Lease holder the operator wrote were kept"
}

# ------------------------------------------------------------------------------------ uninstall
leftovers() { # prints every object left in the namespace (but its defaults) or labelled with the release
  local namespaced cluster
  namespaced=$(kc api-resources --namespaced=true --verbs=list -o name | grep -vE '^(events|events\.events\.k8s\.io)$' | paste -sd, -)
  cluster=$(kc api-resources --namespaced=false --verbs=list -o name | paste -sd, -)
  if kc get namespace "$NAMESPACE" >/dev/null 2>&1; then
    kc -n "$NAMESPACE" get "$namespaced" -o name 2>/dev/null |
      grep -vxE 'configmap/kube-root-ca.crt|serviceaccount/default' || true
  fi
  kc get "$namespaced" --all-namespaces -l "$SELECTOR" -o name 2>/dev/null || true
  kc get "$cluster" -l "$SELECTOR" -o name 2>/dev/null || true
}

uninstall() {
  log "helm uninstall $RELEASE"
  helm uninstall "$RELEASE" -n "$NAMESPACE" --wait --timeout 3m >&2
  local deadline=$((SECONDS + 90)) left
  while left=$(leftovers) && [[ -n "$left" ]]; do
    [[ $SECONDS -lt $deadline ]] || { echo "$left" >&2; die "helm uninstall left the objects above behind"; }
    sleep 2
  done
  kc get crd scalingpolicies.trimtab.dev capacitypools.trimtab.dev >/dev/null || die "the CRDs are gone: helm must keep them"
  if [[ $(kc get namespace "$NAMESPACE" -o jsonpath='{.metadata.annotations.trimtab\.dev/created-by}' 2>/dev/null) == "$CREATED_BY" ]]; then
    kc delete namespace "$NAMESPACE" --wait=false >/dev/null
  fi
  rm -f "$SA_KUBECONFIG"
  rmdir "$STATE_DIR" 2>/dev/null || true
  log "uninstalled: nothing left but the CRDs"
}

# ------------------------------------------------------------------------------------ lifecycle
LIFECYCLE=""
LIFECYCLE_DONE=""
lifecycle() {
  helm status "$RELEASE" -n "$NAMESPACE" >/dev/null 2>&1 && die "release $RELEASE already exists in $NAMESPACE"
  LIFECYCLE=1
  install
  operator
  upgrade
  uninstall
  LIFECYCLE_DONE=1
  log "lifecycle passed: install, the operator under the chart's identity, upgrade, uninstall"
}

case "${1:-}" in
  install) install; echo "$SA_KUBECONFIG" ;;
  operator) operator ;;
  upgrade) upgrade ;;
  uninstall) uninstall ;;
  lifecycle) lifecycle ;;
  *) echo "usage: $0 install|operator|upgrade|uninstall|lifecycle" >&2; exit 2 ;;
esac
