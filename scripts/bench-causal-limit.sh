#!/usr/bin/env bash
# How much of the oracle's lead is foresight: each week of the quality benchmark (benchmark and
# held out) replayed with a policy beside HPA and the oracle (seed 1), then, through
# scripts/causal-limit.py, the cheapest run of a controller that sees only the past but is
# otherwise generous (the best linear forecast fitted in hindsight on the week itself, resized
# every minute with no churn limit), at HPA's SLO-violation minutes and at the policy's. Prints
# Ready replica-hours, SLO minutes and the oracle's Ready replica-hours over each run's.
#
#   scripts/bench-causal-limit.sh [--policy FILE] [--out DIR] [-- CAUSAL_LIMIT_ARGS...]
#     (just bench-causal-limit)
#
# Defaults: --policy examples/simulate/web-service.yaml, --out target/bench-causal-limit; the
# arguments after -- go to causal-limit.py (--lag, --window: see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."

policy=examples/simulate/web-service.yaml
out=target/bench-causal-limit
while (($#)); do
  case $1 in
    --policy) policy=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cargo build --quiet --release --locked -p trimtab
bin=target/release/trimtab
# shellcheck source=scripts/quality-weeks.sh
source scripts/quality-weeks.sh

for spec in "${benchmark_weeks[@]}" "${held_out_weeks[@]}"; do
  read -r name trace scale start minutes <<<"$spec"
  dir="$out/$name"
  mkdir -p "$dir"
  "$bin" simulate --policy "$policy" --trace "$trace" --scale "$scale" --start "$start" --minutes "$minutes" \
    --seed 1 --baseline hpa --baseline oracle --out "$dir" >"$dir/table.txt" 2>"$dir/simulate.log" \
    || { echo "trimtab simulate failed on $name:" >&2; cat "$dir/simulate.log" >&2; exit 1; }
  python3 scripts/causal-limit.py "$dir" "$@"
done
