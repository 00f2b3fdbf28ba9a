#!/usr/bin/env bash
# The autoscaling-quality benchmark: every example policy in examples/simulate/ replayed over a busy
# week of the WorldCup98 trace and of the NASA trace, beside HPA (70% of capacity) and static
# provisioning of the week's peak, through the same service model (the defaults of docs/simulate.md,
# seed 1). Prints cost and SLO-violation minutes per run; the goal is strictly fewer SLO-violation
# minutes than HPA at a lower cost, on both traces.
#
#   scripts/bench-quality.sh [OUT_DIR]     (just bench-quality)
#
# Each run's summary.json, timeline.csv and report.svg/png are kept under OUT_DIR
# (default target/bench-quality/POLICY-TRACE/).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-quality}

cargo build --quiet --release --locked -p trimtab
bin=target/release/trimtab

# name, file, --scale, --start, --minutes: the busiest week of each trace (by requests), scaled so
# that HPA needs about 8 replicas on average and 30 to 50 at the peak.
traces=(
  "worldcup98 traces/worldcup98-per-minute.csv 0.45 77760 10080"
  "nasa traces/nasa-1995-per-minute.csv 300 0 10080"
)

printf '%-26s %-11s %10s %8s %10s %8s %10s %8s %6s %9s\n' \
  policy trace trimtab-cost slo-min hpa-cost slo-min static-cost slo-min goal time-s
met=0
total=0
for policy in examples/simulate/*.yaml; do
  name=$(basename "$policy" .yaml)
  for spec in "${traces[@]}"; do
    read -r trace file scale start minutes <<<"$spec"
    dir="$out/$name-$trace"
    started=$(date +%s.%N)
    table=$("$bin" simulate --policy "$policy" --trace "$file" --scale "$scale" --start "$start" --minutes "$minutes" \
      --baseline hpa --baseline static --seed 1 --out "$dir" 2>/dev/null)
    elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    # The table's columns: run cost replica-hours slo-violation-min scale-events max-replicas spot-share.
    read -r p_cost p_slo h_cost h_slo s_cost s_slo < <(awk '
      $1 == "policy" { pc = $2; ps = $4 } $1 == "hpa" { hc = $2; hs = $4 } $1 == "static" { sc = $2; ss = $4 }
      END { print pc, ps, hc, hs, sc, ss }' <<<"$table")
    goal=no
    if awk -v pc="$p_cost" -v ps="$p_slo" -v hc="$h_cost" -v hs="$h_slo" 'BEGIN { exit !(ps < hs && pc < hc) }'; then
      goal=yes
      met=$((met + 1))
    fi
    total=$((total + 1))
    printf '%-26s %-11s %10s %8s %10s %8s %10s %8s %6s %9.2f\n' \
      "$name" "$trace" "$p_cost" "$p_slo" "$h_cost" "$h_slo" "$s_cost" "$s_slo" "$goal" "$elapsed"
  done
done
echo "goal (fewer SLO-violation minutes than HPA at a lower cost) met on $met of $total runs; reports in $out/"
