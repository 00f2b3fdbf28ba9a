#!/usr/bin/env bash
# Build (once) every binary the e2e cluster needs, from the Go module proxy, into a
# version-keyed cache directory outside the repo; install Prometheus from Debian.
#
#   e2e/cluster/tools.sh               build what is missing (when all is cached: no-op, ~10 ms)
#   e2e/cluster/tools.sh --print-path  print the bin dir only (builds nothing)
#
# Env: TRIMTAB_TOOLS_CACHE (default ~/.cache/trimtab/tools), TRIMTAB_BUILD_JOBS
# (go build -p, default 2), TRIMTAB_SKIP_PROMETHEUS=1 (don't touch apt).
set -euo pipefail

# Pinned versions. The k8s and etcd versions must match e2e/tools/*/go.mod (checked below).
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.14
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.21.4
KUBECONFORM_VERSION=v0.7.0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS_SRC=$(cd "$HERE/../tools" && pwd)
CACHE_ROOT=${TRIMTAB_TOOLS_CACHE:-$HOME/.cache/trimtab/tools}
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_kubeconform-${KUBECONFORM_VERSION}"
BIN="$CACHE_ROOT/$KEY/bin"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$BIN"
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--print-path]" >&2
  exit 2
fi

log() { echo "[tools.sh $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[tools.sh] ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [[ $rc -eq 0 ]] || echo "[tools.sh] FAILED (exit $rc) at line $LINENO; see output above" >&2' EXIT

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl helm kubeconform)

missing_binaries() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || echo "$b"; done
}

# ---------------------------------------------------------------- Prometheus (Debian)
ensure_prometheus() {
  [[ "${TRIMTAB_SKIP_PROMETHEUS:-0}" == 1 ]] && return 0
  command -v prometheus >/dev/null 2>&1 && return 0
  log "prometheus not found: installing Debian package 'prometheus'"
  local SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install prometheus"
    SUDO=sudo
  fi
  # The package ships a system service; we run our own prometheus process per cluster,
  # so forbid service starts during the install with a policy-rc.d that says "no" (101),
  # unless one is already there (Docker-style images have exactly that).
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus; } || rc=$?
  [[ $made_policy == 1 ]] && $SUDO rm -f /usr/sbin/policy-rc.d
  [[ $rc -eq 0 ]] || die "apt-get install prometheus failed (rc=$rc)"
  # Belt and braces for hosts with systemd: make sure no system service stays enabled/running.
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  command -v prometheus >/dev/null 2>&1 || die "prometheus still not on PATH after install"
  log "installed $(prometheus --version 2>&1 | head -1)"
}

# Fast path: everything present -> no go, no apt, no lock.
if [[ -z "$(missing_binaries)" ]]; then
  ensure_prometheus
  exit 0
fi

# Debian-style images keep Go in /usr/local/go/bin, which a non-login shell may lack.
command -v go >/dev/null 2>&1 || [[ ! -x /usr/local/go/bin/go ]] || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || die "go not found on PATH (need Go >= 1.26)"
mkdir -p "$BIN"

# One builder at a time per cache dir (up.sh and CI may both call us).
exec 9>"$CACHE_ROOT/$KEY/.lock"
if ! flock -n 9; then
  log "another tools.sh holds $CACHE_ROOT/$KEY/.lock; waiting for it"
  flock 9
fi

ensure_prometheus

# Build settings: never fetch another toolchain, static binaries, reproducible paths.
export GOTOOLCHAIN=local CGO_ENABLED=0
JOBS=${TRIMTAB_BUILD_JOBS:-2}
# nice: leave room for concurrent cargo builds on a 2-core machine.
GO=(nice -n 10 go)
BUILD_FLAGS=(-trimpath -p "$JOBS")

grep -q "k8s.io/kubernetes $K8S_VERSION" "$TOOLS_SRC/k8s-bin/go.mod" ||
  die "e2e/tools/k8s-bin/go.mod does not require k8s.io/kubernetes $K8S_VERSION"
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$TOOLS_SRC/etcd-bin/go.mod" ||
  die "e2e/tools/etcd-bin/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION"

# Build into a scratch dir, then mv into place: a killed build never leaves a
# half-written binary that the fast path would take as done.
rm -rf "$CACHE_ROOT/$KEY"/.stage.*   # left by a build that was SIGKILLed; we hold the lock
STAGE=$(mktemp -d "$CACHE_ROOT/$KEY/.stage.XXXXXX")
trap 'rc=$?; rm -rf "$STAGE"; [[ $rc -eq 0 ]] || echo "[tools.sh] FAILED (exit $rc); see output above" >&2' EXIT

install_staged() { local b; for b in "$@"; do chmod +x "$STAGE/$b"; mv -f "$STAGE/$b" "$BIN/$b"; done; }
need() { local b; for b in "$@"; do [[ -x "$BIN/$b" ]] || return 0; done; return 1; }
timed() { local t0=$SECONDS; "$@"; log "  done in $((SECONDS - t0))s"; }

# ---------------------------------------------------------------- small go-installable tools
if need kwok kwokctl; then
  log "building kwok + kwokctl $KWOK_VERSION"
  timed env GOBIN="$STAGE" "${GO[@]}" install "${BUILD_FLAGS[@]}" -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  install_staged kwok kwokctl
fi

if need helm; then
  log "building helm $HELM_VERSION"
  # Without these -X (as helm's Makefile sets them), helm reports "v3.21" and assumes
  # k8s 1.20 for offline `helm template` / `helm lint`.
  K8S_MINOR=$(cut -d. -f2 <<<"${K8S_VERSION#v}")
  timed env GOBIN="$STAGE" "${GO[@]}" install "${BUILD_FLAGS[@]}" -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$K8S_MINOR" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  install_staged helm
fi

if need kubeconform; then
  log "building kubeconform $KUBECONFORM_VERSION"
  timed env GOBIN="$STAGE" "${GO[@]}" install "${BUILD_FLAGS[@]}" \
    -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  install_staged kubeconform
fi

# ---------------------------------------------------------------- etcd (wrapper module)
if need etcd; then
  log "building etcd $ETCD_VERSION (e2e/tools/etcd-bin)"
  # etcd's own version string is a constant in api/version; no -X needed.
  (cd "$TOOLS_SRC/etcd-bin" &&
    timed "${GO[@]}" build "${BUILD_FLAGS[@]}" -ldflags "-s -w" -o "$STAGE/etcd" go.etcd.io/etcd/server/v3)
  install_staged etcd
fi

# ---------------------------------------------------------------- Kubernetes (wrapper module)
if need kube-apiserver kube-controller-manager kube-scheduler kubectl; then
  log "building kube-apiserver kube-controller-manager kube-scheduler kubectl $K8S_VERSION (the slow part)"
  K8S_MINOR=$(cut -d. -f2 <<<"${K8S_VERSION#v}")
  # Module builds never fill in the $Format:%H$ placeholder, so stamp the version the way
  # kubernetes' hack/lib/version.sh does; otherwise /version says v0.0.0-master.
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$K8S_MINOR"
    # gitCommit: the module zip carries no commit hash; empty beats the "$Format:%H$" default.
    LDF+=" -X $p.gitCommit= -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  # One go build for all four so shared packages compile once.
  (cd "$TOOLS_SRC/k8s-bin" &&
    timed "${GO[@]}" build "${BUILD_FLAGS[@]}" -ldflags "$LDF" -o "$STAGE/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  install_staged kube-apiserver kube-controller-manager kube-scheduler kubectl
fi

# ---------------------------------------------------------------- sanity
left=$(missing_binaries)
[[ -z "$left" ]] || die "still missing after build: $left"
"$BIN/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION" ||
  die "kube-apiserver is not stamped $K8S_VERSION: $("$BIN/kube-apiserver" --version)"
log "all tools ready in $BIN"
