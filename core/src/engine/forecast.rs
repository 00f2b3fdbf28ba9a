//! The predictive law for Ceiling objectives (`spec.forecast`): provision for the load that is
//! coming, at the throughput per Ready replica where the objectives would break.
//!
//! A Ceiling objective alone says "too slow" or "fine", never how many replicas are needed; and a
//! reactive step cannot catch a ramp shorter than pod startup plus the metrics window. So, from
//! what Prometheus range queries return (passed in as [`LoadHistory`]; the engine reads no clock
//! and does no I/O):
//! - **forecast**: a least-squares line through the recent minutes of throughput, extended
//!   `horizon` ahead when it rises (a falling trend is not trusted to continue: the mean of the
//!   window is the floor; a slope within two standard errors of flat is no trend). The window is
//!   `trendWindow` or a third of it, whichever forecast the minutes of the `lookback` better when
//!   replayed over them; the root mean square of its replayed errors is the noise, and
//!   `noiseMargin` times it is the headroom, since a minute's burst cannot be seen coming but the
//!   size of the forecaster's misses can. When those errors fell short on average (a steady rise
//!   the line's slope was too noisy to be trusted on, so the forecast trailed it), that mean, the
//!   lag, is added back and the noise is what remains around it;
//! - **capacity**: each Ceiling objective's (throughput per Ready replica, value) pairs of the last
//!   `lookback` are fitted with the queueing law `value = base + a·x / (C − x)` (the M/M/1 shape
//!   latency has near saturation; exact for the simulator's model), and the throughput per replica
//!   at which the fit crosses the target is that objective's capacity. It is never taken beyond
//!   [`EXPLORE`] times the highest throughput per replica seen with the objective met, so a flat
//!   latency (a service whose p99 is its service time) lets the count step down, and is measured
//!   again, rather than be extrapolated to nothing;
//! - **plan**: `ceil(forecast / (capacity × CAPACITY_SAFETY))` replicas, up or down, and with
//!   `sloViolationMinutePrice` the replicas above that whose expected saved SLO-violation minutes
//!   are worth more than they cost ([`priced_headroom`]). A Ceiling met
//!   asks for the plan (so a p99 sitting just under its target no longer blocks a scale-down that
//!   would not breach it); a Ceiling breached asks for at least the plan. When the plan is above
//!   the current count, the step provisions for the trend `stepUpAhead` beyond the horizon: a
//!   ramp then takes one step every few minutes instead of one replica every minute (each step is
//!   a scale event, and pod churn is a cost too); a flat or falling load asks for the same either
//!   way. The other half of that, the way down, is in the decision ([`super::decide_with`]): a
//!   one-replica scale-down waits `singleStepDownWindow`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::behavior::Bounded;
use super::policy::{ForecastRule, Policy};
use crate::api::{History, ObjectiveKind, Reason};

/// The capacity used is this share of the learned one: the fit is an estimate.
pub const CAPACITY_SAFETY: f64 = 0.97;
/// Capacity is never taken beyond this multiple of the highest throughput per replica seen met.
pub const EXPLORE: f64 = 1.5;
/// Fewer pairs than this teach nothing.
pub const MIN_PAIRS: usize = 8;

/// What the operator reads from Prometheus for the predictive law, by range queries at a one-minute
/// step (see docs/app-team.md for the queries).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadHistory {
    /// Throughput (requests/s, `loadQuery`) at each minute of the lookback (at least the trend
    /// window), oldest first; the last is now.
    pub load: Vec<f64>,
    /// Per Ceiling objective, by name: for each minute of the lookback, the throughput per Ready
    /// replica and the objective's value then, oldest first.
    pub capacity: BTreeMap<String, Vec<(f64, f64)>>,
}

impl LoadHistory {
    /// From range query answers (values by minute, as Unix times): the throughput at each minute
    /// that has one, oldest first, and for each Ceiling objective the (throughput per Ready
    /// replica, value) pairs of the minutes where all three are known and a replica was Ready.
    pub fn from_minutes(
        load: &BTreeMap<i64, f64>,
        ready: &BTreeMap<i64, f64>,
        objectives: &BTreeMap<String, BTreeMap<i64, f64>>,
    ) -> LoadHistory {
        let capacity = objectives
            .iter()
            .map(|(name, values)| {
                let pairs = values
                    .iter()
                    .filter_map(|(minute, value)| {
                        let replicas = ready.get(minute).copied().filter(|r| *r > 0.0)?;
                        Some((load.get(minute)? / replicas, *value))
                    })
                    .collect();
                (name.clone(), pairs)
            })
            .collect();
        LoadHistory { load: load.values().copied().collect(), capacity }
    }
}

/// The forecast of the throughput over the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadForecast {
    /// Throughput now, requests/s.
    pub now: f64,
    /// The trend, requests/s per minute.
    pub trend_per_minute: f64,
    /// The spread of the forecaster's replayed errors over the lookback, around their mean when
    /// that mean is its lag (or, with too few minutes to replay, the standard deviation of the
    /// minutes around its line).
    pub noise: f64,
    /// How far the forecaster fell short on average over the lookback, replayed (0 when it did
    /// not): a steady rise whose slope it could not trust. Added to the demand.
    pub lag: f64,
    /// The minutes the trend was read from: `trendWindow`, or a third of it.
    pub window_minutes: u32,
    /// What is provisioned for: the trend's value at the horizon (at least the window's mean) plus
    /// the lag and the noise margin.
    pub demand: f64,
    /// What a step up provisions for: the same, `stepUpAhead` beyond the horizon.
    pub step_up_demand: f64,
}

/// How a capacity was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CapacityBasis {
    /// The queueing fit crosses the target there.
    Fitted,
    /// The value does not rise with the load in what was seen: the highest throughput per replica
    /// seen met, times [`EXPLORE`].
    Explored,
}

/// The throughput per Ready replica at which an objective would be breached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LearnedCapacity {
    pub objective: String,
    pub per_replica: f64,
    pub basis: CapacityBasis,
    /// The pairs it was learned from.
    pub pairs: usize,
}

/// The predictive law's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub forecast: LoadForecast,
    /// The tightest objective's capacity.
    pub capacity: LearnedCapacity,
    pub replicas: i32,
    /// Of the replicas at the horizon, those `sloViolationMinutePrice` bought over the noise margin.
    pub bought: i32,
    /// The replicas are a step up, provisioned `stepUpAhead` beyond the horizon.
    pub stepped_ahead: bool,
}

impl Plan {
    /// For the decision's reasons: what was forecast and learned, and what it asks for.
    pub fn describe(&self) -> String {
        let f = &self.forecast;
        let c = &self.capacity;
        let basis = match c.basis {
            CapacityBasis::Fitted => "where its fit crosses the target",
            CapacityBasis::Explored => "no rise seen yet: 1.5× the most seen met",
        };
        let demand = if self.stepped_ahead {
            format!("stepping up for {:.1} rps (stepUpAhead beyond the horizon's {:.1})", f.step_up_demand, f.demand)
        } else {
            format!("forecast {:.1} rps", f.demand)
        };
        let bought = match self.bought {
            0 => String::new(),
            n => format!(" ({n} of them bought by sloViolationMinutePrice)"),
        };
        format!(
            "{demand} (now {:.1}, trend {:+.1}/min over {} min, lag {:.1}, error {:.1}); learned capacity {:.1} rps per Ready replica for {} ({basis}, {} minutes): {} replicas{bought}",
            f.now, f.trend_per_minute, f.window_minutes, f.lag, f.noise, c.per_replica, c.objective, c.pairs, self.replicas
        )
    }
}

/// The plan for a target at `current` replicas, when the policy has `spec.forecast` and the
/// history is enough to make one.
pub fn plan(policy: &Policy, history: &LoadHistory, current: i32) -> Option<Plan> {
    let rule = policy.forecast.as_ref()?;
    let forecast = forecast(rule, &history.load)?;
    let capacity = policy
        .objectives
        .iter()
        .filter(|o| o.kind == ObjectiveKind::Ceiling)
        .filter_map(|o| learn_capacity(&o.name, o.target, history.capacity.get(&o.name)?))
        .min_by(|a, b| a.per_replica.total_cmp(&b.per_replica))?;
    let replicas_for = |demand: f64| {
        let replicas = (demand / (capacity.per_replica * CAPACITY_SAFETY)).ceil();
        replicas.is_finite().then(|| replicas.clamp(0.0, f64::from(i32::MAX)) as i32)
    };
    let margined = replicas_for(forecast.demand)?;
    let at_horizon = priced_headroom(rule, &forecast, capacity.per_replica * CAPACITY_SAFETY, margined, policy.max_replicas);
    let replicas = if at_horizon > current { at_horizon.max(replicas_for(forecast.step_up_demand)?) } else { at_horizon };
    Some(Plan { forecast, capacity, replicas, bought: at_horizon - margined, stepped_ahead: replicas > at_horizon })
}

/// `sloViolationMinutePrice`: from `margined` replicas (the noise margin's), add one while the
/// chance it takes off this minute's violation (the load at the horizon taken as Gaussian around
/// the forecast plus its lag, with the noise as its spread), times the price, is more than the one
/// replica-minute it costs. Where the noise is small against a replica's capacity the margin's
/// rounding up already covers it and nothing is bought; where it is large, each replica covers
/// little of it and little is bought; in between, the most.
fn priced_headroom(rule: &ForecastRule, forecast: &LoadForecast, per_replica: f64, margined: i32, max_replicas: i32) -> i32 {
    let price = rule.slo_violation_minute_price;
    if price <= 0.0 || forecast.noise <= 0.0 || per_replica <= 0.0 {
        return margined;
    }
    let expected = forecast.demand - rule.noise_margin * forecast.noise;
    let breach = |replicas: i32| upper_tail((f64::from(replicas) * per_replica - expected) / forecast.noise);
    let worth_one_more = |replicas: i32| price * (breach(replicas) - breach(replicas + 1)) > 1.0;
    // From the margin's count up, the count is over the expected load, so each replica more covers
    // less of the tail than the one before: the counts worth one more are a run from `margined`.
    let (mut low, mut high) = (margined, max_replicas.max(margined));
    while low < high {
        let middle = low + (high - low) / 2;
        if worth_one_more(middle) { low = middle + 1 } else { high = middle }
    }
    low
}

/// The chance that a standard normal variable exceeds `z`, to a relative error under 1.2e-7:
/// `erfc(z / √2) / 2`, by the Chebyshev fit of the complementary error function in Numerical
/// Recipes (6.2), whose coefficients these are (lowest power of `t` first).
fn upper_tail(z: f64) -> f64 {
    const ERFC_FIT: [f64; 10] = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let fit = ERFC_FIT.iter().rev().fold(0.0, |sum, c| sum * t + c);
    let erfc = t * (fit - x * x).exp();
    if z >= 0.0 { erfc / 2.0 } else { 1.0 - erfc / 2.0 }
}

/// The way down of `spec.forecast`: a scale-down of exactly one replica (what the stabilization
/// window let through, `stabilized`) waits until every recommendation of `singleStepDownWindow`
/// (this round's included) asked for fewer than `current`. The plan's own noise moves it by one
/// replica either way around a count the load sits near, and each flip is two scale events; a
/// larger step (a load that has fallen) goes at once.
pub fn hold_single_step(rule: &ForecastRule, history: &History, now: Timestamp, current: i32, stabilized: Bounded) -> Bounded {
    if stabilized.replicas != current.saturating_sub(1) || rule.single_step_down_window.is_zero() {
        return stabilized;
    }
    let window = rule.single_step_down_window.as_secs() as i64;
    let cutoff = now - SignedDuration::from_secs(window);
    let asked = history.recommendations.iter().filter(|r| r.last_seen().0 > cutoff).map(|r| r.replicas).max();
    match asked {
        Some(highest) if highest >= current => Bounded {
            replicas: current,
            reason: Reason::ScaleDownStabilized,
            message: format!(
                "a one-replica scale-down waits until every recommendation of the last {} asked for it (spec.forecast.singleStepDownWindow): holding at {current}",
                crate::api::format_duration(rule.single_step_down_window)
            ),
        },
        _ => stabilized,
    }
}

/// The throughput to provision for over the horizon, from the minutes of `load` (oldest first, the
/// last is now); none with fewer than three.
///
/// Two forecasters are tried, a line through the last `trendWindow` and one through a third of it:
/// each is replayed over the minutes given (`lookback`), forecasting every known minute from the
/// minutes `horizon` before it, and the one whose forecasts came closer is used. A noisy load
/// picks the long window, a smooth ramp the short one. The root mean square of its errors is the
/// noise, so the headroom covers what this forecaster has actually missed by, ramps included. When
/// its errors fell short on average, that systematic part is the lag: it is provisioned for in full
/// (a forecast that trails a rise trails it every minute, unlike a burst) and the margin covers the
/// spread around it. A forecaster that over-forecast (a fall, floored at the window's mean) keeps
/// its whole error as noise: the way down is not made bolder by it.
pub fn forecast(rule: &ForecastRule, load: &[f64]) -> Option<LoadForecast> {
    let known: Vec<f64> = load.iter().copied().filter(|v| v.is_finite()).collect();
    let k = known.len();
    if k < 3 {
        return None;
    }
    let long = ((rule.trend_window.as_secs_f64() / 60.0).round() as usize).max(3);
    let short = (long / 3).max(3);
    let ahead = rule.horizon.as_secs_f64() / 60.0;
    let (replayed, window) = [short, long]
        .into_iter()
        .filter_map(|window| replay_error(&known, window, ahead).map(|errors| (errors, window)))
        .min_by(|a, b| a.0.root_mean_square.total_cmp(&b.0.root_mean_square))
        .unwrap_or_else(|| {
            let noise = Line::through(&known[k.saturating_sub(long)..]).noise;
            (ReplayedErrors { root_mean_square: noise, mean: 0.0 }, long)
        });
    let lag = replayed.mean.max(0.0);
    let noise = (replayed.root_mean_square.powi(2) - lag.powi(2)).max(0.0).sqrt();
    let line = Line::through(&known[k.saturating_sub(window)..]);
    let headroom = lag + rule.noise_margin * noise;
    let demand = line.forecast(ahead) + headroom;
    let step_up_demand = line.forecast(ahead + rule.step_up_ahead.as_secs_f64() / 60.0) + headroom;
    Some(LoadForecast {
        now: known[k - 1],
        trend_per_minute: line.slope,
        noise,
        lag,
        window_minutes: window as u32,
        demand,
        step_up_demand,
    })
}

/// Replays fewer than this many forecasts and the comparison is noise.
const MIN_REPLAYS: usize = 10;

/// What replaying a forecaster found: its errors' (actual minus forecast) root mean square and mean.
struct ReplayedErrors {
    root_mean_square: f64,
    mean: f64,
}

/// The errors of a line through `window` minutes forecasting the minute `ahead` (rounded to whole
/// minutes, at least one) after it, over every such minute in `known`.
fn replay_error(known: &[f64], window: usize, ahead: f64) -> Option<ReplayedErrors> {
    let gap = (ahead.round() as usize).max(1);
    let errors: Vec<f64> = (window..=known.len().saturating_sub(gap))
        .map(|end| {
            let line = Line::through(&known[end - window..end]);
            known[end + gap - 1] - line.forecast(gap as f64)
        })
        .collect();
    let n = errors.len() as f64;
    (errors.len() >= MIN_REPLAYS).then(|| ReplayedErrors {
        root_mean_square: (errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt(),
        mean: errors.iter().sum::<f64>() / n,
    })
}

/// A slope is trusted in proportion to its evidence: it is scaled by `1 − TREND_EVIDENCE / t²`,
/// t the slope over its standard error, so a slope within two standard errors of flat is no trend
/// at all (noise extrapolated minutes ahead would only add noise) and a clear ramp keeps almost
/// all of its slope.
pub const TREND_EVIDENCE: f64 = 4.0;

/// A least-squares line through minutes one apart, the last one now.
struct Line {
    mean: f64,
    slope: f64,
    /// The standard deviation of the minutes around the line.
    noise: f64,
    /// Minutes from the window's centre to its last minute.
    half: f64,
}

impl Line {
    fn through(values: &[f64]) -> Line {
        let n = values.len() as f64;
        let mean_x = (n - 1.0) / 2.0;
        let mean = values.iter().sum::<f64>() / n.max(1.0);
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for (i, y) in values.iter().enumerate() {
            let dx = i as f64 - mean_x;
            sxx += dx * dx;
            sxy += dx * (y - mean);
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let residual: f64 = values.iter().enumerate().map(|(i, y)| (y - (mean + slope * (i as f64 - mean_x))).powi(2)).sum();
        let noise = if n > 2.0 { (residual / (n - 2.0)).sqrt() } else { 0.0 };
        let standard_error = if sxx > 0.0 { noise / sxx.sqrt() } else { 0.0 };
        let slope = if standard_error > 0.0 && slope != 0.0 {
            slope * (1.0 - TREND_EVIDENCE * (standard_error / slope).powi(2)).max(0.0)
        } else {
            slope
        };
        Line { mean, slope, noise, half: mean_x }
    }

    /// The line's value `ahead` minutes after the last minute.
    fn at(&self, ahead: f64) -> f64 {
        self.mean + self.slope * (self.half + ahead)
    }

    /// The forecast `ahead` minutes on: the line's value there, never under the window's mean (a
    /// falling trend is not trusted to continue). The replay and the demand share it, so the lag
    /// measured is the lag of the forecast provisioned for.
    fn forecast(&self, ahead: f64) -> f64 {
        self.at(ahead).max(self.mean)
    }
}

/// Over a narrow spread of throughput per replica, a fit that explains at least this share of the
/// values' variance shows a rise (see [`learn_capacity`]).
pub const CLEAR_FIT: f64 = 0.8;

/// Whether the values of `points` move with the load per replica, for a fit leaving `sse`: they
/// span at least 5 % of `target` (less is rounding, and a fit to it would be noise) and the fit
/// explains at least [`CLEAR_FIT`] of their variance.
fn values_follow_the_fit(points: &[(f64, f64)], sse: f64, target: f64) -> bool {
    let values = || points.iter().map(|(_, v)| *v);
    let span = values().fold(f64::NEG_INFINITY, f64::max) - values().fold(f64::INFINITY, f64::min);
    let mean = values().sum::<f64>() / points.len().max(1) as f64;
    let total: f64 = values().map(|v| (v - mean).powi(2)).sum();
    span >= 0.05 * target && total > 0.0 && 1.0 - sse / total >= CLEAR_FIT
}

/// The throughput per Ready replica at which an objective of `target` would be breached, learned
/// from (throughput per replica, value) pairs; none with too few pairs or a floor over the target.
pub fn learn_capacity(objective: &str, target: f64, pairs: &[(f64, f64)]) -> Option<LearnedCapacity> {
    // Saturated minutes (timeouts, errors far over target) do not follow the queueing shape.
    let points: Vec<(f64, f64)> =
        pairs.iter().copied().filter(|(x, v)| x.is_finite() && v.is_finite() && *x > 0.0 && *v <= 1.5 * target).collect();
    if points.len() < MIN_PAIRS {
        return None;
    }
    let highest_met = points.iter().filter(|(_, v)| *v <= target).map(|(x, _)| *x).fold(0.0, f64::max);
    let highest = points.iter().map(|(x, _)| *x).fold(0.0, f64::max);
    let explored = |per_replica: f64| {
        Some(LearnedCapacity {
            objective: objective.to_owned(),
            per_replica,
            basis: CapacityBasis::Explored,
            pairs: points.len(),
        })
    };
    // Golden-section search of the knee C over (highest, 20 × highest) for the least squares fit of
    // value = base + a·x/(C − x): for a fixed C the fit is linear in (base, a).
    let fit = |knee: f64| -> (f64, f64, f64) {
        let n = points.len() as f64;
        let g: Vec<f64> = points.iter().map(|(x, _)| x / (knee - x)).collect();
        let mean_g = g.iter().sum::<f64>() / n;
        let mean_v = points.iter().map(|(_, v)| v).sum::<f64>() / n;
        let (mut sgg, mut sgv) = (0.0, 0.0);
        for (gi, (_, v)) in g.iter().zip(&points) {
            sgg += (gi - mean_g).powi(2);
            sgv += (gi - mean_g) * (v - mean_v);
        }
        let a = if sgg > 0.0 { sgv / sgg } else { 0.0 };
        let base = mean_v - a * mean_g;
        let sse = g.iter().zip(&points).map(|(gi, (_, v))| (v - base - a * gi).powi(2)).sum();
        (base, a, sse)
    };
    let (mut low, mut high) = (highest * 1.001, highest * 20.0);
    const PHI: f64 = 0.618_033_988_749_895;
    for _ in 0..40 {
        let m1 = high - PHI * (high - low);
        let m2 = low + PHI * (high - low);
        if fit(m1).2 <= fit(m2).2 { high = m2 } else { low = m1 }
    }
    let knee = 0.5 * (low + high);
    let (base, a, sse) = fit(knee);
    if base >= target {
        // Replicas do not bring the value under the target: no capacity to learn.
        return None;
    }
    let ceiling = highest_met * EXPLORE;
    // No rise worth the name across what was seen, or too little spread to tell a rise from
    // noise: a fit would be noise, so explore instead. A narrow spread still shows a rise when the
    // fit explains the values (a steady load near saturation: latency moving sharply with small
    // changes of load per replica); exploring there would step the count down into a breach.
    let lowest = points.iter().map(|(x, _)| *x).fold(f64::INFINITY, f64::min);
    let rise = a * highest / (knee - highest);
    let wide = highest - lowest >= 0.05 * highest;
    let rises = a.is_finite() && a > 0.0 && rise >= 0.05 * (target - base);
    if !(rises && (wide || values_follow_the_fit(&points, sse, target))) {
        return if highest_met > 0.0 { explored(ceiling) } else { None };
    }
    let crossing = knee * (target - base) / (a + target - base);
    if highest_met > 0.0 && crossing > ceiling {
        return explored(ceiling);
    }
    Some(LearnedCapacity {
        objective: objective.to_owned(),
        per_replica: crossing,
        basis: CapacityBasis::Fitted,
        pairs: points.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(noise_margin: f64) -> ForecastRule {
        ForecastRule {
            load_query: "q".into(),
            ready_replicas_query: None,
            horizon: Duration::from_secs(120),
            trend_window: Duration::from_secs(900),
            lookback: Duration::from_secs(7200),
            noise_margin,
            step_up_ahead: Duration::ZERO,
            single_step_down_window: Duration::ZERO,
            slo_violation_minute_price: 0.0,
        }
    }

    /// The simulator's default model: p99 = 0.05 + 0.05 · ln(100) · ρ/(1 − ρ), capacity 50.
    fn p99(per_replica: f64) -> f64 {
        let rho = per_replica / 50.0;
        0.05 + 0.05 * 100f64.ln() * rho / (1.0 - rho)
    }

    #[test]
    fn capacity_is_learned_where_the_queueing_fit_crosses_the_target() {
        let pairs: Vec<(f64, f64)> = (0..30).map(|i| 20.0 + f64::from(i) * 0.6).map(|x| (x, p99(x))).collect();
        let learned = learn_capacity("p99", 1.0, &pairs).expect("enough pairs");
        assert_eq!(learned.basis, CapacityBasis::Fitted);
        // p99 reaches 1 s at 80.5 % of 50.
        assert!((learned.per_replica - 40.26).abs() < 0.3, "{learned:?}");
    }

    #[test]
    fn a_latency_that_does_not_rise_with_load_lets_the_count_step_down_by_exploring() {
        // The cluster: p99 0.244 s at any load, target 0.3 s, 4 rps per replica seen.
        let pairs: Vec<(f64, f64)> = (0..20).map(|i| (3.0 + f64::from(i) * 0.05, 0.244)).collect();
        let learned = learn_capacity("p99", 0.3, &pairs).expect("enough pairs");
        assert_eq!(learned.basis, CapacityBasis::Explored);
        assert!((learned.per_replica - 3.95 * EXPLORE).abs() < 1e-9, "{learned:?}");
    }

    #[test]
    fn a_steady_load_near_saturation_teaches_its_capacity_over_a_narrow_spread() {
        // A flat daily peak: throughput per replica within 4 % (36.3 to 37.8), p99 0.6 to 0.9 s.
        let pairs: Vec<(f64, f64)> = (0..30).map(|i| 36.3 + f64::from(i % 10) * 0.15).map(|x| (x, p99(x))).collect();
        let learned = learn_capacity("p99", 1.0, &pairs).expect("enough pairs");
        assert_eq!(learned.basis, CapacityBasis::Fitted, "exploring 1.5x past 37.8 would breach: {learned:?}");
        assert!((learned.per_replica - 40.26).abs() < 0.3, "{learned:?}");
    }

    #[test]
    fn a_noisy_flat_latency_over_a_narrow_spread_is_explored_not_fitted() {
        // p99 0.244 s give or take 20 ms over 3.0 to 3.1 rps per replica, with a slight tilt (16 ms
        // across the spread) that a fit reads as a rise, but explains little of the values.
        let pairs: Vec<(f64, f64)> = (0..40)
            .map(|i| {
                let step = f64::from(i % 5);
                (3.0 + step * 0.025, 0.244 + 0.004 * step + 0.02 * (f64::from(i) * 2.7).sin())
            })
            .collect();
        let learned = learn_capacity("p99", 0.3, &pairs).expect("enough pairs");
        assert_eq!(learned.basis, CapacityBasis::Explored, "{learned:?}");
    }

    #[test]
    fn a_floor_over_the_target_teaches_no_capacity() {
        let pairs: Vec<(f64, f64)> = (0..20).map(|i| (3.0 + f64::from(i), 0.4)).collect();
        assert_eq!(learn_capacity("p99", 0.3, &pairs), None);
    }

    #[test]
    fn too_few_pairs_teach_nothing() {
        assert_eq!(learn_capacity("p99", 1.0, &[(30.0, 0.5); 3]), None);
    }

    #[test]
    fn a_rising_load_is_forecast_along_its_trend_over_the_horizon() {
        let load: Vec<f64> = (0..15).map(|i| 100.0 + 10.0 * f64::from(i)).collect();
        let f = forecast(&rule(2.0), &load).expect("enough minutes");
        assert!((f.trend_per_minute - 10.0).abs() < 1e-9 && f.noise < 1e-9);
        assert!((f.demand - 260.0).abs() < 1e-6, "240 now, two minutes ahead: {f:?}");
    }

    #[test]
    fn a_step_up_provisions_for_the_trend_step_up_ahead_beyond_the_horizon() {
        let load: Vec<f64> = (0..15).map(|i| 100.0 + 10.0 * f64::from(i)).collect();
        let f = forecast(&ForecastRule { step_up_ahead: Duration::from_secs(240), ..rule(0.0) }, &load).expect("enough minutes");
        assert!((f.demand - 260.0).abs() < 1e-6 && (f.step_up_demand - 300.0).abs() < 1e-6, "two and six minutes ahead: {f:?}");
        let flat =
            forecast(&ForecastRule { step_up_ahead: Duration::from_secs(240), ..rule(0.0) }, &[300.0; 15]).expect("enough");
        assert_eq!(flat.step_up_demand, flat.demand, "a flat load asks for the same either way");
    }

    #[test]
    fn a_one_replica_scale_down_waits_for_the_whole_single_step_window_and_a_larger_one_does_not() {
        use crate::api::Recommendation;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let rule = ForecastRule { single_step_down_window: Duration::from_secs(1800), ..rule(0.0) };
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_secs(7200);
        let asked_at = |minutes_ago: i64, replicas: i32| History {
            recommendations: vec![Recommendation::at(Time(now - SignedDuration::from_mins(minutes_ago)), replicas)],
            ..History::default()
        };
        let down_to = |replicas: i32| Bounded { replicas, reason: Reason::DesiredWithinRange, message: String::new() };
        let held = hold_single_step(&rule, &asked_at(20, 10), now, 10, down_to(9));
        assert_eq!((held.replicas, held.reason), (10, Reason::ScaleDownStabilized), "10 was asked for 20 minutes ago");
        assert!(held.message.contains("singleStepDownWindow"), "{}", held.message);
        assert_eq!(hold_single_step(&rule, &asked_at(40, 10), now, 10, down_to(9)).replicas, 9, "40 minutes ago is outside");
        assert_eq!(hold_single_step(&rule, &asked_at(20, 10), now, 10, down_to(8)).replicas, 8, "two replicas go at once");
    }

    #[test]
    fn the_step_fields_default_to_off_and_a_window_over_two_hours_is_refused_naming_the_field() {
        let spec = |forecast: serde_json::Value| -> crate::api::ScalingPolicySpec {
            serde_json::from_value(serde_json::json!({
                "targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 20,
                "objectives": [{"name": "p99", "kind": "Ceiling", "query": "q", "target": "300m"}],
                "forecast": forecast
            }))
            .expect("valid spec")
        };
        let policy = Policy::from_spec(&spec(serde_json::json!({"loadQuery": "q"}))).expect("valid policy");
        let rule = policy.forecast.expect("spec.forecast");
        assert_eq!((rule.step_up_ahead, rule.single_step_down_window), (Duration::ZERO, Duration::ZERO));
        let error = Policy::from_spec(&spec(serde_json::json!({"loadQuery": "q", "singleStepDownWindow": "3h"})))
            .expect_err("over two hours");
        assert!(error.to_string().contains("spec.forecast.singleStepDownWindow"), "{error}");
    }

    #[test]
    fn a_price_of_an_slo_violation_minute_buys_each_replica_that_saves_more_than_it_costs() {
        // 10 rps a replica, maxReplicas 60; the margin (0) asks for ceil(expected / 10).
        let priced = |price: f64, expected: f64, noise: f64| {
            let forecast = LoadForecast {
                now: expected,
                trend_per_minute: 0.0,
                noise,
                lag: 0.0,
                window_minutes: 15,
                demand: expected,
                step_up_demand: expected,
            };
            let margined = (expected / 10.0).ceil() as i32;
            priced_headroom(&ForecastRule { slo_violation_minute_price: price, ..rule(0.0) }, &forecast, 10.0, margined, 60)
        };
        assert_eq!(priced(0.0, 100.0, 10.0), 10, "no price, no replica bought");
        // 100 rps expected with an error of 10: the 11th replica covers the load's chance of being 0
        // to 1 error over it (34 %), the 12th 1 to 2 (14 %), the 13th 2 to 3 (2 %): at 20
        // replica-minutes a minute, the first two are worth it.
        assert_eq!(priced(20.0, 100.0, 10.0), 12);
        assert_eq!(priced(100.0, 100.0, 10.0), 13, "a dearer minute buys further into the tail");
        assert_eq!(priced(1000.0, 100.0, 0.0), 10, "no error to cover");
        assert_eq!(priced(1000.0, 95.0, 1.0), 10, "5 errors under the count: its rounding up already covers them");
        assert_eq!(priced(1e9, 100.0, 1e9), 60, "never past maxReplicas");
    }

    #[test]
    fn the_chance_of_a_load_over_the_count_is_the_normal_tail() {
        let tails = [
            (0.0, 0.5),
            (1.0, 0.158_655_254),
            (2.0, 0.022_750_132),
            (3.0, 0.001_349_898),
            (5.0, 2.866_516e-7),
            (-1.0, 0.841_344_746),
        ];
        for (z, tail) in tails {
            assert!((upper_tail(z) / tail - 1.0).abs() < 1e-6, "Q({z}) = {} not {tail}", upper_tail(z));
        }
    }

    #[test]
    fn a_negative_slo_violation_minute_price_is_refused_naming_the_field() {
        let spec: crate::api::ScalingPolicySpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 20,
            "objectives": [{"name": "p99", "kind": "Ceiling", "query": "q", "target": "300m"}],
            "forecast": {"loadQuery": "q", "sloViolationMinutePrice": "-5"}
        }))
        .expect("a spec");
        let error = Policy::from_spec(&spec).expect_err("a negative price");
        assert!(error.to_string().contains("spec.forecast.sloViolationMinutePrice"), "{error}");
    }

    #[test]
    fn a_falling_load_is_provisioned_for_its_recent_mean_plus_the_noise_margin() {
        let load: Vec<f64> = (0..15).map(|i| 300.0 - 10.0 * f64::from(i) + if i % 2 == 0 { 5.0 } else { -5.0 }).collect();
        let f = forecast(&rule(2.0), &load).expect("enough minutes");
        let mean = load.iter().sum::<f64>() / 15.0;
        assert!(f.trend_per_minute < 0.0);
        assert!((f.demand - (mean + 2.0 * f.noise)).abs() < 1e-9 && f.noise > 4.0, "{f:?}");
    }

    /// A deterministic scatter in [-0.5, 0.5], without a short period.
    fn scatter(i: usize) -> f64 {
        let mut x = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (x ^ (x >> 31)) as f64 / u64::MAX as f64 - 0.5
    }

    #[test]
    fn range_answers_pair_each_minute_of_throughput_per_ready_replica_with_the_objectives_value() {
        let minutes = |values: &[(i64, f64)]| values.iter().copied().collect::<BTreeMap<i64, f64>>();
        let load = minutes(&[(60, 100.0), (120, 120.0), (180, 90.0)]);
        // No Ready replica at 120, no latency at 180: only the first minute teaches capacity.
        let ready = minutes(&[(60, 4.0), (120, 0.0), (180, 3.0)]);
        let p99 = BTreeMap::from([("p99".to_owned(), minutes(&[(60, 0.3), (120, 0.5)]))]);
        let history = LoadHistory::from_minutes(&load, &ready, &p99);
        assert_eq!(history.load, vec![100.0, 120.0, 90.0]);
        assert_eq!(history.capacity["p99"], vec![(25.0, 0.3)]);
    }

    #[test]
    fn a_smooth_ramp_is_forecast_from_the_short_window_and_a_noisy_load_from_the_long_one() {
        // Accelerating, noiseless: a line through 5 minutes keeps up, one through 15 lags.
        let ramp: Vec<f64> = (0..120).map(|i| 100.0 + 0.02 * f64::from(i).powi(2)).collect();
        assert_eq!(forecast(&rule(1.0), &ramp).expect("enough minutes").window_minutes, 5);
        // Flat with scattered minute-to-minute noise: five minutes of it are too few to average.
        let noisy: Vec<f64> = (0..120).map(|i| 300.0 + 90.0 * scatter(i)).collect();
        assert_eq!(forecast(&rule(1.0), &noisy).expect("enough minutes").window_minutes, 15);
    }

    #[test]
    fn the_headroom_is_the_margin_times_the_forecasters_own_replayed_error() {
        let noisy: Vec<f64> = (0..120).map(|i| 300.0 + 90.0 * scatter(i)).collect();
        let f = forecast(&rule(0.0), &noisy).expect("enough minutes");
        let g = forecast(&rule(2.0), &noisy).expect("enough minutes");
        // The scatter's standard deviation is 90 / √12 = 26; a forecast misses by a little more.
        assert!(f.noise > 26.0 && f.noise < 32.0, "the scatter is missed by about its size: {f:?}");
        assert!((g.demand - f.demand - 2.0 * f.noise).abs() < 1e-9, "{f:?} {g:?}");
    }

    #[test]
    fn a_slope_within_two_standard_errors_of_flat_is_no_trend() {
        // 300 ± 30 alternating with a slight drift: the fitted slope is far inside its noise.
        let load: Vec<f64> = (0..15).map(|i| 300.0 + 0.5 * f64::from(i) + if i % 2 == 0 { 30.0 } else { -30.0 }).collect();
        let f = forecast(&rule(0.0), &load).expect("enough minutes");
        assert_eq!(f.trend_per_minute, 0.0, "{f:?}");
        let mean = load.iter().sum::<f64>() / 15.0;
        assert!((f.demand - mean).abs() < 1e-9, "{f:?}");
    }

    #[test]
    fn a_steady_rise_too_noisy_for_its_slope_is_provisioned_for_the_forecasts_own_lag() {
        // 2 rps a minute under a scatter that hides the slope from the line: with no trend, its
        // forecast is the window's mean, minutes behind the rise, every minute of it.
        let rise = |i: usize| 300.0 + 2.0 * i as f64;
        let load: Vec<f64> = (0..400).map(|i| rise(i) + 90.0 * scatter(i)).collect();
        let (mut short_by, mut trailed_by) = (0.0, 0.0);
        let ends = 120..400;
        for end in ends.clone() {
            let f = forecast(&rule(0.0), &load[end - 120..end]).expect("enough minutes");
            let due = rise(end + 1);
            short_by += due - f.demand;
            trailed_by += due - (f.demand - f.lag);
        }
        let minutes = ends.len() as f64;
        assert!(trailed_by / minutes > 5.0, "without the lag the forecast trails: {}", trailed_by / minutes);
        assert!((short_by / minutes).abs() < 2.0, "with it, it is on the rise on average: {}", short_by / minutes);
        let flat: Vec<f64> = (0..120).map(|i| 300.0 + 90.0 * scatter(i)).collect();
        assert_eq!(forecast(&rule(0.0), &flat).expect("enough minutes").lag, 0.0, "a flat load has no lag");
    }

    #[test]
    fn a_ceiling_in_its_hold_band_no_longer_blocks_a_scale_down_that_would_not_breach_it() {
        // The cluster: 40 rps on 10 replicas, p99 0.244 s (its service time) against 0.3 s.
        let spec: crate::api::ScalingPolicySpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 20,
            "objectives": [{"name": "p99", "kind": "Ceiling", "query": "q", "target": "300m"}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "forecast": {"loadQuery": "sum(rate(http_requests_total[1m]))", "noiseMargin": "0"}
        }))
        .expect("valid spec");
        let policy = Policy::from_spec(&spec).expect("valid policy");
        let observations = super::super::Observations::from([("p99".to_owned(), super::super::Sample::Value(0.244))]);
        let current = super::super::Current {
            replicas: 10,
            ready_replicas: Some(10),
            consecutive_failures: 0,
            spot_healthy: true,
            pricing: super::super::Pricing::default(),
        };
        let now = jiff::Timestamp::UNIX_EPOCH;
        let history = crate::api::History::default();
        let held = super::super::decide(&policy, &observations, &current, &history, now);
        assert_eq!(held.recommendation, 10, "without the range queries the hold band still holds");
        let load = LoadHistory { load: vec![40.0; 15], capacity: BTreeMap::from([("p99".to_owned(), vec![(4.0, 0.244); 30])]) };
        let decision = super::super::decide_with(&policy, &observations, &current, &history, now, &load);
        // 40 rps at 1.5 × 4 rps per replica (explored, × 0.97): 7 replicas, then measured again.
        assert_eq!(decision.desired_replicas, 7, "{:?}", decision.reasons);
        assert!(decision.reasons[0].message.contains("learned capacity 6.0 rps per Ready replica"), "{:?}", decision.reasons);
    }
}
