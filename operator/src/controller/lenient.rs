//! ScalingPolicies as the API server stores them, read one by one. A typed list fails as a whole
//! when one item does not deserialize (a `maxReplicas` over i32 on an API server whose CRD lacks
//! our maximum, an enum value from a newer CRD than this operator), and with it the watch of every
//! tenant's policy. Read leniently, that one policy becomes a shell the round reports as
//! PolicyInvalid, by name, and the others are reconciled as ever.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::api::{ScalingPolicy, ScalingPolicySpec, ScalingPolicyStatus, TargetKind, TargetRef, Unreadable};

/// A stored ScalingPolicy whose spec may not deserialize. Only its metadata must (the API server
/// always sends valid metadata).
#[derive(Clone, Debug)]
pub struct LenientPolicy {
    pub metadata: ObjectMeta,
    pub parsed: Result<ScalingPolicySpec, Unreadable>,
    /// None when absent or unreadable: status is Trimtab's own, and the next round rewrites it.
    pub status: Option<ScalingPolicyStatus>,
}

impl Resource for LenientPolicy {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        ScalingPolicy::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        ScalingPolicy::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        ScalingPolicy::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        ScalingPolicy::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<'de> Deserialize<'de> for LenientPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let metadata = ObjectMeta::deserialize(&value["metadata"]).map_err(serde::de::Error::custom)?;
        let parsed = serde_path_to_error::deserialize::<_, ScalingPolicySpec>(&value["spec"]).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "spec".to_owned() } else { format!("spec.{path}") };
            Unreadable { field, problem: error.into_inner().to_string() }
        });
        let status = match value.get("status") {
            None | Some(Value::Null) => None,
            Some(status) => ScalingPolicyStatus::deserialize(status).ok(),
        };
        Ok(LenientPolicy { metadata, parsed, status })
    }
}

impl LenientPolicy {
    /// The policy as the rest of the operator reads it: itself when readable, else a shell with
    /// its real metadata and status, a placeholder spec that names no target (so no index, conflict
    /// or webhook look-up takes it for a real autoscaler) and the problem, which its round reports.
    pub fn into_policy(self) -> ScalingPolicy {
        let spec = self.parsed.unwrap_or_else(|unreadable| {
            tracing::warn!(
                policy = %self.metadata.name.as_deref().unwrap_or_default(),
                namespace = ?self.metadata.namespace,
                field = %unreadable.field,
                problem = %unreadable.problem,
                "a ScalingPolicy does not deserialize; it is reported as PolicyInvalid",
            );
            shell(unreadable)
        });
        ScalingPolicy { metadata: self.metadata, spec, status: self.status }
    }
}

fn shell(unreadable: Unreadable) -> ScalingPolicySpec {
    ScalingPolicySpec {
        target_ref: TargetRef { kind: TargetKind::Deployment, name: String::new() },
        min_replicas: 1,
        max_replicas: 1,
        interval: None,
        objectives: Vec::new(),
        missing_data: None,
        behavior: None,
        budget: None,
        placement: None,
        mode: None,
        forecast: None,
        unreadable: Some(unreadable),
    }
}

/// A watch event of lenient policies as one of policies.
pub fn policy_event(event: watcher::Event<LenientPolicy>) -> watcher::Event<ScalingPolicy> {
    match event {
        watcher::Event::Apply(policy) => watcher::Event::Apply(policy.into_policy()),
        watcher::Event::Delete(policy) => watcher::Event::Delete(policy.into_policy()),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(policy) => watcher::Event::InitApply(policy.into_policy()),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::Policy;

    fn stored(spec: Value, status: Value) -> serde_json::Value {
        json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7", "generation": 2},
            "spec": spec,
            "status": status
        })
    }

    fn good_spec() -> Value {
        json!({
            "targetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "objectives": [{"name": "p99", "kind": "Ceiling", "query": "up", "target": "300m"}]
        })
    }

    fn read(object: Value) -> ScalingPolicy {
        serde_json::from_value::<LenientPolicy>(object).expect("metadata reads").into_policy()
    }

    fn report(policy: &ScalingPolicy) -> String {
        Policy::from_spec(&policy.spec).expect_err("an unreadable policy is invalid").to_string()
    }

    #[test]
    fn a_readable_policy_reads_as_the_typed_policy_would() {
        let object = stored(good_spec(), json!({"desiredReplicas": 3}));
        let policy = read(object.clone());
        let typed: ScalingPolicy = serde_json::from_value(object).expect("a typed policy");
        assert_eq!((&policy.metadata, &policy.spec, &policy.status), (&typed.metadata, &typed.spec, &typed.status));
        assert!(Policy::from_spec(&policy.spec).is_ok());
    }

    #[test]
    fn a_policy_whose_spec_does_not_deserialize_is_a_shell_reported_with_the_field_and_the_fix() {
        let mut spec = good_spec();
        spec["maxReplicas"] = json!(3_000_000_000_u64);
        let policy = read(stored(spec, json!({"desiredReplicas": 3})));
        assert_eq!(policy.metadata.name.as_deref(), Some("web"));
        assert_eq!(policy.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(policy.spec.target_ref.name, "", "a shell targets nothing");
        assert_eq!(policy.status.as_ref().and_then(|s| s.desired_replicas), Some(3), "its status is kept");
        let message = report(&policy);
        assert!(message.contains("spec.maxReplicas: invalid value: integer `3000000000`, expected i32"), "{message}");
        assert!(message.contains("fix that field (kubectl explain scalingpolicy.spec.maxReplicas)"), "{message}");
    }

    #[test]
    fn an_unknown_enum_value_is_reported_on_its_field_and_explained_without_the_index() {
        let mut spec = good_spec();
        spec["objectives"][0]["kind"] = json!("Median");
        let message = report(&read(stored(spec, Value::Null)));
        assert!(message.contains("spec.objectives[0].kind: unknown variant `Median`"), "{message}");
        assert!(message.contains("kubectl explain scalingpolicy.spec.objectives.kind"), "{message}");
    }

    #[test]
    fn a_policy_whose_status_alone_does_not_deserialize_reads_without_its_status() {
        let policy = read(stored(good_spec(), json!({"desiredReplicas": "many"})));
        assert_eq!(policy.status, None);
        assert!(Policy::from_spec(&policy.spec).is_ok());
        assert_eq!(policy.spec.target_ref.name, "web");
    }

    #[test]
    fn a_policy_without_a_spec_is_reported_on_spec() {
        let message = report(&read(json!({"metadata": {"name": "web", "namespace": "shop"}})));
        assert!(message.contains("invalid ScalingPolicy: spec: "), "{message}");
    }

    #[test]
    fn a_list_with_one_unreadable_policy_still_lists_the_others() {
        let mut bad = good_spec();
        bad["mode"] = json!("Sideways");
        let list = json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicyList", "metadata": {"resourceVersion": "9"},
            "items": [stored(good_spec(), Value::Null), stored(bad, Value::Null)]
        });
        let typed = serde_json::from_value::<kube::core::ObjectList<ScalingPolicy>>(list.clone());
        assert!(typed.is_err(), "a typed list fails as a whole");
        let lenient: kube::core::ObjectList<LenientPolicy> = serde_json::from_value(list).expect("a lenient list reads");
        let readable: Vec<bool> = lenient.items.iter().map(|p| p.parsed.is_ok()).collect();
        assert_eq!(readable, [true, false]);
    }

    #[test]
    fn metadata_that_does_not_deserialize_is_a_hard_error() {
        let mut object = stored(good_spec(), Value::Null);
        object["metadata"]["name"] = json!(5);
        assert!(serde_json::from_value::<LenientPolicy>(object).is_err());
    }
}
