#!/usr/bin/env python3
"""How close a controller without foresight can come to the oracle, on one simulated week.

Reads a `trimtab simulate --baseline hpa --baseline oracle` run (its timeline.csv and summary.json)
and replays, in the same service model, the best controller of a generous class that sees only the
past: every minute it resizes at once (no churn limit, no pod start paid) to

    replicas(t) = max(minReplicas, ceil((forecast(t) + headroom(t)) / capacity))

where forecast(t) is the least-squares best linear combination of the loads of `--window` minutes
ending `--lag` minutes before t, fitted on the week itself (in hindsight: the best such weights for
this very week, which no real controller knows), and headroom is either a share of the forecast or a
multiple of the forecast's root mean square error, whichever is cheaper; capacity is the throughput
per replica at which the model's p99 reaches the latency target. A minute violates when it has
fewer replicas than that capacity needs, exactly as in the model for a minute at one replica count.
The model's and the policy's numbers are flags (their defaults are the simulator's model defaults
and web-service.yaml's); the script prints the oracle's Ready replica-hours beside the need they
give, so a mismatch shows.

The margin is the smallest that keeps the violation minutes at or under HPA's, and at or under the
policy's, over the whole week (the controller itself starts once it has a window of minutes, which
only favours it). Efficiency here is Ready replica-hours: the oracle's over the run's (the
simulator's efficiency column is on cost, which also counts spot prices and the pods paid while
starting).

    scripts/causal-limit.py RUN_DIR [--lag 2] [--window 30] [--target 1.0] ...
"""

import argparse
import csv
import json
import math
from pathlib import Path


def solve(a, b):
    """Gaussian elimination with partial pivoting: x with a x = b."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in reversed(range(n)):
        if abs(m[r][r]) >= 1e-12:
            x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def least_squares(rows, targets):
    """The weights minimising the squared error of `rows · weights` against `targets`."""
    k = len(rows[0])
    xtx = [[0.0] * k for _ in range(k)]
    xty = [0.0] * k
    for row, y in zip(rows, targets):
        for i in range(k):
            ri = row[i]
            xty[i] += ri * y
            xtx_i = xtx[i]
            for j in range(i, k):
                xtx_i[j] += ri * row[j]
    for i in range(k):
        for j in range(i):
            xtx[i][j] = xtx[j][i]
    return solve(xtx, xty)


def hindsight_forecast(load, lag, window, season):
    """The in-sample least-squares forecast of every minute from the `window` minutes ending `lag`
    before it, and, with `season`, the minutes `season` before it (the same time yesterday, for a
    day) and SEASON_SPAN either side, where the week has them."""
    first = window + lag - 1

    def recent(t):
        return load[t - lag - window + 1 : t - lag + 1] + [1.0]

    def seasonal(t):
        return recent(t) + load[t - season - SEASON_SPAN : t - season + SEASON_SPAN + 1]

    minutes = range(first, len(load))
    with_season = {t for t in minutes if season and t - season - SEASON_SPAN >= 0}
    forecast = {}
    for features, ts in ((recent, [t for t in minutes if t not in with_season]), (seasonal, sorted(with_season))):
        if ts:
            weights = least_squares([features(t) for t in ts], [load[t] for t in ts])
            forecast.update((t, sum(w * v for w, v in zip(weights, features(t)))) for t in ts)
    return first, [forecast[t] for t in minutes]


# With --season, the minutes around the same time one season ago that the forecast may also use.
SEASON_SPAN = 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trimtab simulate --out directory (with hpa and oracle baselines)")
    parser.add_argument("--lag", type=int, default=2, help="minutes between the last load seen and the minute served")
    parser.add_argument("--window", type=int, default=30, help="minutes of load the forecast combines")
    parser.add_argument("--season", type=int, default=0, help="also forecast from the loads this many minutes before (1440: yesterday)")
    parser.add_argument("--target", type=float, default=1.0, help="the p99 latency target, seconds")
    parser.add_argument("--capacity", type=float, default=50.0, help="the model's capacityPerReplica")
    parser.add_argument("--base-latency", type=float, default=0.05, help="the model's baseLatencySeconds")
    parser.add_argument("--min-replicas", type=int, default=2)
    args = parser.parse_args()

    with open(args.run / "timeline.csv") as f:
        timeline = list(csv.DictReader(f))
    summary = json.loads((args.run / "summary.json").read_text())
    load = [float(r["load_rps"]) for r in timeline]

    # The model's p99 is base * (1 + ln(100) * u / (1 - u)) at utilization u: it meets the target
    # up to this utilization.
    stretch = args.target / args.base_latency - 1.0
    per_replica = args.capacity * stretch / (stretch + math.log(100.0))
    need = [max(args.min_replicas, math.ceil(v / per_replica)) for v in load]

    first, forecast = hindsight_forecast(load, args.lag, args.window, args.season)
    served = need[first:]

    error = math.sqrt(sum((f - v) ** 2 for f, v in zip(forecast, load[first:])) / len(forecast))
    headrooms = {"share of the forecast": lambda f, m: f * m, "multiple of its error": lambda f, m: error * m}

    def replay(headroom, margin):
        counts = [max(args.min_replicas, math.ceil((f + headroom(f, margin)) / per_replica)) for f in forecast]
        violations = sum(c < n for c, n in zip(counts, served))
        changes = sum(a != b for a, b in zip(counts, counts[1:]))
        return violations, sum(counts) / 60.0, changes

    def cheapest_within(violations):
        """The cheapest headroom and margin whose replay violates at most `violations` minutes."""
        best = None
        for kind, headroom in headrooms.items():
            low, high = 0.0, 10.0
            for _ in range(50):
                mid = 0.5 * (low + high)
                if replay(headroom, mid)[0] <= violations:
                    high = mid
                else:
                    low = mid
            violated, hours, changes = replay(headroom, high)
            if best is None or hours < best[3]:
                best = (kind, high, violated, hours, changes)
        return best

    def ready_hours(run, rows=timeline):
        return sum(float(r[f"{run}_ready"]) for r in rows) / 60.0

    oracle = ready_hours("oracle", timeline[first:])
    season = f", and the minutes around {args.season} min before" if args.season else ""
    print(f"{args.run.name}: lag {args.lag} min, window {args.window} min{season}, {per_replica:.1f} rps per replica at the target")
    print(
        f"  oracle Ready replica-hours {ready_hours('oracle'):.0f} (the model's need, recomputed: {sum(need) / 60:.0f})"
    )
    print(f"  {'run':<42} {'Ready h':>8} {'slo min':>8} {'eff (Ready h)':>14} {'events':>7}")
    for run in ("policy", "hpa"):
        hours = ready_hours(run)
        minutes = summary[run]["anySloViolationMinutes"]
        events = summary[run]["scaleEvents"]
        print(f"  {run:<42} {hours:8.0f} {minutes:8d} {ready_hours('oracle') / hours:14.3f} {events:7d}")
    for run in ("hpa", "policy"):
        budget = summary[run]["anySloViolationMinutes"]
        kind, margin, violations, hours, changes = cheapest_within(budget)
        label = f"no foresight, within {run}'s SLO minutes"
        print(
            f"  {label:<42} {hours:8.0f} {violations:8d} {oracle / hours:14.3f} {changes:7d}   headroom {margin:.3f} × {kind}"
        )


if __name__ == "__main__":
    main()
