//! What the caches keep of each object: only what a round, the rebalancer or the webhook reads.
//!
//! Pods and Deployments are most of a cluster's objects, so they are read into types of their own
//! that hold only those fields (`#[resource(inherit)]` makes them watchable as the kind itself). A
//! k8s-openapi `Pod` is 2 KiB before it holds anything (every field of its spec and status is
//! there, empty), and the watch would build one per event only to strip it; these are read from
//! the event's JSON directly, skipping the rest. The field names are the API's, so code reads
//! `pod.spec.node_name` as it would on a `Pod`. What the kinds kept whole still hold that no reader
//! needs is stripped when an event arrives (`managedFields`, kubectl's last-applied copy).
//!
//! `cargo bench -p trimtab --bench cache_memory` measures what each kind costs per object.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, NodeSpec, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::Resource;
use serde::Deserialize;

use super::FIELD_MANAGER;
use crate::engine::ReplicasOwner;
use crate::placement::mutate::{DELETION_COST_ANNOTATION, POOL_LABEL};

/// The annotation `kubectl apply` writes: a whole copy of the object, read by no decision.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The label the ReplicaSet controller puts on a pod, naming its template (and so its ReplicaSet).
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A pod as placement reads it: its name, owner, pool label, deletion cost and timestamps, its node,
/// and its Ready and PodScheduled conditions.
#[derive(Resource, Deserialize, Clone, Debug, Default, PartialEq)]
#[resource(inherit = Pod)]
pub struct CachedPod {
    pub metadata: ObjectMeta,
    pub spec: Option<CachedPodSpec>,
    pub status: Option<CachedPodStatus>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodSpec {
    pub node_name: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CachedPodStatus {
    pub conditions: Option<Vec<PodCondition>>,
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

/// A pod's metadata as placement reads it (its pool label and template hash, its ReplicaSet, its
/// deletion cost, when it was created and whether it is going), and of its conditions Ready and
/// PodScheduled without their messages.
pub fn strip_pod(pod: &mut CachedPod) {
    let meta = std::mem::take(&mut pod.metadata);
    let keep = |map: Option<BTreeMap<String, String>>, keys: &[&str]| {
        let kept: BTreeMap<String, String> =
            map.unwrap_or_default().into_iter().filter(|(k, _)| keys.contains(&k.as_str())).collect();
        (!kept.is_empty()).then_some(kept)
    };
    let owners: Vec<_> = meta.owner_references.unwrap_or_default().into_iter().filter(|o| o.kind == "ReplicaSet").collect();
    pod.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        labels: keep(meta.labels, &[POOL_LABEL, POD_TEMPLATE_HASH]),
        annotations: keep(meta.annotations, &[DELETION_COST_ANNOTATION]),
        owner_references: (!owners.is_empty()).then_some(owners),
        creation_timestamp: meta.creation_timestamp,
        deletion_timestamp: meta.deletion_timestamp,
        ..ObjectMeta::default()
    };
    if let Some(conditions) = pod.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        conditions.retain(|c| c.type_ == "Ready" || c.type_ == "PodScheduled");
        for condition in conditions {
            condition.message = None;
            condition.last_probe_time = None;
        }
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

    fn pod(value: serde_json::Value) -> CachedPod {
        let mut pod: CachedPod = serde_json::from_value(value).expect("a pod");
        strip_pod(&mut pod);
        pod
    }

    #[test]
    fn a_cached_pod_keeps_what_placement_reads_and_nothing_else() {
        let pod = pod(serde_json::json!({
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
        }));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.keys().collect::<Vec<_>>(), [POD_TEMPLATE_HASH, POOL_LABEL]);
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), [DELETION_COST_ANNOTATION]);
        assert_eq!(pod.metadata.owner_references.as_ref().map(Vec::len), Some(1));
        assert!(pod.metadata.creation_timestamp.is_some());
        assert_eq!((pod.metadata.managed_fields.as_ref(), pod.metadata.generate_name.as_ref()), (None, None));
        assert_eq!(pod.spec.and_then(|s| s.node_name).as_deref(), Some("spot-1"));
        let conditions = pod.status.and_then(|s| s.conditions).unwrap_or_default();
        let kept: Vec<_> = conditions.iter().map(|c| (c.type_.as_str(), c.reason.as_deref(), c.message.as_deref())).collect();
        assert_eq!(kept, [("Ready", None, None), ("PodScheduled", Some("Unschedulable"), None)]);
        assert!(conditions.iter().all(|c| c.last_transition_time.is_some()));
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
        let cached: CachedPod = read_as(&full);
        assert_eq!(cached.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(cached.spec.and_then(|s| s.node_name).as_deref(), Some("spot-1"));
    }
}
