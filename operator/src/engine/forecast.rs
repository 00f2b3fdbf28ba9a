//! The predictive law for Ceiling objectives (`spec.forecast`): provision for the load that is
//! coming, at the throughput per Ready replica where the objectives would break.
//!
//! A Ceiling objective alone says "too slow" or "fine", never how many replicas are needed; and a
//! reactive step cannot catch a ramp shorter than pod startup plus the metrics window. So, from
//! what Prometheus range queries return (passed in as [`LoadHistory`]; the engine reads no clock
//! and does no I/O):
//! - **forecast**: a least-squares line through the last `trendWindow` minutes of throughput,
//!   extended `horizon` ahead when it rises (a falling trend is not trusted to continue: the mean of
//!   the window is the floor), plus `noiseMargin` standard deviations of the minutes around the
//!   line, since a minute's burst cannot be seen coming but its typical size can;
//! - **capacity**: each Ceiling objective's (throughput per Ready replica, value) pairs of the last
//!   `lookback` are fitted with the queueing law `value = base + a·x / (C − x)` (the M/M/1 shape
//!   latency has near saturation; exact for the simulator's model), and the throughput per replica
//!   at which the fit crosses the target is that objective's capacity. It is never taken beyond
//!   [`EXPLORE`] times the highest throughput per replica seen with the objective met, so a flat
//!   latency (a service whose p99 is its service time) lets the count step down, and is measured
//!   again, rather than be extrapolated to nothing;
//! - **plan**: `ceil(forecast / (capacity × CAPACITY_SAFETY))` replicas, up or down. A Ceiling met
//!   asks for the plan (so a p99 sitting just under its target no longer blocks a scale-down that
//!   would not breach it); a Ceiling breached asks for at least the plan.

use std::collections::BTreeMap;

use serde::Serialize;

use super::policy::{ForecastRule, Policy};
use crate::api::ObjectiveKind;

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
    /// Throughput (requests/s, `loadQuery`) at each minute of the trend window, oldest first; the
    /// last is now.
    pub load: Vec<f64>,
    /// Per Ceiling objective, by name: for each minute of the lookback, the throughput per Ready
    /// replica and the objective's value then, oldest first.
    pub capacity: BTreeMap<String, Vec<(f64, f64)>>,
}

/// The forecast of the throughput over the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadForecast {
    /// Throughput now, requests/s.
    pub now: f64,
    /// The trend, requests/s per minute.
    pub trend_per_minute: f64,
    /// The standard deviation of the minutes around the trend.
    pub noise: f64,
    /// What is provisioned for: the trend's value at the horizon (at least the window's mean) plus
    /// the noise margin.
    pub demand: f64,
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
        format!(
            "forecast {:.1} rps (now {:.1}, trend {:+.1}/min, noise {:.1}); learned capacity {:.1} rps per Ready replica for {} ({basis}, {} minutes): {} replicas",
            f.demand, f.now, f.trend_per_minute, f.noise, c.per_replica, c.objective, c.pairs, self.replicas
        )
    }
}

/// The plan, when the policy has `spec.forecast` and the history is enough to make one.
pub fn plan(policy: &Policy, history: &LoadHistory) -> Option<Plan> {
    let rule = policy.forecast.as_ref()?;
    let forecast = forecast(rule, &history.load)?;
    let capacity = policy
        .objectives
        .iter()
        .filter(|o| o.kind == ObjectiveKind::Ceiling)
        .filter_map(|o| learn_capacity(&o.name, o.target, history.capacity.get(&o.name)?))
        .min_by(|a, b| a.per_replica.total_cmp(&b.per_replica))?;
    let replicas = (forecast.demand / (capacity.per_replica * CAPACITY_SAFETY)).ceil();
    let replicas = if replicas.is_finite() { replicas.clamp(0.0, f64::from(i32::MAX)) as i32 } else { return None };
    Some(Plan { forecast, capacity, replicas })
}

/// The throughput to provision for over the horizon; none with fewer than three minutes.
pub fn forecast(rule: &ForecastRule, load: &[f64]) -> Option<LoadForecast> {
    let window = ((rule.trend_window.as_secs_f64() / 60.0).round() as usize).max(3);
    let recent: Vec<f64> = load[load.len().saturating_sub(window)..].iter().copied().filter(|v| v.is_finite()).collect();
    let k = recent.len();
    if k < 3 {
        return None;
    }
    let now = recent[k - 1];
    let n = k as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = recent.iter().sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (i, y) in recent.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxx += dx * dx;
        sxy += dx * (y - mean_y);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let residual: f64 = recent.iter().enumerate().map(|(i, y)| (y - (mean_y + slope * (i as f64 - mean_x))).powi(2)).sum();
    let noise = (residual / (n - 2.0)).sqrt();
    let ahead = rule.horizon.as_secs_f64() / 60.0;
    let trend = mean_y + slope * ((n - 1.0) - mean_x + ahead);
    let demand = trend.max(mean_y) + rule.noise_margin * noise;
    Some(LoadForecast { now, trend_per_minute: slope, noise, demand })
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
    let (base, a, _) = fit(knee);
    if base >= target {
        // Replicas do not bring the value under the target: no capacity to learn.
        return None;
    }
    let ceiling = highest_met * EXPLORE;
    // No rise worth the name across what was seen (or too little spread to see one): a fit
    // would be noise, so explore instead.
    let lowest = points.iter().map(|(x, _)| *x).fold(f64::INFINITY, f64::min);
    let rise = a * highest / (knee - highest);
    if !(a.is_finite() && a > 0.0 && rise >= 0.05 * (target - base) && highest - lowest >= 0.05 * highest) {
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
            horizon: Duration::from_secs(120),
            trend_window: Duration::from_secs(900),
            lookback: Duration::from_secs(7200),
            noise_margin,
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
    fn a_falling_load_is_provisioned_for_its_recent_mean_plus_the_noise_margin() {
        let load: Vec<f64> = (0..15).map(|i| 300.0 - 10.0 * f64::from(i) + if i % 2 == 0 { 5.0 } else { -5.0 }).collect();
        let f = forecast(&rule(2.0), &load).expect("enough minutes");
        let mean = load.iter().sum::<f64>() / 15.0;
        assert!(f.trend_per_minute < 0.0);
        assert!((f.demand - (mean + 2.0 * f.noise)).abs() < 1e-9 && f.noise > 4.0, "{f:?}");
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
