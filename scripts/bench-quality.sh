#!/usr/bin/env bash
# The autoscaling-quality benchmark: every example policy in examples/simulate/ replayed over the
# busiest week of the WorldCup98 trace and of the NASA trace, on seeds 1, 2 and 3 (the spot
# interruptions differ), beside HPA (70% of capacity), static provisioning of the week's peak and the
# oracle (perfect foresight: the physical limit), through the same service model (the defaults of
# docs/simulate.md). Prints, per policy x trace x seed, cost, SLO-violation minutes, efficiency
# (oracle cost / run cost) and scale events of each run, and whether the goal is met: fewer
# SLO-violation minutes than HPA, efficiency >= 0.90 and at most 1.2 x HPA's scale events. Then the
# same for held-out weeks (other weeks of both traces, seed 1; not tuned on, but compared when the
# settings were chosen), and for synthetic load shapes (scripts/synthetic-traces.py: a smooth daily
# cycle, weekends, steep ramps, flash crowds, heavy noise) that show where a law tuned to real weeks
# stops generalizing.
#
#   scripts/bench-quality.sh [OUT_DIR]     (just bench-quality)
#
# Each run's summary.json, timeline.csv and report.svg/png are kept under OUT_DIR
# (default target/bench-quality/POLICY-TRACE-sSEED/).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-quality}

cargo build --quiet --release --locked -p trimtab
bin=target/release/trimtab

# shellcheck source=scripts/quality-weeks.sh
source scripts/quality-weeks.sh

header() {
  printf '%-26s %-14s %4s | %-29s | %-29s | %-22s | %-22s | %s\n' policy trace seed \
    'trimtab cost/slo/eff/events' 'hpa cost/slo/eff/events' 'static cost/slo/eff' 'oracle cost/slo/events' goal
}

met=0
total=0
bench() {
  local policy=$1 spec=$2 seed=$3
  local name trace file scale start minutes dir table
  name=$(basename "$policy" .yaml)
  read -r trace file scale start minutes <<<"$spec"
  dir="$out/$name-$trace-s$seed"
  table=$("$bin" simulate --policy "$policy" --trace "$file" --scale "$scale" --start "$start" --minutes "$minutes" \
    --baseline hpa --baseline static --baseline oracle --seed "$seed" --out "$dir" 2>/dev/null)
  # The table's columns: run cost replica-hours slo-violation-min scale-events max-replicas spot-share efficiency.
  awk -v name="$name" -v trace="$trace" -v seed="$seed" '
    $1 == "policy" || $1 == "hpa" || $1 == "static" || $1 == "oracle" { c[$1] = $2; s[$1] = $4; e[$1] = $5; f[$1] = $8 }
    END {
      goal = (s["policy"] < s["hpa"] && f["policy"] >= 0.90 && e["policy"] <= 1.2 * e["hpa"]) ? "yes" : "no";
      miss = "";
      if (s["policy"] >= s["hpa"]) miss = miss " slo";
      if (f["policy"] < 0.90) miss = miss " eff";
      if (e["policy"] > 1.2 * e["hpa"]) miss = miss " events";
      printf "%-26s %-14s %4s | %7.2f %5d %5.3f %6d    | %7.2f %5d %5.3f %6d    | %7.2f %5d %5.3f     | %7.2f %5d %6d     | %s%s\n",
        name, trace, seed, c["policy"], s["policy"], f["policy"], e["policy"], c["hpa"], s["hpa"], f["hpa"], e["hpa"],
        c["static"], s["static"], f["static"], c["oracle"], s["oracle"], e["oracle"], goal, (miss == "" ? "" : " (missed:" miss ")")
    }' <<<"$table"
}

echo "benchmark weeks:"
header
for policy in examples/simulate/*.yaml; do
  for spec in "${benchmark_weeks[@]}"; do
    for seed in 1 2 3; do
      line=$(bench "$policy" "$spec" "$seed")
      echo "$line"
      total=$((total + 1))
      if [[ $line == *"| yes"* ]]; then met=$((met + 1)); fi
    done
  done
done
echo "goal (fewer SLO-violation minutes than HPA, efficiency >= 0.90, scale events <= 1.2 x HPA's) met on $met of $total runs"
echo
echo "held-out weeks (seed 1; not tuned on, but compared when the settings were chosen):"
header
for policy in examples/simulate/*.yaml; do
  for spec in "${held_out_weeks[@]}"; do
    bench "$policy" "$spec" 1
  done
done
echo
echo "synthetic shapes (seed 1; scripts/synthetic-traces.py, not real traffic):"
python3 scripts/synthetic-traces.py "$out/synthetic-traces"
header
for policy in examples/simulate/*.yaml; do
  for shape in "$out"/synthetic-traces/*.csv; do
    bench "$policy" "$(basename "$shape" .csv) $shape 1 0 10080" 1
  done
done
echo "reports in $out/"
