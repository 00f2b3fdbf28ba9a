//! HPA autoscaling/v2's own behavior cases, re-expressed as data and run through `engine::decide`.
//!
//! The tables come from kubernetes' `pkg/controller/podautoscaler/horizontal_test.go`
//! (TestNormalizeDesiredReplicasWithBehavior, TestScalingWithRules, TestStoreScaleEvents,
//! TestCalculateScaleUpLimitWithScalingRules, TestCalculateScaleDownLimitWithBehaviors,
//! TestConvertDesiredReplicasWithRules, TestNormalizeDesiredReplicas and the External-metric
//! scale/tolerance cases) and from `horizontal.go` / `replica_calculator.go` where a rule has no
//! table. HPA's tests call one function at a time; here every case is a whole decision, so:
//! - the unstabilized recommendation R comes from one AverageValue objective with target 1 and a
//!   total of R, with tolerance 0 (so R ≠ current is always outside the band);
//! - stabilization cases use rate policies that never bind, and rate-limit cases use windows of 0;
//! - HPA's in-memory lists become `history`: recommendations with their age, scale events as signed
//!   changes at their age (scale-downs negative);
//! - `minReplicas: 0` rows are left out: a ScalingPolicy's minimum is at least 1.
//!
//! Times are seconds before `now`.

mod common;

use serde_json::{Value, json};
use trimtab::api::Reason;

use common::{NOW, ago, average_value, decide, decide_recommending, history, policy, rules, spec_json, value_objective};

/// Rate policies that never bind: any scale-up, any scale-down, within one second.
fn unbounded(window: i32) -> (Value, Value) {
    let mut up = rules(window, "Max", &[("Pods", 100_000, 1)]);
    let mut down = rules(0, "Max", &[("Percent", 100, 1)]);
    up["tolerance"] = json!("0");
    down["tolerance"] = json!("0");
    (up, down)
}

// ---- Stabilization: TestNormalizeDesiredReplicasWithBehavior ----

struct Stabilization {
    /// (seconds ago, replicas)
    recommendations: &'static [(i64, i32)],
    current: i32,
    recommendation: i32,
    up_window: i32,
    down_window: i32,
    expected: i32,
    limited_by: Reason,
}

fn check_stabilization(case: Stabilization) {
    let (up, _) = unbounded(case.up_window);
    let mut down = rules(case.down_window, "Max", &[("Percent", 100, 1)]);
    down["tolerance"] = json!("0");
    let policy = policy(spec_json(1, 1000, average_value("1"), json!({"behavior": {"scaleUp": up, "scaleDown": down}})));
    let recommendations: Vec<(i64, i32)> = case.recommendations.iter().map(|&(age, r)| (ago(age), r)).collect();
    let decision = decide_recommending(&policy, case.recommendation, case.current, &history(&recommendations, &[]), NOW);
    assert_eq!(decision.desired_replicas, case.expected, "{:?}", decision.reasons);
    assert_eq!(decision.limited_by, case.limited_by, "{:?}", decision.reasons);
}

macro_rules! table {
    ($check:ident { $($(#[$attr:meta])* $name:ident: $case:expr;)* }) => {
        $( $(#[$attr])* #[test] fn $name() { $check($case) } )*
    };
}

table!(check_stabilization {
    with_no_history_a_scale_down_goes_straight_to_the_recommendation: Stabilization {
        recommendations: &[], current: 100, recommendation: 5, up_window: 0, down_window: 0,
        expected: 5, limited_by: Reason::DesiredWithinRange,
    };
    scale_down_waits_for_the_highest_recommendation_in_the_window: Stabilization {
        recommendations: &[(120, 4), (60, 5)], current: 100, recommendation: 3, up_window: 0, down_window: 180,
        expected: 5, limited_by: Reason::ScaleDownStabilized,
    };
    scale_up_waits_for_the_lowest_recommendation_in_the_window: Stabilization {
        recommendations: &[(120, 4), (60, 5)], current: 1, recommendation: 7, up_window: 300, down_window: 0,
        expected: 4, limited_by: Reason::ScaleUpStabilized,
    };
    a_scale_down_without_a_scale_down_window_ignores_higher_past_recommendations: Stabilization {
        recommendations: &[(120, 1), (60, 2)], current: 100, recommendation: 3, up_window: 300, down_window: 0,
        expected: 3, limited_by: Reason::DesiredWithinRange,
    };
    a_scale_up_without_a_scale_up_window_ignores_lower_past_recommendations: Stabilization {
        recommendations: &[(120, 4), (60, 5)], current: 1, recommendation: 3, up_window: 0, down_window: 300,
        expected: 3, limited_by: Reason::DesiredWithinRange,
    };
    recommendations_older_than_every_window_do_not_hold_a_scale_down: Stabilization {
        recommendations: &[(600, 10), (540, 9)], current: 100, recommendation: 3, up_window: 0, down_window: 0,
        expected: 3, limited_by: Reason::DesiredWithinRange,
    };
    recommendations_older_than_every_window_do_not_hold_a_scale_up: Stabilization {
        recommendations: &[(600, 10), (540, 9)], current: 1, recommendation: 100, up_window: 0, down_window: 0,
        expected: 100, limited_by: Reason::DesiredWithinRange,
    };
    scale_down_stabilization_skips_recommendations_that_left_the_window: Stabilization {
        recommendations: &[(600, 10), (60, 4), (120, 5), (540, 9)], current: 100, recommendation: 3, up_window: 0,
        down_window: 180, expected: 5, limited_by: Reason::ScaleDownStabilized,
    };
    scale_up_stabilization_skips_recommendations_that_left_the_window: Stabilization {
        recommendations: &[(6000, 10), (60, 6), (120, 5), (180, 9)], current: 1, recommendation: 100, up_window: 300,
        down_window: 0, expected: 5, limited_by: Reason::ScaleUpStabilized,
    };
    with_both_windows_a_falling_recommendation_does_not_scale_up: Stabilization {
        recommendations: &[(6000, 2), (180, 3)], current: 2, recommendation: 1, up_window: 300, down_window: 300,
        expected: 2, limited_by: Reason::ScaleDownStabilized,
    };
    with_both_windows_a_rising_recommendation_does_not_scale_down: Stabilization {
        recommendations: &[(6000, 2), (180, 1)], current: 2, recommendation: 3, up_window: 300, down_window: 300,
        expected: 2, limited_by: Reason::ScaleUpStabilized,
    };
    // Go's Time.After is strict: an entry exactly one window old is out.
    a_recommendation_exactly_one_window_old_no_longer_counts: Stabilization {
        recommendations: &[(180, 9)], current: 100, recommendation: 3, up_window: 0, down_window: 180,
        expected: 3, limited_by: Reason::DesiredWithinRange,
    };
    a_recommendation_one_second_younger_than_the_window_still_counts: Stabilization {
        recommendations: &[(179, 9)], current: 100, recommendation: 3, up_window: 0, down_window: 180,
        expected: 9, limited_by: Reason::ScaleDownStabilized,
    };
});

// ---- Rate limits: TestScalingWithRules, TestCalculateScale{Up,Down}Limit* ----

struct Rate {
    min: i32,
    max: i32,
    /// `behavior.scaleUp`/`scaleDown` without windows (None: HPA's defaults).
    up: Option<Value>,
    down: Option<Value>,
    /// Scale-up and scale-down events, as generateEventsUniformDistribution spreads them over the
    /// last 120 s.
    up_events: &'static [i32],
    down_events: &'static [i32],
    current: i32,
    recommendation: i32,
    expected: i32,
    limited_by: Reason,
}

/// generateEventsUniformDistribution(events, 120): event i in the middle of the i-th of n equal
/// segments of the last 120 s, as whole seconds ago.
fn uniform(events: &[i32], sign: i32) -> Vec<(i64, i32)> {
    let segment = 120.0 / events.len() as f64;
    events
        .iter()
        .enumerate()
        .map(|(i, &change)| {
            let age = (120.0 - segment * (i + 1) as f64 + segment / 2.0) as i64;
            (ago(age), sign * change)
        })
        .collect()
}

/// generateScalingRules(pods, podsPeriod, percent, percentPeriod, _) with selectPolicy Max, no
/// window (the rate cases test convertDesiredReplicasWithBehaviorRate alone).
fn generated(pods: i32, pods_period: i32, percent: i32, percent_period: i32) -> Option<Value> {
    let mut policies = Vec::new();
    if pods != 0 {
        policies.push(("Pods", pods, pods_period));
    }
    if percent != 0 {
        policies.push(("Percent", percent, percent_period));
    }
    Some(rules(0, "Max", &policies))
}

fn select(select: &str, policies: &[(&str, i32, i32)]) -> Option<Value> {
    Some(rules(0, select, policies))
}

fn check_rate(case: Rate) {
    let with_tolerance = |rules: Option<Value>| {
        let mut rules = rules.unwrap_or_else(|| json!({"stabilizationWindowSeconds": 0}));
        rules["stabilizationWindowSeconds"] = json!(0);
        rules["tolerance"] = json!("0");
        rules
    };
    let behavior = json!({"scaleUp": with_tolerance(case.up), "scaleDown": with_tolerance(case.down)});
    let policy = policy(spec_json(case.min, case.max, average_value("1"), json!({"behavior": behavior})));
    let mut events = uniform(case.up_events, 1);
    events.extend(uniform(case.down_events, -1));
    events.sort();
    let decision = decide_recommending(&policy, case.recommendation, case.current, &history(&[], &events), NOW);
    assert_eq!(decision.desired_replicas, case.expected, "{:?}", decision.reasons);
    assert_eq!(decision.limited_by, case.limited_by, "{:?}", decision.reasons);
}

table!(check_rate {
    a_recommendation_within_min_max_and_rate_is_kept: Rate {
        min: 3, max: 8, up: None, down: None, up_events: &[], down_events: &[],
        current: 5, recommendation: 7, expected: 7, limited_by: Reason::DesiredWithinRange,
    };
    a_recommendation_below_min_replicas_is_raised_to_it: Rate {
        min: 2, max: 8, up: None, down: None, up_events: &[], down_events: &[],
        current: 3, recommendation: 1, expected: 2, limited_by: Reason::TooFewReplicas,
    };
    max_replicas_caps_a_scale_up_when_it_is_below_the_rate_limit: Rate {
        min: 100, max: 150, up: None, down: None, up_events: &[], down_events: &[],
        current: 100, recommendation: 1000, expected: 150, limited_by: Reason::TooManyReplicas,
    };
    a_one_percent_scale_up_policy_still_adds_one_replica: Rate {
        min: 1, max: 2000, up: generated(0, 0, 1, 60), down: None, up_events: &[], down_events: &[],
        current: 3, recommendation: 1000, expected: 4, limited_by: Reason::ScaleUpLimit,
    };
    a_pods_scale_down_policy_limits_the_removal_per_period: Rate {
        min: 3, max: 2000, up: None, down: generated(20, 60, 0, 0), up_events: &[], down_events: &[],
        current: 1000, recommendation: 3, expected: 980, limited_by: Reason::ScaleDownLimit,
    };
    the_default_scale_up_doubles_when_that_beats_four_pods: Rate {
        min: 1, max: 1000, up: None, down: None, up_events: &[], down_events: &[],
        current: 10, recommendation: 50, expected: 20, limited_by: Reason::ScaleUpLimit,
    };
    select_max_scales_up_by_the_larger_pods_policy: Rate {
        min: 1, max: 1000, up: generated(100, 60, 100, 60), down: None, up_events: &[], down_events: &[],
        current: 10, recommendation: 500, expected: 110, limited_by: Reason::ScaleUpLimit,
    };
    select_max_scales_up_by_the_larger_percent_policy: Rate {
        min: 1, max: 1000, up: generated(2, 60, 100, 60), down: None, up_events: &[], down_events: &[],
        current: 10, recommendation: 500, expected: 20, limited_by: Reason::ScaleUpLimit,
    };
    a_large_pods_policy_lets_the_recommendation_through: Rate {
        min: 1, max: 1000, up: generated(100, 60, 0, 0), down: None, up_events: &[], down_events: &[],
        current: 10, recommendation: 50, expected: 50, limited_by: Reason::DesiredWithinRange,
    };
    a_very_large_pods_policy_lets_the_recommendation_through: Rate {
        min: 1, max: 1000, up: generated(10_000, 60, 0, 0), down: None, up_events: &[], down_events: &[],
        current: 10, recommendation: 50, expected: 50, limited_by: Reason::DesiredWithinRange,
    };
    a_pods_scale_up_policy_adds_at_most_its_value: Rate {
        min: 1, max: 1000, up: generated(30, 60, 0, 0), down: None, up_events: &[], down_events: &[],
        current: 10, recommendation: 50, expected: 40, limited_by: Reason::ScaleUpLimit,
    };
    a_percent_scale_up_policy_adds_at_most_its_share: Rate {
        min: 1, max: 1000, up: generated(0, 0, 200, 60), down: None, up_events: &[], down_events: &[],
        current: 10, recommendation: 50, expected: 30, limited_by: Reason::ScaleUpLimit,
    };
    select_max_scales_down_by_the_larger_pods_policy: Rate {
        min: 1, max: 1000, up: None, down: generated(20, 60, 1, 60), up_events: &[], down_events: &[],
        current: 100, recommendation: 2, expected: 80, limited_by: Reason::ScaleDownLimit,
    };
    select_max_scales_down_by_the_larger_of_two_small_policies: Rate {
        min: 1, max: 1000, up: None, down: generated(2, 60, 1, 60), up_events: &[], down_events: &[],
        current: 100, recommendation: 2, expected: 98, limited_by: Reason::ScaleDownLimit,
    };
    min_replicas_stops_a_scale_down_a_large_pods_policy_allows: Rate {
        min: 1, max: 1000, up: None, down: generated(100, 60, 0, 0), up_events: &[], down_events: &[],
        current: 10, recommendation: 0, expected: 1, limited_by: Reason::TooFewReplicas,
    };
    min_replicas_stops_a_scale_down_a_large_percent_policy_allows: Rate {
        min: 5, max: 1000, up: None, down: generated(0, 0, 100, 60), up_events: &[], down_events: &[],
        current: 10, recommendation: 2, expected: 5, limited_by: Reason::TooFewReplicas,
    };
    a_pods_scale_down_policy_removes_at_most_its_value: Rate {
        min: 1, max: 1000, up: None, down: generated(5, 60, 0, 0), up_events: &[], down_events: &[],
        current: 10, recommendation: 2, expected: 5, limited_by: Reason::ScaleDownLimit,
    };
    a_percent_scale_down_policy_lets_a_recommendation_within_its_share_through: Rate {
        min: 1, max: 1000, up: None, down: generated(0, 0, 50, 60), up_events: &[], down_events: &[],
        current: 10, recommendation: 5, expected: 5, limited_by: Reason::DesiredWithinRange,
    };
    max_replicas_caps_a_scale_up_that_the_period_still_allows: Rate {
        min: 1, max: 200, up: generated(300, 60, 0, 0), down: None, up_events: &[1, 5, 9], down_events: &[],
        current: 100, recommendation: 500, expected: 200, limited_by: Reason::TooManyReplicas,
    };
    max_replicas_caps_a_scale_up_that_a_large_percent_policy_allows: Rate {
        min: 1, max: 200, up: generated(0, 0, 10_000, 60), down: None, up_events: &[1, 5, 9], down_events: &[],
        current: 100, recommendation: 500, expected: 200, limited_by: Reason::TooManyReplicas,
    };
    scale_ups_already_made_in_the_period_can_use_up_the_whole_allowance: Rate {
        min: 1, max: 1000, up: generated(5, 120, 0, 0), down: None, up_events: &[1, 5, 9], down_events: &[],
        current: 100, recommendation: 500, expected: 100, limited_by: Reason::ScaleUpLimit,
    };
    a_pods_scale_up_policy_counts_from_the_replicas_at_the_start_of_its_period: Rate {
        min: 1, max: 1000, up: generated(150, 120, 0, 0), down: None, up_events: &[1, 5, 9], down_events: &[],
        current: 100, recommendation: 500, expected: 235, limited_by: Reason::ScaleUpLimit,
    };
    a_percent_scale_up_policy_counts_from_the_replicas_at_the_start_of_its_period: Rate {
        min: 1, max: 1000, up: generated(0, 0, 200, 120), down: None, up_events: &[1, 5, 9], down_events: &[],
        current: 100, recommendation: 500, expected: 255, limited_by: Reason::ScaleUpLimit,
    };
    the_start_of_a_scale_up_period_adds_back_the_scale_downs_in_it: Rate {
        min: 1, max: 1000, up: generated(0, 0, 300, 300), down: None, up_events: &[4], down_events: &[2],
        current: 6, recommendation: 24, expected: 16, limited_by: Reason::ScaleUpLimit,
    };
    the_default_scale_down_allows_everything_whatever_came_before: Rate {
        min: 1, max: 1000, up: None, down: None, up_events: &[], down_events: &[1, 5, 9],
        current: 10, recommendation: 5, expected: 5, limited_by: Reason::DesiredWithinRange,
    };
    min_replicas_stops_a_scale_down_after_earlier_scale_downs: Rate {
        min: 1, max: 1000, up: None, down: generated(115, 120, 0, 0), up_events: &[], down_events: &[1, 5, 9],
        current: 100, recommendation: 0, expected: 1, limited_by: Reason::TooFewReplicas,
    };
    min_replicas_stops_a_scale_down_a_pods_policy_takes_below_zero: Rate {
        min: 5, max: 1000, up: None, down: generated(130, 120, 0, 0), up_events: &[], down_events: &[1, 5, 9],
        current: 100, recommendation: 0, expected: 5, limited_by: Reason::TooFewReplicas,
    };
    min_replicas_stops_a_full_percent_scale_down_after_earlier_scale_downs: Rate {
        min: 5, max: 1000, up: None, down: generated(0, 0, 100, 120), up_events: &[], down_events: &[1, 5, 9],
        current: 100, recommendation: 2, expected: 5, limited_by: Reason::TooFewReplicas,
    };
    scale_downs_already_made_in_the_period_can_use_up_the_whole_allowance: Rate {
        min: 1, max: 1000, up: None, down: generated(5, 120, 0, 0), up_events: &[], down_events: &[1, 5, 9],
        current: 100, recommendation: 2, expected: 100, limited_by: Reason::ScaleDownLimit,
    };
    a_percent_scale_down_policy_counts_from_the_replicas_at_the_start_of_its_period: Rate {
        min: 1, max: 1000, up: None, down: generated(0, 0, 50, 120), up_events: &[], down_events: &[2, 4, 6],
        current: 100, recommendation: 0, expected: 56, limited_by: Reason::ScaleDownLimit,
    };
    the_start_of_a_scale_down_period_takes_off_the_scale_ups_in_it: Rate {
        min: 1, max: 1000, up: None, down: generated(0, 0, 50, 180), up_events: &[2], down_events: &[4],
        current: 10, recommendation: 1, expected: 6, limited_by: Reason::ScaleDownLimit,
    };
    a_scale_down_limit_above_the_current_count_holds_it: Rate {
        min: 1, max: 1000, up: None, down: generated(0, 0, 10, 120), up_events: &[], down_events: &[10, 10, 10],
        current: 100, recommendation: 0, expected: 100, limited_by: Reason::ScaleDownLimit,
    };
    a_scale_down_limit_below_zero_lets_the_recommendation_through: Rate {
        min: 1, max: 1000, up: None, down: generated(0, 0, 1000, 120), up_events: &[], down_events: &[10, 10, 10],
        current: 10, recommendation: 5, expected: 5, limited_by: Reason::DesiredWithinRange,
    };
    a_scale_up_counts_only_the_events_inside_its_period: Rate {
        min: 1, max: 1000, up: generated(1000, 60, 0, 0), down: None, up_events: &[8, 12, 9, 11], down_events: &[],
        current: 100, recommendation: 200, expected: 200, limited_by: Reason::DesiredWithinRange,
    };
    a_scale_up_with_two_periods_counts_each_policys_own_events: Rate {
        min: 1, max: 1000, up: generated(1000, 120, 100, 60), down: None, up_events: &[8, 12, 9, 11], down_events: &[],
        current: 100, recommendation: 200, expected: 200, limited_by: Reason::DesiredWithinRange,
    };
    a_scale_up_with_a_short_and_a_long_period_is_limited_by_neither_here: Rate {
        min: 1, max: 1000, up: generated(1000, 30, 100, 60), down: None, up_events: &[8, 12, 9, 11], down_events: &[],
        current: 100, recommendation: 200, expected: 200, limited_by: Reason::DesiredWithinRange,
    };
    a_scale_down_counts_only_the_events_inside_its_period: Rate {
        min: 1, max: 1000, up: None, down: generated(1000, 60, 0, 0), up_events: &[], down_events: &[8, 12, 9, 11],
        current: 100, recommendation: 5, expected: 5, limited_by: Reason::DesiredWithinRange,
    };
    a_scale_down_with_two_periods_counts_each_policys_own_events: Rate {
        min: 1, max: 1000, up: None, down: generated(1000, 120, 100, 60), up_events: &[], down_events: &[8, 12, 9, 11],
        current: 100, recommendation: 5, expected: 5, limited_by: Reason::DesiredWithinRange,
    };
    a_scale_down_with_a_short_and_a_long_period_is_limited_by_neither_here: Rate {
        min: 1, max: 1000, up: None, down: generated(1000, 30, 100, 60), up_events: &[], down_events: &[8, 12, 9, 11],
        current: 100, recommendation: 5, expected: 5, limited_by: Reason::DesiredWithinRange,
    };
    // TestCalculateScaleUpLimitWithScalingRules: Min picks the smaller of 1 + 2 and ceil(1 × 1.5).
    select_min_scales_up_by_the_smaller_policy: Rate {
        min: 1, max: 1000, up: select("Min", &[("Pods", 2, 60), ("Percent", 50, 60)]), down: None, up_events: &[],
        down_events: &[], current: 1, recommendation: 100, expected: 2, limited_by: Reason::ScaleUpLimit,
    };
    // TestCalculateScaleDownLimitWithBehaviors: Min keeps the larger of 5 − 2 and ⌊5 × 0.5⌋.
    select_min_scales_down_by_the_smaller_policy: Rate {
        min: 1, max: 1000, up: None, down: select("Min", &[("Pods", 2, 60), ("Percent", 50, 60)]), up_events: &[],
        down_events: &[], current: 5, recommendation: 1, expected: 3, limited_by: Reason::ScaleDownLimit,
    };
    a_disabled_scale_up_holds_the_current_count: Rate {
        min: 1, max: 1000, up: select("Disabled", &[("Pods", 4, 15)]), down: None, up_events: &[], down_events: &[],
        current: 5, recommendation: 50, expected: 5, limited_by: Reason::ScaleUpLimit,
    };
    a_disabled_scale_down_holds_the_current_count: Rate {
        min: 1, max: 1000, up: None, down: select("Disabled", &[("Percent", 100, 15)]), up_events: &[], down_events: &[],
        current: 50, recommendation: 5, expected: 50, limited_by: Reason::ScaleDownLimit,
    };
    // calculateScaleUpLimitWithScalingRules multiplies in floating point: 100 × 1.1 is
    // 110.00000000000001, and its ceiling is 111.
    a_percent_scale_up_limit_rounds_up_as_hpas_floating_point_does: Rate {
        min: 1, max: 1000, up: generated(0, 0, 10, 60), down: None, up_events: &[], down_events: &[],
        current: 100, recommendation: 500, expected: 111, limited_by: Reason::ScaleUpLimit,
    };
    // calculateScaleDownLimitWithBehaviors truncates: 15 × 0.9 = 13.5 keeps 13.
    a_percent_scale_down_limit_truncates_the_replicas_it_keeps: Rate {
        min: 1, max: 1000, up: None, down: generated(0, 0, 10, 60), up_events: &[], down_events: &[],
        current: 15, recommendation: 1, expected: 13, limited_by: Reason::ScaleDownLimit,
    };
});

// ---- What HPA remembers of scale events: TestStoreScaleEvents ----

struct Stored {
    /// Scale-up events already stored, (seconds before the new one, replicas).
    previous: &'static [(i64, i32)],
    /// The new scale-up.
    change: i32,
    /// The scale-up rules, whose longest period decides which events are outdated.
    up: Value,
    /// What HPA holds afterwards, summed.
    remembered: i32,
}

/// storeScaleEvent overwrites the last scale-up older than the longest scale-up period with the
/// new one. What it keeps shows in the next scale-down: with a 30-minute Pods policy of 1, the
/// period starts at current − (the scale-ups still remembered), and one replica may go.
fn check_stored(case: Stored) {
    let stored_at = NOW - 1;
    let mut events: Vec<(i64, i32)> = case.previous.iter().map(|&(age, change)| (stored_at - age, change)).collect();
    events.sort_by_key(|&(t, _)| t);
    events.push((stored_at, case.change));
    let down = json!({"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 1800}], "tolerance": "0"});
    let policy = policy(spec_json(1, 1000, average_value("1"), json!({"behavior": {"scaleUp": case.up, "scaleDown": down}})));
    let decision = decide_recommending(&policy, 1, 100, &history(&[], &events), NOW);
    assert_eq!(decision.desired_replicas, 100 - case.remembered - 1, "{:?}", decision.reasons);
}

fn up_rules(policies: &[(&str, i32, i32)]) -> Value {
    rules(0, "Max", policies)
}

table!(check_stored {
    a_new_scale_up_overwrites_an_outdated_one: Stored {
        previous: &[(61, 7)], change: 5, up: up_rules(&[("Pods", 10, 60), ("Percent", 100, 60)]), remembered: 5,
    };
    a_new_scale_up_keeps_one_still_inside_the_longest_period: Stored {
        previous: &[(58, 7)], change: 5, up: up_rules(&[("Pods", 10, 60), ("Percent", 100, 60)]), remembered: 12,
    };
    of_two_scale_ups_only_the_outdated_one_is_overwritten: Stored {
        previous: &[(61, 7), (59, 6)], change: 5, up: up_rules(&[("Pods", 10, 60)]), remembered: 11,
    };
    only_the_last_of_several_outdated_scale_ups_is_overwritten: Stored {
        previous: &[(61, 7), (61, 9), (59, 6), (29, 8)], change: 5,
        up: up_rules(&[("Pods", 10, 60), ("Percent", 100, 30)]), remembered: 26,
    };
    the_longest_policy_period_decides_what_is_outdated: Stored {
        previous: &[(59, 6), (58, 7)], change: 5, up: up_rules(&[("Pods", 10, 120), ("Percent", 100, 30)]), remembered: 18,
    };
});

// ---- Tolerance: the External-metric cases of horizontal_test.go and isWithin ----

struct Tolerance {
    objective: Value,
    /// Extra behavior (tolerances), merged into defaults with no scale-down window.
    behavior: Value,
    value: f64,
    current: i32,
    min: i32,
    max: i32,
    expected: i32,
}

fn check_tolerance(case: Tolerance) {
    let mut behavior = json!({"scaleDown": {"stabilizationWindowSeconds": 0}, "scaleUp": {}});
    for direction in ["scaleUp", "scaleDown"] {
        if let Some(extra) = case.behavior.get(direction).and_then(Value::as_object) {
            for (key, value) in extra {
                behavior[direction][key] = value.clone();
            }
        }
    }
    let policy = policy(spec_json(case.min, case.max, case.objective, json!({"behavior": behavior})));
    let decision = decide(&policy, case.value, case.current, &history(&[], &[]), NOW);
    assert_eq!(decision.desired_replicas, case.expected, "{:?}", decision.reasons);
}

table!(check_tolerance {
    // TestScaleUpCMExternal: 8.6 against a Value target of 6.666 at 3 replicas: ceil(3 × 1.29).
    a_value_objective_over_target_scales_up_in_proportion: Tolerance {
        objective: value_objective("6666m"), behavior: json!({}), value: 8.6, current: 3, min: 2, max: 6, expected: 4,
    };
    // TestScaleUpPerPodCMExternal: a total of 8.6 at 2.222 per replica: ceil(8.6 / 2.222).
    an_average_value_objective_over_target_asks_for_total_over_target: Tolerance {
        objective: average_value("2222m"), behavior: json!({}), value: 8.6, current: 3, min: 2, max: 6, expected: 4,
    };
    // TestScaleDownCMExternal: 8.6 against 14.4 at 5 replicas: ceil(5 × 0.597).
    a_value_objective_under_target_scales_down_in_proportion: Tolerance {
        objective: value_objective("14400m"), behavior: json!({}), value: 8.6, current: 5, min: 2, max: 6, expected: 3,
    };
    // TestScaleDownPerPodCMExternal: ceil(8.6 / 3).
    an_average_value_objective_under_target_scales_down_to_total_over_target: Tolerance {
        objective: average_value("3000m"), behavior: json!({}), value: 8.6, current: 5, min: 2, max: 6, expected: 3,
    };
    // TestToleranceCMExternal: 8.6 / 8.666 = 0.992, inside the default 10%.
    a_value_objective_within_tolerance_holds: Tolerance {
        objective: value_objective("8666m"), behavior: json!({}), value: 8.6, current: 4, min: 2, max: 6, expected: 4,
    };
    // TestTolerancePerPodCMExternal: 8.6 / (2.2 × 4) = 0.977.
    an_average_value_objective_within_tolerance_holds: Tolerance {
        objective: average_value("2200m"), behavior: json!({}), value: 8.6, current: 4, min: 2, max: 6, expected: 4,
    };
    // Tolerances.isWithin is inclusive: 11 / (1 × 10) = 1.1 is inside [0.9, 1.1].
    a_ratio_exactly_at_the_upper_tolerance_edge_holds: Tolerance {
        objective: average_value("1"), behavior: json!({}), value: 11.0, current: 10, min: 1, max: 100, expected: 10,
    };
    a_ratio_exactly_at_the_lower_tolerance_edge_holds: Tolerance {
        objective: average_value("1"), behavior: json!({}), value: 9.0, current: 10, min: 1, max: 100, expected: 10,
    };
    a_ratio_just_over_the_tolerance_scales_up: Tolerance {
        objective: average_value("1"), behavior: json!({}), value: 11.001, current: 10, min: 1, max: 100, expected: 12,
    };
    a_ratio_just_under_the_tolerance_scales_down: Tolerance {
        objective: average_value("1"), behavior: json!({}), value: 8.999, current: 10, min: 1, max: 100, expected: 9,
    };
    // KEP-4951 (behavior.scaleUp.tolerance / scaleDown.tolerance): each direction its own band.
    a_smaller_scale_up_tolerance_scales_up_sooner: Tolerance {
        objective: average_value("1"), behavior: json!({"scaleUp": {"tolerance": "0.05"}}), value: 10.6, current: 10,
        min: 1, max: 100, expected: 11,
    };
    the_default_tolerance_holds_the_same_small_rise: Tolerance {
        objective: average_value("1"), behavior: json!({}), value: 10.6, current: 10, min: 1, max: 100, expected: 10,
    };
    a_larger_scale_down_tolerance_holds_a_deeper_fall: Tolerance {
        objective: average_value("1"), behavior: json!({"scaleDown": {"tolerance": "0.3"}}), value: 7.5, current: 10,
        min: 1, max: 100, expected: 10,
    };
    a_fall_beyond_the_scale_down_tolerance_scales_down: Tolerance {
        objective: average_value("1"), behavior: json!({"scaleDown": {"tolerance": "0.3"}}), value: 6.5, current: 10,
        min: 1, max: 100, expected: 7,
    };
    the_scale_up_tolerance_does_not_widen_the_scale_down_band: Tolerance {
        objective: average_value("1"), behavior: json!({"scaleUp": {"tolerance": "0.5"}}), value: 8.5, current: 10,
        min: 1, max: 100, expected: 9,
    };
    a_zero_scale_up_tolerance_scales_up_on_any_rise: Tolerance {
        objective: value_objective("1"), behavior: json!({"scaleUp": {"tolerance": "0"}}), value: 1.001, current: 10,
        min: 1, max: 100, expected: 11,
    };
    an_average_value_of_zero_asks_for_min_replicas: Tolerance {
        objective: average_value("1"), behavior: json!({}), value: 0.0, current: 10, min: 2, max: 100, expected: 2,
    };
});

// ---- The target outside [min, max], or at zero: reconcileAutoscaler ----

#[test]
fn a_target_above_max_replicas_goes_straight_to_max_without_rate_limits() {
    let down = rules(300, "Max", &[("Pods", 1, 600)]);
    let policy = policy(spec_json(1, 10, average_value("1"), json!({"behavior": {"scaleDown": down}})));
    let decision = decide(&policy, 50.0, 50, &history(&[(ago(10), 50)], &[]), NOW);
    assert_eq!(decision.desired_replicas, 10);
    assert_eq!(decision.limited_by, Reason::TooManyReplicas);
}

#[test]
fn a_target_below_min_replicas_goes_straight_to_min_without_rate_limits() {
    let up = rules(300, "Max", &[("Pods", 1, 600)]);
    let policy = policy(spec_json(8, 20, average_value("1"), json!({"behavior": {"scaleUp": up}})));
    let decision = decide(&policy, 1.0, 1, &history(&[(ago(10), 1)], &[(ago(10), 1)]), NOW);
    assert_eq!(decision.desired_replicas, 8);
    assert_eq!(decision.limited_by, Reason::TooFewReplicas);
}

#[test]
fn a_target_scaled_to_zero_is_left_alone() {
    let policy = policy(spec_json(1, 20, average_value("1"), json!({})));
    let decision = decide(&policy, 500.0, 0, &history(&[], &[]), NOW);
    assert_eq!(decision.desired_replicas, 0);
    assert_eq!(decision.reason, Reason::ScalingDisabled);
}

// ---- behavior omitted: TestConvertDesiredReplicasWithRules and TestNormalizeDesiredReplicas ----
//
// With `behavior` omitted, HPA takes its legacy path (normalizeDesiredReplicas): a scale-down
// window of the controller's 5 minutes over max(recommendations), then convertDesiredReplicasWithRules
// with a scale-up limit of max(2 × current, 4) per round. Trimtab fills in the autoscaling/v2
// defaults instead (GenerateHPAScale{Up,Down}Rules: 4 pods or 100% per 15 s, 300 s scale-down
// window), which agree on these rows except the last.

fn omitted(min: i32, max: i32) -> trimtab::engine::Policy {
    policy(spec_json(min, max, average_value("1"), json!({})))
}

#[test]
fn without_behavior_a_recommendation_within_range_is_kept() {
    let decision = decide_recommending(&omitted(3, 8), 7, 5, &history(&[], &[]), NOW);
    assert_eq!((decision.desired_replicas, decision.limited_by), (7, Reason::DesiredWithinRange));
}

#[test]
fn without_behavior_a_recommendation_below_min_is_raised_to_min() {
    let decision = decide_recommending(&omitted(2, 8), 1, 3, &history(&[], &[]), NOW);
    assert_eq!((decision.desired_replicas, decision.limited_by), (2, Reason::TooFewReplicas));
}

#[test]
fn without_behavior_a_target_above_max_goes_to_max() {
    let decision = decide(&omitted(1, 10), 1000.0, 20, &history(&[], &[]), NOW);
    assert_eq!((decision.desired_replicas, decision.limited_by), (10, Reason::TooManyReplicas));
}

/// A deliberate difference: with `behavior` omitted, Trimtab applies HPA v2's documented default
/// behavior field for field (+4 pods or +100% per 15 s), where HPA's controller falls back to its
/// older rule of max(2 × current, 4) per sync (TestConvertDesiredReplicasWithRules). From 3
/// replicas that is 7 for Trimtab, 6 for the old rule.
#[test]
fn without_behavior_a_scale_up_from_three_follows_the_documented_default_policies() {
    let decision = decide_recommending(&omitted(1, 2000), 1000, 3, &history(&[], &[]), NOW);
    assert_eq!((decision.desired_replicas, decision.limited_by), (7, Reason::ScaleUpLimit));
}

struct Legacy {
    recommendations: &'static [(i64, i32)],
    recommendation: i32,
    expected: i32,
}

/// TestNormalizeDesiredReplicas: the five-minute scale-down window over past recommendations.
fn check_legacy(case: Legacy) {
    let recommendations: Vec<(i64, i32)> = case.recommendations.iter().map(|&(age, r)| (ago(age), r)).collect();
    let decision = decide_recommending(&omitted(1, 1000), case.recommendation, 100, &history(&recommendations, &[]), NOW);
    assert_eq!(decision.desired_replicas, case.expected, "{:?}", decision.reasons);
}

table!(check_legacy {
    without_behavior_an_empty_history_scales_down_at_once: Legacy {
        recommendations: &[], recommendation: 5, expected: 5,
    };
    without_behavior_a_scale_down_waits_five_minutes_for_the_highest_recommendation: Legacy {
        recommendations: &[(120, 4), (60, 5)], recommendation: 3, expected: 5,
    };
    without_behavior_lower_past_recommendations_do_not_hold_a_scale_down: Legacy {
        recommendations: &[(120, 1), (60, 2)], recommendation: 3, expected: 3,
    };
    without_behavior_recommendations_older_than_five_minutes_are_forgotten: Legacy {
        recommendations: &[(600, 10), (540, 9)], recommendation: 3, expected: 3,
    };
    without_behavior_only_the_last_five_minutes_hold_a_scale_down: Legacy {
        recommendations: &[(600, 10), (60, 4), (120, 5), (540, 9)], recommendation: 3, expected: 5,
    };
});
