//! What the caches keep of each object: only what a round, the rebalancer or the webhook reads.
//!
//! Pods and Deployments are most of a cluster's objects, so they are read into types of their own
//! that hold only those fields (`#[resource(inherit)]` makes them watchable as the kind itself). A
//! k8s-openapi `Pod` is 2 KiB before it holds anything (every field of its spec and status is
//! there, empty), and the watch would build one per event only to strip it; these are read from
//! the event's JSON directly, skipping the rest. The field names are the API's, so code reads
//! `deployment.spec.replicas` as it would on a `Deployment`. A pod is then kept as a [`CachedPod`]
//! of plain fields, not as an object. What the kinds kept whole still hold that no reader needs is
//! stripped when an event arrives (`managedFields`, kubectl's last-applied copy).
//!
//! `cargo bench -p trimtab --bench cache_memory` measures what each kind costs per object.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, NodeSpec, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::{Resource, ResourceExt};
use serde::Deserialize;

use super::FIELD_MANAGER;
use crate::engine::ReplicasOwner;
use crate::placement::mutate::{DELETION_COST_ANNOTATION, POOL_LABEL};

/// The annotation `kubectl apply` writes: a whole copy of the object, read by no decision.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The label the ReplicaSet controller puts on a pod, naming its template (and so its ReplicaSet).
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A pod as its watch decodes it: of the event's JSON, only the fields [`CachedPod`] is made of (and
/// that [`deployment_of`](crate::placement::webhook::deployment_of) reads), for the moment it takes
/// to make one. The webhook reads the pod it admits as one too.
#[derive(Resource, Deserialize, Clone, Debug, Default, PartialEq)]
#[resource(inherit = Pod)]
pub struct WatchedPod {
    pub metadata: ObjectMeta,
    pub spec: Option<WatchedPodSpec>,
    pub status: Option<WatchedPodStatus>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WatchedPodSpec {
    pub node_name: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WatchedPodStatus {
    pub conditions: Option<Vec<PodCondition>>,
}

/// What the caches keep of a pod: what placement and the webhook read of it, as plain fields. A
/// pod is most of a cluster's objects, and kept as a stripped object (its `ObjectMeta`, a map each
/// for the labels and annotations kept, its owner and conditions) one held 2.3 KiB; this is a
/// tenth of that. Its namespace and Deployment are where the cache files it, not in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CachedPod {
    pub name: String,
    /// Its `trimtab.dev/pool` label: the pool the webhook placed it on.
    pub pool_label: Option<String>,
    pub node_name: Option<String>,
    pub ready: bool,
    /// It has a deletion timestamp: it is going.
    pub deleting: bool,
    /// When the scheduler said it cannot place the pod, while that is still so.
    pub unschedulable_since: Option<Timestamp>,
    /// Its `controller.kubernetes.io/pod-deletion-cost`, when that is a number.
    pub deletion_cost: Option<i32>,
    pub created: Option<Timestamp>,
}

impl CachedPod {
    pub fn of(pod: &WatchedPod) -> CachedPod {
        let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
        let condition = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
        CachedPod {
            name: pod.metadata.name.clone().unwrap_or_default(),
            pool_label: pod.labels().get(POOL_LABEL).cloned(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            ready: condition("Ready").is_some_and(|c| c.status == "True"),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            unschedulable_since: condition("PodScheduled")
                .filter(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
                .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0)),
            deletion_cost: pod.annotations().get(DELETION_COST_ANNOTATION).and_then(|c| c.parse().ok()),
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        }
    }
}

/// A Deployment as a round reads it: who owns its replicas, its replicas and Ready replicas, and
/// what one replica requests (its cost).
#[derive(Resource, Deserialize, Clone, Debug, Default, PartialEq)]
#[resource(inherit = Deployment)]
pub struct CachedDeployment {
    pub metadata: ObjectMeta,
    pub spec: Option<CachedDeploymentSpec>,
    pub status: Option<CachedDeploymentStatus>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CachedDeploymentSpec {
    pub replicas: Option<i32>,
    #[serde(default)]
    pub template: CachedPodTemplate,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CachedPodTemplate {
    pub spec: Option<CachedTemplateSpec>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CachedTemplateSpec {
    #[serde(default)]
    pub containers: Vec<CachedContainer>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CachedContainer {
    pub resources: Option<CachedResources>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CachedResources {
    pub requests: Option<BTreeMap<String, Quantity>>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CachedDeploymentStatus {
    pub ready_replicas: Option<i32>,
}

/// What no object's reader needs: the field managers' bookkeeping and kubectl's copy of the object.
pub fn strip<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// A Deployment's metadata as a round reads it: its identity and version (the scale write's
/// precondition), and of its field managers only those that own spec.replicas (R12, another writer
/// of the replicas), their field sets dropped.
pub fn strip_deployment(deployment: &mut CachedDeployment) {
    let meta = std::mem::take(&mut deployment.metadata);
    let owners: Vec<ManagedFieldsEntry> = (meta.managed_fields.unwrap_or_default().into_iter())
        .filter(|entry| entry.fields_v1.as_ref().is_some_and(|fields| fields.0["f:spec"].get("f:replicas").is_some()))
        .map(|entry| ManagedFieldsEntry { fields_v1: None, ..entry })
        .collect();
    deployment.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        generation: meta.generation,
        deletion_timestamp: meta.deletion_timestamp,
        managed_fields: (!owners.is_empty()).then_some(owners),
        ..ObjectMeta::default()
    };
}

/// Who owns a cached Deployment's spec.replicas (its last writer, or the appliers that share it).
pub fn replicas_owner(deployment: &CachedDeployment) -> ReplicasOwner {
    let entries = deployment.metadata.managed_fields.iter().flatten();
    let written = entries.clone().filter_map(|entry| entry.time.as_ref().map(|t| t.0)).max();
    let mut managers: Vec<&str> = entries.filter_map(|entry| entry.manager.as_deref()).collect();
    managers.sort_unstable();
    managers.dedup();
    if managers.contains(&FIELD_MANAGER) {
        ReplicasOwner::Trimtab
    } else if managers.is_empty() {
        ReplicasOwner::Unknown
    } else {
        ReplicasOwner::Other { managers: managers.join(", "), written }
    }
}

/// A node as placement reads it: labels (the pools' selectors), taints (interruptions), deletion.
pub fn strip_node(node: &mut Node) {
    strip(node);
    let spec = node.spec.take().unwrap_or_default();
    node.spec = Some(NodeSpec { taints: spec.taints, unschedulable: spec.unschedulable, ..NodeSpec::default() });
    node.status = None;
}

/// `object` read as `T` reads its JSON: what a watch of `T` would have stored (tests and benchmarks
/// fill the caches with k8s-openapi objects).
pub fn read_as<T: serde::de::DeserializeOwned + Default>(object: &impl serde::Serialize) -> T {
    serde_json::to_value(object).ok().and_then(|value| serde_json::from_value(value).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_pod_keeps_what_placement_reads() {
        let watched: WatchedPod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "u1",
                "labels": {"app": "web", "pod-template-hash": "abc", POOL_LABEL: "spot"},
                "annotations": {LAST_APPLIED: "{...}", DELETION_COST_ANNOTATION: "-3", "team": "shop"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u"}],
                "managedFields": [{"manager": "kubectl"}], "generateName": "web-", "resourceVersion": "7",
                "creationTimestamp": "2026-12-02T09:00:00Z"
            },
            "spec": {"nodeName": "spot-1", "containers": [{"name": "app", "image": "web:1", "env": [{"name": "A", "value": "x"}]}]},
            "status": {"phase": "Running", "containerStatuses": [], "conditions": [
                {"type": "Ready", "status": "True", "message": "ready", "lastTransitionTime": "2026-12-02T09:00:05Z"},
                {"type": "Initialized", "status": "True"},
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/6 nodes are available",
                 "lastTransitionTime": "2026-12-02T09:00:01Z"}
            ]}
        }))
        .expect("a pod");
        let at = |text: &str| text.parse::<Timestamp>().ok();
        assert_eq!(
            CachedPod::of(&watched),
            CachedPod {
                name: "web-1".into(),
                pool_label: Some("spot".into()),
                node_name: Some("spot-1".into()),
                ready: true,
                deleting: false,
                unschedulable_since: at("2026-12-02T09:00:01Z"),
                deletion_cost: Some(-3),
                created: at("2026-12-02T09:00:00Z"),
            }
        );
    }

    #[test]
    fn a_pod_the_scheduler_placed_is_not_unschedulable_and_one_without_conditions_is_not_ready() {
        let watched = |status: serde_json::Value| -> WatchedPod {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "web-1"}, "status": status})).expect("a pod")
        };
        let scheduled = watched(serde_json::json!({"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-02T09:00:01Z"}
        ]}));
        assert_eq!((CachedPod::of(&scheduled).ready, CachedPod::of(&scheduled).unschedulable_since), (false, None));
        let bare = CachedPod::of(&watched(serde_json::json!({})));
        assert_eq!((bare.ready, bare.pool_label, bare.deletion_cost), (false, None, None));
    }

    fn deployment(managers: serde_json::Value) -> CachedDeployment {
        let mut d: CachedDeployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9", "managedFields": managers,
                         "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1", "resources": {"requests": {"cpu": "250m"}}}]}}},
            "status": {"replicas": 3, "readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
        }))
        .expect("a deployment");
        strip_deployment(&mut d);
        d
    }

    #[test]
    fn a_cached_deployment_keeps_its_replicas_requests_version_and_who_owns_its_replicas() {
        let replicas = serde_json::json!({"f:spec": {"f:replicas": {}}});
        let template = serde_json::json!({"f:spec": {"f:template": {"f:spec": {}}}});
        let gitops = deployment(serde_json::json!([
            {"manager": "argocd-controller", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": template},
            {"manager": "gitops-fighter", "operation": "Update", "subresource": "scale", "fieldsType": "FieldsV1", "fieldsV1": replicas},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:status": {"f:replicas": {}}}}
        ]));
        let kept = gitops.metadata.managed_fields.clone().unwrap_or_default();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].fields_v1, None, "the field set itself is not kept");
        assert_eq!(replicas_owner(&gitops), ReplicasOwner::Other { managers: "gitops-fighter".into(), written: None });
        assert_eq!((gitops.metadata.labels.as_ref(), gitops.metadata.annotations.as_ref()), (None, None));
        assert_eq!(gitops.metadata.resource_version.as_deref(), Some("9"));
        let spec = gitops.spec.clone().unwrap_or_default();
        assert_eq!(spec.replicas, Some(3));
        let requests = spec.template.spec.and_then(|s| s.containers[0].resources.clone()).and_then(|r| r.requests);
        assert_eq!(requests.and_then(|r| r.get("cpu").cloned()), Some(Quantity("250m".into())));
        assert_eq!(gitops.status.and_then(|s| s.ready_replicas), Some(2));

        let ours = deployment(serde_json::json!([
            {"manager": "trimtab", "operation": "Update", "subresource": "scale", "fieldsType": "FieldsV1", "fieldsV1": replicas}
        ]));
        assert_eq!(replicas_owner(&ours), ReplicasOwner::Trimtab);
        assert_eq!(replicas_owner(&deployment(serde_json::json!([]))), ReplicasOwner::Unknown);
    }

    #[test]
    fn a_cached_node_keeps_its_labels_and_taints() {
        let mut node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "spot-1", "labels": {"karpenter.sh/capacity-type": "spot"}},
            "spec": {"taints": [{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}], "podCIDR": "10.0.0.0/24"},
            "status": {"images": [{"names": ["a"], "sizeBytes": 1}]}
        }))
        .expect("a node");
        strip_node(&mut node);
        assert_eq!(node.metadata.labels.as_ref().map(|l| l.len()), Some(1));
        let spec = node.spec.clone().unwrap_or_default();
        assert_eq!(spec.taints.map(|t| t.len()), Some(1));
        assert_eq!(spec.pod_cidr, None);
        assert!(node.status.is_none());
    }

    #[test]
    fn a_k8s_openapi_object_read_as_a_cached_one_keeps_the_same_fields() {
        let full: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop"}, "spec": {"nodeName": "spot-1", "containers": []}
        }))
        .expect("a pod");
        let watched: WatchedPod = read_as(&full);
        assert_eq!(watched.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(watched.spec.and_then(|s| s.node_name).as_deref(), Some("spot-1"));
    }
}
