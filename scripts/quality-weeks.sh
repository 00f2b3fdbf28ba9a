# The weeks of the autoscaling-quality benchmark, sourced by scripts/bench-quality.sh and
# scripts/bench-quality-sweep.sh: name, trace file, --scale, --start, --minutes.
# shellcheck disable=SC2034  # read by the scripts that source it

# The busiest week of each trace (by requests), scaled so that HPA needs about 8 replicas on average
# and 30 to 50 at the peak.
benchmark_weeks=(
  "worldcup98 traces/worldcup98-per-minute.csv 0.45 77760 10080"
  "nasa traces/nasa-1995-per-minute.csv 300 0 10080"
)
# Held out: other weeks of the same traces, same scale; no parameter is chosen on them.
held_out_weeks=(
  "worldcup98-w2 traces/worldcup98-per-minute.csv 0.45 87840 10080"
  "worldcup98-w4 traces/worldcup98-per-minute.csv 0.45 67680 10080"
  "nasa-w2 traces/nasa-1995-per-minute.csv 300 10080 10080"
  "nasa-w4 traces/nasa-1995-per-minute.csv 300 30240 10080"
)
