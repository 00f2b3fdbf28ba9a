#!/usr/bin/env bash
# `just workflow-lint`: actionlint over .github/workflows (built once from the Go module proxy
# into a version-keyed cache outside the repo), then the release's version check.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
bin="${TRIMTAB_TOOLS_CACHE:-$HOME/.cache/trimtab/tools}/actionlint-$ACTIONLINT_VERSION/bin"
if [[ ! -x "$bin/actionlint" ]]; then
  echo "[lint-workflows] building actionlint $ACTIONLINT_VERSION into $bin" >&2
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT
  GOBIN="$staging" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  mkdir -p "$bin"
  mv "$staging/actionlint" "$bin/actionlint"
fi
"$bin/actionlint" -no-color .github/workflows/*.yml
echo "[lint-workflows] actionlint $ACTIONLINT_VERSION: $(ls .github/workflows/*.yml | wc -l) workflows clean"
bash scripts/release-check.sh
