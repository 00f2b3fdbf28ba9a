#!/usr/bin/env bash
# `just chart-lint`: the Helm chart's static checks.
#
#   1. helm lint --strict, with the default values and each charts/trimtab/ci/*.yaml;
#   2. every values.yaml key documented with a `# --` comment; values.schema.json rejecting typos
#      and contradictory settings;
#   3. helm template with each of those values files, validated by kubeconform -strict against the
#      Kubernetes 1.36 schemas and our CRDs (examples/ too);
#   4. the manifest policy test (e2e/tests/chart.rs): no RBAC wildcard, no write on deployments,
#      every container Pod Security `restricted`.
#
# kubeconform cannot download schemas here, so the Kubernetes ones are generated from a real API
# server's /openapi/v2 (e2e/chart/openapi2jsonschema.py) once and cached in
# ~/.cache/trimtab/schemas/v1.36.3 (TRIMTAB_SCHEMA_CACHE overrides ~/.cache/trimtab/schemas). The
# first run uses the cluster in KUBECONFIG, or the local one (e2e/cluster/up.sh), bringing it up and
# down again if it was not running. The CRD schemas are made fresh from crds/ on every run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

K8S_VERSION=1.36.3
CHART=charts/trimtab
SCHEMAS=${TRIMTAB_SCHEMA_CACHE:-$HOME/.cache/trimtab/schemas}/v$K8S_VERSION

log() { echo "[chart-lint] $*" >&2; }
die() { echo "[chart-lint] FAILED: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/trimtab-chart-lint.XXXXXX")
started_cluster=""
cleanup() {
  local rc=$?
  rm -rf "$work"
  if [[ -n "$started_cluster" ]]; then
    log "stopping the local cluster this check started"
    bash e2e/cluster/down.sh || rc=1
  fi
  [[ $rc -eq 0 ]] && log "all chart checks passed" || echo "[chart-lint] FAILED (exit $rc)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
TOOLS=$(bash e2e/cluster/tools.sh --print-path)
if [[ ! -x "$TOOLS/helm" || ! -x "$TOOLS/kubeconform" || ! -x "$TOOLS/kubectl" ]] || ! command -v promtool >/dev/null; then
  log "helm, kubeconform, kubectl or promtool missing: installing them (e2e/cluster/tools.sh)"
  bash e2e/cluster/tools.sh
fi
helm() { "$TOOLS/helm" "$@"; }
kubeconform() { "$TOOLS/kubeconform" "$@"; }
python3 -c 'import yaml' 2>/dev/null || die "python3 needs PyYAML (apt-get install python3-yaml, or pip install pyyaml)"

# The values files every check runs with: the defaults, then each ci/ file.
values_sets=(default)
for f in "$CHART"/ci/*.yaml; do values_sets+=("$f"); done
values_args() { [[ "$1" == default ]] && return 0; echo "-f $1"; }
set_name() { if [[ "$1" == default ]]; then echo default; else basename "$1" .yaml; fi; }

# ---------------------------------------------------------------- 1. helm lint
for set in "${values_sets[@]}"; do
  # shellcheck disable=SC2046
  helm lint --strict --quiet "$CHART" $(values_args "$set") -n trimtab-system >"$work/lint.log" 2>&1 ||
    { cat "$work/lint.log" >&2; die "helm lint ($(set_name "$set"))"; }
done
log "helm lint: ${#values_sets[@]} values sets OK"

# ---------------------------------------------------------------- 2. values: documented, schema-checked
python3 - "$CHART/values.yaml" <<'EOF' || die "values.yaml: every key needs a '# --' comment (on itself or a parent)"
import re, sys
# A key is documented by a comment block right above it whose first line starts with "# --", or
# by such a comment on one of its parents. A key that only groups others (its next key is deeper)
# needs none: its children are checked.
lines = open(sys.argv[1]).read().splitlines()
keys = []  # (line number, indent, key, documented)
block_doc = None  # None: the previous line is not a comment; else: does its block start with "# --"
for number, line in enumerate(lines, 1):
    stripped = line.strip()
    if stripped.startswith("#"):
        if block_doc is None:
            block_doc = stripped.startswith("# --")
        continue
    m = re.match(r"^( *)([A-Za-z0-9_.\-/]+):", line)
    if m:
        keys.append((number, len(m.group(1)), m.group(2), bool(block_doc)))
    block_doc = None
bad, parents = [], []  # parents: (indent, documented) of the keys enclosing the current one
for i, (number, indent, key, documented) in enumerate(keys):
    parents = [p for p in parents if p[0] < indent]
    inherited = any(doc for _, doc in parents)
    is_group = i + 1 < len(keys) and keys[i + 1][1] > indent
    if not (documented or inherited or is_group):
        bad.append(f"line {number}: {key}")
    parents.append((indent, documented))
if bad:
    print("undocumented values keys:\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
expect_failure() { # expect_failure WHAT EXPECTED-MESSAGE helm-template-args...
  local what=$1 expected=$2; shift 2
  if helm template trimtab "$CHART" -n trimtab-system "$@" >"$work/neg.out" 2>&1; then
    die "$what: helm template accepted it"
  fi
  grep -qiF -- "$expected" "$work/neg.out" || { cat "$work/neg.out" >&2; die "$what: the error does not say '$expected'"; }
}
expect_failure "a misspelt key (operator.replica)" "additional properties 'replica' not allowed" --set operator.replica=3
expect_failure "a misspelt top-level key (networkPolicies)" "additional properties 'networkPolicies' not allowed" --set networkPolicies.enabled=false
expect_failure "a URL without a scheme" "/prometheus/url" --set prometheus.url=prometheus:9090
expect_failure "a bad duration" "/prometheus/timeout" --set prometheus.timeout=5
expect_failure "failurePolicy typo" "/webhook/failurePolicy" --set webhook.failurePolicy=ignore
expect_failure "credentials Secret without a key" "bearerTokenKey" --set prometheus.auth.existingSecret=creds
expect_failure "bearer and basic auth together" "not both" --set prometheus.auth.existingSecret=creds \
  --set prometheus.auth.bearerTokenKey=t --set prometheus.auth.usernameKey=u --set prometheus.auth.passwordKey=p
expect_failure "two replicas without leader election" "leaderElection" --set operator.leaderElection=false
log "values: every key documented; typos and contradictions rejected"

# ---------------------------------------------------------------- 3. kubeconform
if [[ ! -f "$SCHEMAS/.complete" ]]; then
  log "no cached Kubernetes $K8S_VERSION schemas in $SCHEMAS: generating them from an API server"
  kubeconfig=${KUBECONFIG:-}
  if [[ -z "$kubeconfig" ]]; then
    if kubeconfig=$(bash e2e/cluster/kubeconfig.sh 2>/dev/null) &&
      "$TOOLS/kubectl" --kubeconfig "$kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
      log "using the running local cluster"
    else
      log "bringing up the local cluster (e2e/cluster/up.sh); it is stopped again at exit"
      started_cluster=1
      bash e2e/cluster/up.sh
      kubeconfig=$(bash e2e/cluster/kubeconfig.sh)
    fi
  fi
  server=$("$TOOLS/kubectl" --kubeconfig "$kubeconfig" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
  [[ "$server" == "v$K8S_VERSION" ]] || die "the API server in $kubeconfig is $server; the schemas must come from v$K8S_VERSION"
  "$TOOLS/kubectl" --kubeconfig "$kubeconfig" get --raw /openapi/v2 >"$work/openapi-v2.json"
  rm -rf "$SCHEMAS.tmp" && mkdir -p "$SCHEMAS.tmp"
  python3 e2e/chart/openapi2jsonschema.py kubernetes "$work/openapi-v2.json" "$SCHEMAS.tmp" >&2
  rm -rf "$SCHEMAS" && mv "$SCHEMAS.tmp" "$SCHEMAS" && touch "$SCHEMAS/.complete"
fi
python3 e2e/chart/openapi2jsonschema.py crds "$work/crd-schemas" crds/trimtab.dev.yaml >/dev/null

# No schema here for prometheus-operator's and cert-manager's kinds: those are skipped, by name
# (the PrometheusRule's rules are checked by promtool below).
validate() { # validate FILE...
  kubeconform -strict -summary -exit-on-error=false -kubernetes-version "$K8S_VERSION" \
    -schema-location "$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$work/crd-schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
    -skip ServiceMonitor,PrometheusRule,Certificate,Issuer "$@"
}
mkdir -p "$work/rendered"
for set in "${values_sets[@]}"; do
  out="$work/rendered/$(set_name "$set").yaml"
  # shellcheck disable=SC2046
  helm template trimtab "$CHART" -n trimtab-system --include-crds $(values_args "$set") >"$out"
  validate "$out" >&2 || die "kubeconform: $(set_name "$set") ($out above)"
done
validate examples/*.yaml >&2 || die "kubeconform: examples/"
log "kubeconform -strict: every rendering and every example valid"

# ---------------------------------------------------------------- 4. the alerts
# The rules file the PrometheusRule carries: valid for Prometheus, each alert fired by its unit
# test, and the rendered PrometheusRule carries exactly that file.
command -v promtool >/dev/null || die "promtool missing: it comes with Debian's prometheus package (e2e/cluster/tools.sh installs it)"
promtool check rules "$CHART/files/prometheus-rules.yaml" >&2 || die "promtool check rules"
(cd e2e/chart && promtool test rules prometheus-rules.test.yaml) >&2 || die "promtool test rules (e2e/chart/prometheus-rules.test.yaml)"
helm template trimtab "$CHART" -n trimtab-system --set prometheus.rules.enabled=true --show-only templates/prometheusrule.yaml >"$work/rule.yaml"
python3 - "$work/rule.yaml" "$CHART/files/prometheus-rules.yaml" <<'EOF' || die "the rendered PrometheusRule differs from files/prometheus-rules.yaml"
import sys, yaml
rendered, source = (yaml.safe_load(open(p)) for p in sys.argv[1:3])
assert rendered["kind"] == "PrometheusRule" and rendered["spec"]["groups"] == source["groups"], "differ"
EOF
log "alerts: promtool check and unit tests pass; the PrometheusRule carries them"

# ---------------------------------------------------------------- 5. the manifest policy test
TRIMTAB_CHART_RENDERED="$work/rendered" cargo test --locked --quiet -p trimtab-e2e --test chart -- --ignored rendered ||
  die "the manifest policy test (e2e/tests/chart.rs)"
