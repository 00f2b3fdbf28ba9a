//! The change the webhook makes to a new pod: its pool's node affinity and tolerations, the
//! `trimtab.dev/pool` label and a pod-deletion cost. Pure: pod JSON in, JSON Patch out.

use serde_json::{Value, json};

use crate::api::CapacityPool;

pub const POOL_LABEL: &str = "trimtab.dev/pool";
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";
const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";

/// JSON Patch operations that put `pod` on `pool`.
pub fn placement_patch(pod: &Value, pool_name: &str, pool: &CapacityPool, deletion_cost: i32) -> Value {
    let mut ops = Vec::new();
    let mut set_map_entry = |map: &str, key: &str, value: String| {
        if pod["metadata"][map].is_object() {
            ops.push(json!({"op": "add", "path": format!("/metadata/{map}/{}", escape(key)), "value": value}));
        } else {
            ops.push(json!({"op": "add", "path": format!("/metadata/{map}"), "value": {key: value}}));
        }
    };
    set_map_entry("labels", POOL_LABEL, pool_name.to_owned());
    set_map_entry("annotations", DELETION_COST_ANNOTATION, deletion_cost.to_string());

    let mut tolerations = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    for toleration in &pool.spec.tolerations {
        let toleration = serde_json::to_value(toleration).unwrap_or(Value::Null);
        if !tolerations.contains(&toleration) {
            tolerations.push(toleration);
        }
    }
    if !pool.spec.tolerations.is_empty() {
        ops.push(json!({"op": "add", "path": "/spec/tolerations", "value": tolerations}));
    }

    if !pool.spec.node_selector.is_empty() {
        let expressions: Vec<Value> =
            pool.spec.node_selector.iter().map(|(key, value)| json!({"key": key, "operator": "In", "values": [value]})).collect();
        // Read field by field, never indexed for writing: a field of another type (which the API
        // server would refuse anyway) must not panic the webhook.
        let object = |value: Option<&Value>| value.and_then(Value::as_object).cloned().unwrap_or_default();
        let mut affinity = object(Some(&pod["spec"]["affinity"]));
        let mut node_affinity = object(affinity.get("nodeAffinity"));
        let mut required = object(node_affinity.get(REQUIRED));
        let mut terms = required.get("nodeSelectorTerms").and_then(Value::as_array).cloned().unwrap_or_default();
        if terms.is_empty() {
            terms.push(json!({"matchExpressions": []}));
        }
        // Terms are ORed: the pool's expressions must hold in each of them.
        for term in terms.iter_mut().filter_map(Value::as_object_mut) {
            let mut match_expressions = term.get("matchExpressions").and_then(Value::as_array).cloned().unwrap_or_default();
            match_expressions.extend(expressions.iter().cloned());
            term.insert("matchExpressions".to_owned(), Value::Array(match_expressions));
        }
        required.insert("nodeSelectorTerms".to_owned(), Value::Array(terms));
        node_affinity.insert(REQUIRED.to_owned(), Value::Object(required));
        affinity.insert("nodeAffinity".to_owned(), Value::Object(node_affinity));
        ops.push(json!({"op": "add", "path": "/spec/affinity", "value": affinity}));
    }
    Value::Array(ops)
}

/// JSON Pointer escaping (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spot_pool() -> CapacityPool {
        serde_json::from_value(json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": "spot"},
            "spec": {"capacityType": "Spot", "nodeSelector": {"karpenter.sh/capacity-type": "spot"},
                     "tolerations": [{"key": "karpenter.sh/capacity-type", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}],
                     "price": {"cpuCoreHour": "0.01", "memoryGiBHour": "0.001"}}
        }))
        .expect("valid pool")
    }

    fn patched(pod: Value) -> Value {
        let ops = placement_patch(&pod, "spot", &spot_pool(), -7);
        let patch: json_patch::Patch = serde_json::from_value(ops).expect("a JSON patch");
        let mut pod = pod;
        json_patch::patch(&mut pod, &patch).expect("the patch applies");
        pod
    }

    #[test]
    fn a_bare_pod_gets_the_pool_affinity_tolerations_label_and_deletion_cost() {
        let pod = patched(json!({"metadata": {"generateName": "web-"}, "spec": {"containers": []}}));
        assert_eq!(pod["metadata"]["labels"]["trimtab.dev/pool"], "spot");
        assert_eq!(pod["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"], "-7");
        assert_eq!(pod["spec"]["tolerations"][0]["value"], "spot");
        let expression = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0];
        assert_eq!(expression, &json!({"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}));
    }

    #[test]
    fn the_pods_own_labels_tolerations_and_affinity_terms_are_kept() {
        let pod = patched(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
            }
        }));
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        let term =
            &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
        assert_eq!(term["matchExpressions"].as_array().map(Vec::len), Some(2), "the pool's expression is ANDed into the term");
    }

    #[test]
    fn a_pod_whose_affinity_fields_have_other_types_gets_a_patch_not_a_panic() {
        // Found by tests/fuzz_inputs.rs: `affinity["nodeAffinity"][...]` panicked on a string.
        for spec in [
            json!({"affinity": {"nodeAffinity": "spot"}}),
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": 5}}}),
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [1, {"matchExpressions": "x"}]}}}}),
            json!({"affinity": [], "tolerations": "all"}),
        ] {
            let ops = placement_patch(&json!({"metadata": "m", "spec": spec}), "spot", &spot_pool(), 1);
            assert!(ops.as_array().is_some_and(|ops| !ops.is_empty()), "{spec}");
        }
    }
}
