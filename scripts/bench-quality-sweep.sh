#!/usr/bin/env bash
# The settings sweeps of docs/simulate.md: a policy of examples/simulate/ with a few of its fields
# changed, replayed as `just bench-quality` replays it (same traces, weeks, scales and model), on
# one seed and beside the oracle only (not HPA and static), so a setting takes seconds a week.
# Prints, per setting and week, cost, SLO-violation minutes, scale events and efficiency (the
# oracle's cost over the run's, as bench-quality prints it).
# Each run's policy, summary.json and timeline.csv stay under OUT_DIR.
#
#   scripts/bench-quality-sweep.sh [--policy FILE] [--seed N] [--weeks LIST] [--out DIR] SETTING...
#     (just bench-quality-sweep SETTING...)
#
# A SETTING is `shipped` (the policy as it is) or comma-separated KEY=VALUE pairs, KEY one of
#   noiseMargin, stepUpAhead, singleStepDownWindow, horizon, trendWindow, lookback,
#   sloViolationMinutePrice
#                             spec.forecast's fields (docs/app-team.md)
#   scaleDownStabilization    spec.behavior.scaleDown.stabilizationWindowSeconds
# e.g. `scripts/bench-quality-sweep.sh shipped noiseMargin=0.6 scaleDownStabilization=0,noiseMargin=0.85`.
# --weeks picks from worldcup98, worldcup98-w2, worldcup98-w4, nasa, nasa-w2, nasa-w4 and the
# shapes of scripts/synthetic-traces.py: daily-cycle, weekly-cycle, ramps, ... (comma-separated; default
# worldcup98,nasa: the benchmark weeks; the others are held out, look at them last).
# Defaults: --policy examples/simulate/web-service.yaml, --seed 1, --out target/bench-quality-sweep.
set -euo pipefail
cd "$(dirname "$0")/.."

policy=examples/simulate/web-service.yaml
seed=1
weeks=worldcup98,nasa
out=target/bench-quality-sweep
settings=()
while (($#)); do
  case $1 in
    --policy) policy=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --weeks) weeks=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "unknown flag $1 (see --help)" >&2; exit 2 ;;
    *) settings+=("$1"); shift ;;
  esac
done
((${#settings[@]})) || { echo "name at least one SETTING (see --help)" >&2; exit 2; }

# shellcheck source=scripts/quality-weeks.sh
source scripts/quality-weeks.sh
declare -A week
for spec in "${benchmark_weeks[@]}" "${held_out_weeks[@]}"; do
  week[${spec%% *}]=${spec#* }
done
# The synthetic shapes are weeks too, named by their files (a quarter of a second to write).
python3 scripts/synthetic-traces.py "$out/synthetic-traces"
for shape in "$out"/synthetic-traces/*.csv; do
  week[$(basename "$shape" .csv)]="$shape 1 0 10080"
done
IFS=, read -r -a chosen <<<"$weeks"
for w in "${chosen[@]}"; do
  [[ -n ${week[$w]:-} ]] || { echo "unknown week $w: one of ${!week[*]}" >&2; exit 2; }
done

# The policy with SETTING applied, on stdout. Each key rewrites its own line of the policy (the
# policy must have spec.forecast and spec.behavior); scaleDownStabilization adds the scaleDown
# block when the policy has none.
variant() {
  local setting=$1 text key value
  text=$(cat "$policy")
  [[ $setting == shipped ]] && { printf '%s\n' "$text"; return; }
  local -a pairs
  IFS=, read -r -a pairs <<<"$setting"
  for pair in "${pairs[@]}"; do
    key=${pair%%=*}
    value=${pair#*=}
    [[ $pair == *=* && -n $value ]] || { echo "setting $pair: want KEY=VALUE" >&2; return 2; }
    case $key in
      noiseMargin | stepUpAhead | singleStepDownWindow | horizon | trendWindow | lookback | sloViolationMinutePrice)
        grep -q '^  forecast:' <<<"$text" || { echo "$policy has no spec.forecast" >&2; return 2; }
        if grep -q "^    $key:" <<<"$text"; then
          text=$(sed -E "s|^    $key: .*|    $key: \"$value\"|" <<<"$text")
        else
          text=$(sed -E "s|^  forecast:$|  forecast:\n    $key: \"$value\"|" <<<"$text")
        fi
        ;;
      scaleDownStabilization)
        grep -q '^  behavior:' <<<"$text" || { echo "$policy has no spec.behavior" >&2; return 2; }
        if grep -q '^      stabilizationWindowSeconds:' <<<"$text"; then
          text=$(sed -E "s|^      stabilizationWindowSeconds: .*|      stabilizationWindowSeconds: $value|" <<<"$text")
        else
          text=$(sed -E "s|^  behavior:$|  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: $value|" <<<"$text")
        fi
        ;;
      *) echo "setting $pair: KEY is a spec.forecast field or scaleDownStabilization (see --help)" >&2; return 2 ;;
    esac
  done
  printf '%s\n' "$text"
}

cargo build --quiet --release --locked -p trimtab
bin=target/release/trimtab
mkdir -p "$out"

# simulate POLICY WEEK OUT_DIR: the run's table, beside the oracle, on stdout (its stderr in
# OUT_DIR.log, shown if it fails).
simulate() {
  local file=$1 w=$2 dir=$3 trace scale start minutes
  read -r trace scale start minutes <<<"${week[$w]}"
  mkdir -p "$(dirname "$dir")"
  "$bin" simulate --policy "$file" --trace "$trace" --scale "$scale" --start "$start" --minutes "$minutes" \
    --seed "$seed" --baseline oracle --out "$dir" 2>"$dir.log" || { echo "trimtab simulate failed on $file, $w:" >&2; cat "$dir.log" >&2; return 1; }
}
# The policy's cost, slo-violation-min, scale-events and efficiency, from the table's policy row.
policy_row() { awk '$1 == "policy" { print $2, $4, $5, $8 }' <<<"$1"; }

printf '%-60s' setting
for w in "${chosen[@]}"; do printf ' | %-30s' "$w cost/slo/events/eff"; done
echo
for setting in "${settings[@]}"; do
  slug=$(tr -c 'A-Za-z0-9.=_-' '_' <<<"$setting")
  file="$out/$slug.yaml"
  variant "$setting" >"$file"
  printf '%-60s' "$setting"
  for w in "${chosen[@]}"; do
    table=$(simulate "$file" "$w" "$out/runs/$slug-$w-s$seed")
    read -r cost slo events efficiency <<<"$(policy_row "$table")"
    printf ' | %7.2f %5d %6d %5.3f     ' "$cost" "$slo" "$events" "$efficiency"
  done
  echo
done
