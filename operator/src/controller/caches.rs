//! The cluster as the operator reads it: one watch per kind, started once per process and shared by
//! the controller, the rebalancer and the placement webhook. A round reads these caches instead of
//! asking the API server, so the API's load does not grow with policies × rounds (only writes do).
//!
//! Every replica keeps them, the standby too: the webhook runs everywhere, and a standby that takes
//! over finds its caches warm. What no decision reads is stripped before it is stored
//! (`managedFields`, last-applied annotations, most of a pod's spec and status, a node's status), so
//! memory follows the number of objects, not their size.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, NodeSpec, Pod, PodSpec, PodStatus};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

use crate::api::{CapacityPool, ScalingPolicy};

/// The annotation `kubectl apply` writes: a whole copy of the object, read by no decision.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How long startup waits for every cache to hold its first complete list.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Caches {
    pub policies: Store<ScalingPolicy>,
    pub deployments: Store<Deployment>,
    pub hpas: Store<HorizontalPodAutoscaler>,
    /// KEDA's ScaledObjects, when KEDA is installed (and readable) at startup.
    pub scaled_objects: Option<Store<DynamicObject>>,
    pub pools: Store<CapacityPool>,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "the {0} cache did not complete its first list within {SYNC_TIMEOUT:?}: is the API server reachable, and may we list them?"
    )]
    NotSynced(&'static str),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Caches {
    /// Starts the watches (of `namespace` only, when given, for namespaced kinds) and waits until
    /// each holds a complete list, so that no round decides on a half-filled cache.
    pub async fn start(client: &Client, namespace: Option<&str>) -> Result<Caches, CacheError> {
        fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
        where
            K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        {
            match namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            }
        }
        let caches = Caches {
            policies: watch(scoped(client, namespace), strip),
            deployments: watch(scoped(client, namespace), strip),
            hpas: watch(scoped(client, namespace), strip),
            scaled_objects: scaled_objects(client, namespace).await?,
            pools: watch(Api::all(client.clone()), strip),
            pods: watch(scoped(client, namespace), strip_pod),
            nodes: watch(Api::all(client.clone()), strip_node),
        };
        caches.synced().await?;
        Ok(caches)
    }

    async fn synced(&self) -> Result<(), CacheError> {
        async fn wait<K>(name: &'static str, store: &Store<K>) -> Result<(), CacheError>
        where
            K: Resource + Clone + 'static,
            K::DynamicType: std::hash::Hash + Eq + Clone,
        {
            // `wait_until_ready` fails only when the writer is gone, which the spawned watch never drops.
            match tokio::time::timeout(SYNC_TIMEOUT, store.wait_until_ready()).await {
                Ok(_) => Ok(()),
                Err(_) => Err(CacheError::NotSynced(name)),
            }
        }
        wait("ScalingPolicy", &self.policies).await?;
        wait("Deployment", &self.deployments).await?;
        wait("HorizontalPodAutoscaler", &self.hpas).await?;
        wait("CapacityPool", &self.pools).await?;
        wait("Pod", &self.pods).await?;
        wait("Node", &self.nodes).await?;
        if let Some(scaled_objects) = &self.scaled_objects {
            wait("ScaledObject", scaled_objects).await?;
        }
        Ok(())
    }
}

/// A store kept by a watch that runs for the life of the process (retrying with kube-runtime's
/// default backoff), each object passed through `strip` first.
fn watch<K>(api: Api<K>, strip: fn(&mut K)) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    watch_with(api, (), strip)
}

/// [`watch`] for a kind known only at run time (`dyntype` says which).
fn watch_with<K>(api: Api<K>, dyntype: K::DynamicType, strip: fn(&mut K)) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
{
    let writer = Writer::new(dyntype);
    let store = writer.as_reader();
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff().modify(strip);
    tokio::spawn(reflector::reflector(writer, stream).for_each(|_| async {}));
    store
}

/// The ScaledObject cache, when the API server serves KEDA's CRD and lets us list it; none otherwise
/// (nothing to conflict with that we could see).
async fn scaled_objects(client: &Client, namespace: Option<&str>) -> Result<Option<Store<DynamicObject>>, CacheError> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"), "scaledobjects");
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 403 => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    Ok(Some(watch_with(api, resource, strip)))
}

/// What no object's reader needs: the field managers' bookkeeping and kubectl's copy of the object.
fn strip<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// A pod as placement reads it: metadata (labels, owners, deletion cost, timestamps), its node, and
/// its conditions (Ready, PodScheduled).
fn strip_pod(pod: &mut Pod) {
    strip(pod);
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    pod.spec = Some(PodSpec { node_name, ..PodSpec::default() });
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.clone());
    pod.status = Some(PodStatus { conditions, ..PodStatus::default() });
}

/// A node as placement reads it: labels (the pools' selectors), taints (interruptions), deletion.
fn strip_node(node: &mut Node) {
    strip(node);
    let spec = node.spec.take().unwrap_or_default();
    node.spec = Some(NodeSpec { taints: spec.taints, unschedulable: spec.unschedulable, ..NodeSpec::default() });
    node.status = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_pod_keeps_what_placement_reads_and_nothing_else() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "abc"},
                "annotations": {LAST_APPLIED: "{...}", "controller.kubernetes.io/pod-deletion-cost": "-3"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u"}],
                "managedFields": [{"manager": "kubectl"}]
            },
            "spec": {"nodeName": "spot-1", "containers": [{"name": "app", "image": "web:1", "env": [{"name": "A", "value": "x"}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": []}
        }))
        .expect("a pod");
        strip_pod(&mut pod);
        assert_eq!(pod.metadata.managed_fields, None);
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert!(annotations.contains_key("controller.kubernetes.io/pod-deletion-cost"));
        assert_eq!(pod.metadata.owner_references.as_ref().map(Vec::len), Some(1));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.node_name.as_deref(), Some("spot-1"));
        assert!(spec.containers.is_empty());
        let status = pod.status.clone().unwrap_or_default();
        assert_eq!(status.conditions.map(|c| c.len()), Some(1));
        assert_eq!(status.phase, None);
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
}
