#!/usr/bin/env python3
"""Synthetic load shapes for the autoscaling-quality benchmark: one week (10,080 minutes) each, in the
trace format of `trimtab simulate --trace` (`minute,requests`, requests per minute; replay with
`--scale 1`).

The two real traces have a daily cycle and bursts of their own; these shapes isolate what a control
law has to generalize to beyond them, so that a rule tuned to two weeks shows where it breaks:

  daily-cycle   a smooth daily cycle, 120 to 1,200 requests/s, 3 % noise
  weekly-cycle  the same, with weekends at half the weekday peak
  ramps         a flat 200 requests/s with two steep ramps a day (to 600-1,200 within 10 minutes,
                held 1-3 hours, back down within 20)
  flash-crowd   the daily cycle plus a flash crowd a day: 2-3.5 x the load within 2 minutes,
                decaying over about 30
  bursty        the daily cycle under heavy minute-to-minute noise (lognormal, sigma 0.3)

At 50 requests/s per replica (the model's default) HPA runs 10-21 replicas on average and 34-60 at
the peak (measured; on the real benchmark weeks 8-11 and 28-48). Each shape is drawn from its own fixed seed, so the files are
the same on every run and every machine (Python's Mersenne Twister and its gauss/lognormvariate are
stable across versions).

  scripts/synthetic-traces.py OUT_DIR      writes OUT_DIR/SHAPE.csv for every shape
"""

import math
import os
import random
import sys

MINUTES = 7 * 1440
SHAPES = ("daily-cycle", "weekly-cycle", "ramps", "flash-crowd", "bursty")


def daily(minute, low=120.0, peak=1200.0):
    """A daily cycle that peaks mid-afternoon and is sharper at the top than a sine, like web traffic."""
    phase = (minute % 1440) / 1440.0
    wave = (1 - math.cos(2 * math.pi * (phase - 0.1))) / 2
    return low + (peak - low) * wave**2


def noisy(rng, rps, sigma):
    return max(0.0, rps * (1 + rng.gauss(0, sigma)))


def daily_cycle(rng):
    return [noisy(rng, daily(t), 0.03) for t in range(MINUTES)]


def weekly_cycle(rng):
    # Days 5 and 6 of the week are the weekend.
    return [noisy(rng, daily(t, peak=1200.0 if t // 1440 < 5 else 600.0), 0.03) for t in range(MINUTES)]


def ramps(rng):
    base = 200.0
    rps = [base] * MINUTES
    for day in range(7):
        for _ in range(2):
            start = day * 1440 + rng.randrange(0, 1440 - 240)
            top = rng.uniform(600.0, 1200.0)
            up, hold, down = 10, rng.randrange(60, 180), 20
            for i in range(up + hold + down):
                t = start + i
                if i < up:
                    level = base + (top - base) * (i + 1) / up
                elif i < up + hold:
                    level = top
                else:
                    level = top - (top - base) * (i - up - hold + 1) / down
                rps[t] = max(rps[t], level)
    return [noisy(rng, r, 0.03) for r in rps]


def flash_crowd(rng):
    rps = [daily(t) for t in range(MINUTES)]
    for day in range(7):
        start = day * 1440 + rng.randrange(0, 1440 - 120)
        factor = rng.uniform(2.0, 3.5)
        for i in range(120):
            rise = min(1.0, (i + 1) / 2)
            decay = math.exp(-max(0, i - 2) / 30)
            rps[start + i] *= 1 + (factor - 1) * rise * decay
    return [noisy(rng, r, 0.03) for r in rps]


def bursty(rng):
    return [daily(t) * rng.lognormvariate(-0.3**2 / 2, 0.3) for t in range(MINUTES)]


GENERATORS = {
    "daily-cycle": daily_cycle,
    "weekly-cycle": weekly_cycle,
    "ramps": ramps,
    "flash-crowd": flash_crowd,
    "bursty": bursty,
}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/synthetic-traces.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for seed, shape in enumerate(SHAPES, start=1):
        rps = GENERATORS[shape](random.Random(seed))
        with open(os.path.join(out, shape + ".csv"), "w") as f:
            f.write("minute,requests\n")
            for minute, r in enumerate(rps):
                f.write(f"{minute},{round(r * 60)}\n")


if __name__ == "__main__":
    main()
