//! Invariants of `engine::decide` over random policies, observations and histories.
//!
//! Every case starts from a target within [minReplicas, maxReplicas] (outside it, HPA's rule moves
//! straight to the range, which the first property covers anyway).

mod common;

use proptest::prelude::*;
use serde_json::{Value, json};
use trimtab::api::{Enforcement, History, ObjectiveKind, Reason};
use trimtab::engine::{self, Absence, Current, Decision, Observations, Policy, Pricing, Sample};

use common::{NOW, at, history};

#[derive(Clone, Debug)]
struct Case {
    spec: Value,
    current: i32,
    /// Per objective: a value, or an absence (None: the entry is left out, which counts as Empty).
    samples: Vec<Option<Sample>>,
    consecutive_failures: u32,
    recommendations: Vec<(i64, i32)>,
    events: Vec<(i64, i32)>,
    on_demand_price: f64,
    spot_price: f64,
    spot_healthy: bool,
}

impl Case {
    fn policy(&self) -> Policy {
        let spec = serde_json::from_value(self.spec.clone()).expect("the generated spec deserializes");
        Policy::from_spec(&spec).unwrap_or_else(|e| panic!("the generated spec is valid: {e}\n{}", self.spec))
    }

    fn observations(&self, policy: &Policy) -> Observations {
        policy
            .objectives
            .iter()
            .zip(&self.samples)
            .filter_map(|(objective, sample)| sample.map(|s| (objective.name.clone(), s)))
            .collect()
    }

    fn current(&self) -> Current {
        Current {
            ready_replicas: None,
            replicas: self.current,
            consecutive_failures: self.consecutive_failures,
            spot_healthy: self.spot_healthy,
            pricing: Pricing { on_demand: Some(self.on_demand_price), spot: Some(self.spot_price) },
        }
    }

    fn history(&self) -> History {
        history(&self.recommendations, &self.events)
    }

    fn decide(&self) -> (Policy, Decision) {
        let policy = self.policy();
        let decision = engine::decide(&policy, &self.observations(&policy), &self.current(), &self.history(), at(NOW));
        (policy, decision)
    }

    fn any_missing(&self) -> bool {
        self.samples.iter().any(|s| !matches!(s, Some(Sample::Value(_))))
    }
}

// ---- Generators ----

fn arb_absence() -> impl Strategy<Value = Absence> {
    prop::sample::select(vec![
        Absence::Empty,
        Absence::NaN,
        Absence::Infinite,
        Absence::Stale,
        Absence::MultipleSeries,
        Absence::Unreachable,
        Absence::Timeout,
    ])
}

fn arb_sample() -> impl Strategy<Value = Option<Sample>> {
    prop_oneof![
        6 => (0.0f64..2000.0).prop_map(|v| Some(Sample::Value((v * 1000.0).round() / 1000.0))),
        1 => arb_absence().prop_map(|a| Some(Sample::Absent(a))),
        1 => Just(None),
    ]
}

fn arb_objective(i: usize) -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec!["AverageValue", "Value", "Ceiling"]);
    let target = prop_oneof![
        prop::sample::select(vec!["1", "50", "250m", "0.01", "80"]).prop_map(str::to_owned),
        (1u32..=100_000).prop_map(|m| format!("{m}m"))
    ];
    (kind, target).prop_map(
        move |(kind, target)| json!({"name": format!("o{i}"), "query": format!("q{i}"), "kind": kind, "target": target}),
    )
}

fn arb_rules(up: bool) -> impl Strategy<Value = Value> {
    let policy =
        (prop::sample::select(vec!["Pods", "Percent"]), 1i32..=200, 1i32..=600).prop_map(move |(kind, value, period)| {
            let value = if kind == "Percent" && !up { value.min(100) } else { value };
            json!({"type": kind, "value": value, "periodSeconds": period})
        });
    (
        prop::option::of(0i32..=600),
        prop::option::of(prop::sample::select(vec!["Max", "Min", "Disabled"])),
        prop::option::of(prop::collection::vec(policy, 1..=3)),
        prop::option::of(prop::sample::select(vec!["0", "0.05", "0.1", "0.2"])),
    )
        .prop_map(|(window, select, policies, tolerance)| {
            let mut rules = serde_json::Map::new();
            if let Some(w) = window {
                rules.insert("stabilizationWindowSeconds".into(), json!(w));
            }
            if let Some(s) = select {
                rules.insert("selectPolicy".into(), json!(s));
            }
            if let Some(p) = policies {
                rules.insert("policies".into(), json!(p));
            }
            if let Some(t) = tolerance {
                rules.insert("tolerance".into(), json!(t));
            }
            Value::Object(rules)
        })
}

/// A spec; `budget` and `placement` are forced on or off when given, and the budget is capped when
/// `cap` is.
fn arb_spec(budget: Option<bool>, placement: Option<bool>, cap: bool) -> impl Strategy<Value = Value> {
    let bounds = (1i32..=10, 0i32..=40).prop_map(|(min, extra)| (min, min + extra));
    let objectives = (1usize..=3).prop_flat_map(|n| (0..n).map(arb_objective).collect::<Vec<_>>());
    let behavior = prop::option::of((prop::option::of(arb_rules(true)), prop::option::of(arb_rules(false))));
    let missing = prop::option::of((1i32..=5, prop::option::of(1i32..=50)));
    let with_budget = match budget {
        Some(b) => Just(b).boxed(),
        None => any::<bool>().boxed(),
    };
    let with_placement = match placement {
        Some(p) => Just(p).boxed(),
        None => any::<bool>().boxed(),
    };
    let enforcements = if cap { vec!["Cap"] } else { vec!["Cap", "Advisory"] };
    let budget = (with_budget, 1u32..=4000, prop::sample::select(enforcements));
    let placement = (with_placement, 0i32..=20, 0i32..=100);
    (bounds, objectives, behavior, missing, budget, placement).prop_map(
        |((min, max), objectives, behavior, missing, (with_budget, cents, enforcement), (with_placement, base, spot))| {
            let mut spec = json!({
                "targetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": min,
                "maxReplicas": max,
                "objectives": objectives,
            });
            if let Some((up, down)) = behavior {
                let mut b = serde_json::Map::new();
                if let Some(up) = up {
                    b.insert("scaleUp".into(), up);
                }
                if let Some(down) = down {
                    b.insert("scaleDown".into(), down);
                }
                spec["behavior"] = Value::Object(b);
            }
            if let Some((failures, fallback)) = missing {
                spec["missingData"] = json!({"failuresBeforeFallback": failures});
                if let Some(f) = fallback {
                    spec["missingData"]["fallbackReplicas"] = json!(f.min(max));
                }
            }
            if with_budget {
                spec["budget"] = json!({"maxCostPerHour": format!("{}.{:02}", cents / 100, cents % 100), "enforcement": enforcement});
            }
            if with_placement {
                spec["placement"] = json!({"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": base.min(max), "spotPercentage": spot});
            }
            spec
        },
    )
}

fn arb_case_with(spec: impl Strategy<Value = Value>) -> impl Strategy<Value = Case> {
    spec.prop_flat_map(|spec| {
        let min = spec["minReplicas"].as_i64().unwrap() as i32;
        let max = spec["maxReplicas"].as_i64().unwrap() as i32;
        let n = spec["objectives"].as_array().unwrap().len();
        (
            Just(spec),
            min..=max,
            prop::collection::vec(arb_sample(), n..=n),
            0u32..=6,
            prop::collection::vec((1i64..=900, 0i32..=2 * max), 0..=8),
            prop::collection::vec((1i64..=900, prop_oneof![1i32..=10, -10i32..=-1]), 0..=8),
            (0.01f64..3.0, 0.005f64..1.5, prop::bool::weighted(0.8)),
        )
    })
    .prop_map(
        |(spec, current, samples, consecutive_failures, recommendations, events, (on_demand_price, spot_price, spot_healthy))| {
            let mut recommendations: Vec<(i64, i32)> = recommendations.into_iter().map(|(age, r)| (NOW - age, r)).collect();
            recommendations.sort();
            let mut events: Vec<(i64, i32)> = events.into_iter().map(|(age, c)| (NOW - age, c)).collect();
            events.sort();
            Case {
                spec,
                current,
                samples,
                consecutive_failures,
                recommendations,
                events,
                on_demand_price,
                spot_price,
                spot_healthy,
            }
        },
    )
}

fn arb_case() -> impl Strategy<Value = Case> {
    arb_case_with(arb_spec(None, None, false))
}

/// A case where at least one objective has no value this round.
fn arb_case_missing_data(spec: impl Strategy<Value = Value>) -> impl Strategy<Value = Case> {
    (arb_case_with(spec), any::<prop::sample::Index>(), prop::option::of(arb_absence())).prop_map(|(mut case, index, absence)| {
        let i = index.index(case.samples.len());
        case.samples[i] = absence.map(Sample::Absent);
        case
    })
}

/// A case whose objectives all read no series and NaN as zero, and where one objective has an
/// absence that is still missing data (stale, several series, unreachable, a timeout, infinity).
fn arb_case_zero_when_empty_with_real_missing_data() -> impl Strategy<Value = Case> {
    let spec = arb_spec(Some(false), None, false).prop_map(|mut spec| {
        for objective in spec["objectives"].as_array_mut().expect("objectives") {
            objective["whenEmpty"] = json!("Zero");
        }
        spec
    });
    let still_missing = prop::sample::select(vec![
        Absence::Infinite,
        Absence::Stale,
        Absence::MultipleSeries,
        Absence::Unreachable,
        Absence::Timeout,
        Absence::Negative,
    ]);
    (arb_case_with(spec), any::<prop::sample::Index>(), still_missing).prop_map(|(mut case, index, absence)| {
        let i = index.index(case.samples.len());
        case.samples[i] = Some(Sample::Absent(absence));
        case
    })
}

proptest! {
    #![proptest_config(common::proptest_config(2000))]

    #[test]
    fn a_decisions_reason_and_limit_are_words_its_crd_field_lists(case in arb_case()) {
        let (_, decision) = case.decide();
        prop_assert!(Reason::DECISION_REASONS.contains(&decision.reason), "reason {}", decision.reason);
        prop_assert!(Reason::LIMITS.contains(&decision.limited_by), "limitedBy {}", decision.limited_by);
    }

    #[test]
    fn desired_replicas_stay_within_min_and_max(case in arb_case()) {
        let (policy, decision) = case.decide();
        prop_assert!(
            (policy.min_replicas..=policy.max_replicas).contains(&decision.desired_replicas),
            "{} not in [{}, {}]: {:?}", decision.desired_replicas, policy.min_replicas, policy.max_replicas, decision.reasons
        );
    }

    #[test]
    fn when_empty_zero_never_turns_a_broken_read_into_a_scale_down(case in arb_case_zero_when_empty_with_real_missing_data()) {
        let (_, decision) = case.decide();
        prop_assert!(decision.desired_replicas >= case.current, "{} < {}: {:?}", decision.desired_replicas, case.current, decision.reasons);
    }

    #[test]
    fn missing_data_never_scales_down_without_a_budget(case in arb_case_missing_data(arb_spec(Some(false), None, false))) {
        assert!(case.any_missing());
        let (_, decision) = case.decide();
        prop_assert!(decision.desired_replicas >= case.current, "{} < {}: {:?}", decision.desired_replicas, case.current, decision.reasons);
    }

    #[test]
    fn a_capped_budget_is_never_exceeded_except_to_keep_min_replicas_or_while_stepping_down(case in arb_case_with(arb_spec(Some(true), None, true))) {
        let (policy, decision) = case.decide();
        let budget = policy.budget.as_ref().expect("the spec has a budget");
        assert_eq!(budget.enforcement, Enforcement::Cap);
        let cost = decision.cost_per_hour.expect("every price is known");
        // Over budget is allowed only at minReplicas, or on the way down from above it, held to the
        // scale-down rate (so never above the current count).
        let stepping_down = decision.desired_replicas <= case.current
            && decision.reasons.iter().any(|r| matches!(r.reason, Reason::ScaleDownLimit));
        prop_assert!(
            decision.desired_replicas == policy.min_replicas || stepping_down || cost <= budget.max_cost_per_hour + 1e-9,
            "{} replicas cost {cost} > {}: {:?}", decision.desired_replicas, budget.max_cost_per_hour, decision.reasons
        );
    }

    #[test]
    fn placement_adds_up_to_the_desired_replicas(case in arb_case_with(arb_spec(None, Some(true), false))) {
        let (_, decision) = case.decide();
        let split = decision.placement.expect("the spec has a placement");
        prop_assert_eq!(split.spot + split.on_demand, decision.desired_replicas);
        prop_assert!(split.spot >= 0 && split.on_demand >= 0);
    }

    #[test]
    fn on_demand_replicas_cover_the_base(case in arb_case_with(arb_spec(None, Some(true), false))) {
        let (policy, decision) = case.decide();
        let split = decision.placement.expect("the spec has a placement");
        let base = policy.placement.as_ref().expect("placement").on_demand_base;
        prop_assert!(split.on_demand >= base.min(decision.desired_replicas), "{split:?} with base {base}");
        if !case.spot_healthy {
            prop_assert_eq!(split.spot, 0);
        }
    }

    #[test]
    fn the_split_is_the_documented_formula(n in 0i32..=500, base in 0i32..=50, spot in 0i32..=100, healthy in any::<bool>()) {
        let spec = json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 1000,
            "objectives": [{"name": "o", "query": "q", "kind": "AverageValue", "target": "1"}],
            "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": base, "spotPercentage": spot},
        });
        let policy = Policy::from_spec(&serde_json::from_value(spec).unwrap()).unwrap();
        let split = engine::split(&policy, healthy, n).expect("placement");
        let above = i64::from((n - base).max(0));
        let on_demand = if healthy { i64::from(n.min(base)) + (above * i64::from(100 - spot) + 99) / 100 } else { i64::from(n) };
        prop_assert_eq!(i64::from(split.on_demand), on_demand);
        prop_assert_eq!(split.spot + split.on_demand, n);
    }
}

/// One objective, complete data, no history and no budget: a value above the tolerance band never
/// scales down, one below it never scales up.
#[derive(Clone, Debug)]
struct Directional {
    kind: &'static str,
    target_milli: u32,
    current: i32,
    min: i32,
    max: i32,
    tolerance: &'static str,
    /// The value over what the current count carries: target × current (AverageValue) or target.
    ratio_permille: u32,
}

fn arb_directional() -> impl Strategy<Value = Directional> {
    (
        prop::sample::select(vec!["AverageValue", "Value", "Ceiling"]),
        1u32..=100_000,
        (1i32..=10, 0i32..=50).prop_flat_map(|(min, extra)| (Just(min), Just(min + extra), min..=min + extra)),
        prop::sample::select(vec!["0", "0.05", "0.1", "0.3"]),
        prop_oneof![0u32..=3000, 850u32..=1150],
    )
        .prop_map(|(kind, target_milli, (min, max, current), tolerance, ratio_permille)| Directional {
            kind,
            target_milli,
            current,
            min,
            max,
            tolerance,
            ratio_permille,
        })
}

proptest! {
    #![proptest_config(common::proptest_config(4000))]

    #[test]
    fn desired_replicas_never_move_against_the_metric(case in arb_directional()) {
        let behavior = json!({"scaleUp": {"tolerance": case.tolerance}, "scaleDown": {"tolerance": case.tolerance}});
        let spec = json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": case.min, "maxReplicas": case.max,
            "objectives": [{"name": "o", "query": "q", "kind": case.kind, "target": format!("{}m", case.target_milli)}],
            "behavior": behavior,
        });
        let policy = Policy::from_spec(&serde_json::from_value(spec).unwrap()).unwrap();
        let objective = &policy.objectives[0];
        let carried = match objective.kind {
            ObjectiveKind::AverageValue => objective.target * f64::from(case.current),
            _ => objective.target,
        };
        let value = carried * f64::from(case.ratio_permille) / 1000.0;
        let tolerance: f64 = case.tolerance.parse().unwrap();
        let mut observations = Observations::new();
        observations.insert("o".into(), Sample::Value(value));
        let current = Current { replicas: case.current, ready_replicas: None, consecutive_failures: 0, spot_healthy: true, pricing: Pricing::default() };
        let decision = engine::decide(&policy, &observations, &current, &History::default(), at(NOW));
        let (above, below) = match objective.kind {
            // A ceiling has no tolerance band: over target is a breach, at or under it is not.
            ObjectiveKind::Ceiling => (value > objective.target, value <= objective.target),
            _ => (value > carried * (1.0 + tolerance), value < carried * (1.0 - tolerance)),
        };
        if above {
            prop_assert!(decision.desired_replicas >= case.current, "{value} above {carried}: {:?}", decision.reasons);
        }
        if below {
            prop_assert!(decision.desired_replicas <= case.current, "{value} below {carried}: {:?}", decision.reasons);
        }
    }
}
