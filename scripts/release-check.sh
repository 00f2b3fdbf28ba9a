#!/usr/bin/env bash
# Do the crate, the chart (version and appVersion) and CHANGELOG.md name one version?
#
#   scripts/release-check.sh                     check that they agree (`just test`)
#   scripts/release-check.sh 0.2.0               ... and that they are 0.2.0 (the release tag)
#   scripts/release-check.sh 0.2.0 --print-notes print CHANGELOG.md's section for 0.2.0
set -euo pipefail
cd "$(dirname "$0")/.."

crate=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
chart=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/trimtab/Chart.yaml)
app=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/trimtab/Chart.yaml)
want=${1:-$crate}

section() { awk -v v="$1" '$0 ~ "^## \\[" v "\\]" {on=1; next} /^## / {on=0} on' CHANGELOG.md; }

if [[ "${2:-}" == --print-notes ]]; then
  section "$want"
  exit 0
fi

fail=0
check() {
  if [[ "$2" != "$want" ]]; then
    echo "release-check: $1 says '$2', expected '$want': $3" >&2
    fail=1
  fi
}
check "Cargo.toml [workspace.package] version" "$crate" "bump it (cargo update -w keeps Cargo.lock in step)"
check "charts/trimtab/Chart.yaml version" "$chart" "bump the chart's version with the app's"
check "charts/trimtab/Chart.yaml appVersion" "$app" "the chart's default image tag must be the release"
if [[ -z "$(section "$want" | tr -d '[:space:]')" ]]; then
  echo "release-check: CHANGELOG.md has no non-empty '## [$want]' section: write what changed" >&2
  fail=1
fi
if ! grep -q "^version = \"$want\"" <(awk '/^name = "trimtab"$/ {getline; print}' Cargo.lock); then
  echo "release-check: Cargo.lock's trimtab package is not $want: run cargo update -w" >&2
  fail=1
fi
[[ $fail == 0 ]] && echo "release-check: crate, chart, appVersion and CHANGELOG all say $want"
exit "$fail"
