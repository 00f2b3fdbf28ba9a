//! The cluster as the operator reads it: one watch per kind, started once per process and shared by
//! the controller, the rebalancer and the placement webhook. A round reads these caches instead of
//! asking the API server, so the API's load does not grow with policies × rounds (only writes do).
//!
//! Every replica keeps them, the standby too: the webhook runs everywhere, and a standby that takes
//! over finds its caches warm. What no decision reads is not kept ([`cached`]: pods and
//! Deployments are read into types of their own, the other kinds stripped), so memory follows the
//! number of objects, not their size. Pods, most of a cluster's objects, are kept in their index
//! by target alone, as [`CachedPod`]s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::{mpsc, watch as signal};

use super::cached::{self, CachedDeployment, CachedDeploymentSpec, CachedPod, WatchedPod, strip, strip_deployment, strip_node};
use super::index::{TargetIndex, target_key};
use super::lenient::{self, LenientPolicy};
use crate::api::{CapacityPool, ScalingPolicy};
use crate::placement::PoolOf;
use crate::placement::webhook::deployment_of;

/// How long startup waits for every cache to hold its first complete list.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Caches {
    pub policies: Store<ScalingPolicy>,
    pub deployments: Store<CachedDeployment>,
    pub hpas: Store<HorizontalPodAutoscaler>,
    /// KEDA's ScaledObjects, when KEDA is installed (and readable) at startup.
    pub scaled_objects: Option<Store<DynamicObject>>,
    pub pools: Store<CapacityPool>,
    pub nodes: Store<Node>,
    /// The policies, HPAs, ScaledObjects and pods of each target (the pods' only cache).
    pub by_target: Arc<ByTarget>,
    /// Whether the pods' watch has completed its first list.
    pods_listed: signal::Receiver<bool>,
    /// Where a change to a policy's spec, its target or a competing autoscaler is announced.
    pub wakes: Wakes,
}

/// The objects [`Caches::holding`] holds.
#[derive(Default)]
pub struct Cluster {
    pub policies: Vec<ScalingPolicy>,
    pub deployments: Vec<Deployment>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub pools: Vec<CapacityPool>,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
}

/// Indexes by target (`namespace/deployment`), kept from the caches' watch events.
pub struct ByTarget {
    pub policies: TargetIndex<ScalingPolicy>,
    pub hpas: TargetIndex<HorizontalPodAutoscaler>,
    pub scaled_objects: TargetIndex<DynamicObject>,
    pub pods: TargetIndex<WatchedPod, Arc<CachedPod>>,
}

impl Default for ByTarget {
    fn default() -> Self {
        ByTarget {
            policies: TargetIndex::new(policy_target),
            hpas: TargetIndex::new(hpa_target),
            scaled_objects: TargetIndex::new(scaled_object_target),
            pods: TargetIndex::keeping(pod_target, |pod| Arc::new(CachedPod::of(pod))),
        }
    }
}

fn policy_target(policy: &ScalingPolicy) -> Option<String> {
    // A policy Trimtab cannot read (see `lenient`) is about no target.
    if policy.spec.unreadable.is_some() {
        return None;
    }
    Some(target_key(&policy.namespace()?, &policy.spec.target_ref.name))
}

fn hpa_target(hpa: &HorizontalPodAutoscaler) -> Option<String> {
    let reference = &hpa.spec.as_ref()?.scale_target_ref;
    (reference.kind == "Deployment").then(|| target_key(&hpa.namespace().unwrap_or_default(), &reference.name))
}

fn scaled_object_target(object: &DynamicObject) -> Option<String> {
    let reference = &object.data["spec"]["scaleTargetRef"];
    let kind = reference["kind"].as_str().unwrap_or("Deployment");
    let name = reference["name"].as_str()?;
    (kind == "Deployment").then(|| target_key(&object.namespace().unwrap_or_default(), name))
}

fn pod_target(pod: &WatchedPod) -> Option<String> {
    Some(target_key(&pod.namespace()?, &deployment_of(pod)?))
}

/// Wake-ups for the controller: the policies to reconcile now, not at their interval. A policy
/// of a shard this replica does not hold is dropped by the controller's shard filter (a shard
/// gained wakes all its policies).
#[derive(Clone, Default)]
pub struct Wakes {
    sender: Arc<Mutex<Option<mpsc::UnboundedSender<ObjectRef<ScalingPolicy>>>>>,
    /// Scale writes in flight, by target: their echo on the Deployment watch wakes nobody.
    scaling: Arc<Mutex<HashMap<String, i32>>>,
}

impl Wakes {
    /// Starts listening (replacing any earlier listener).
    pub fn listen(&self) -> mpsc::UnboundedReceiver<ObjectRef<ScalingPolicy>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
        receiver
    }

    pub fn stop_listening(&self) {
        *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Trimtab is about to scale Deployment `namespace/name` to `replicas`.
    pub fn expect_scale(&self, namespace: &str, name: &str, replicas: i32) {
        self.scaling.lock().unwrap_or_else(|e| e.into_inner()).insert(target_key(namespace, name), replicas);
    }

    /// Whether `replicas` on target `key` is the echo of Trimtab's own scale write (forgotten once seen).
    fn own_scale(&self, key: &str, replicas: Option<i32>) -> bool {
        let mut scaling = self.scaling.lock().unwrap_or_else(|e| e.into_inner());
        match scaling.get(key) {
            Some(expected) if Some(*expected) == replicas => {
                scaling.remove(key);
                true
            }
            _ => false,
        }
    }

    pub fn wake(&self, policy: ObjectRef<ScalingPolicy>) {
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = sender.as_ref()
            && s.send(policy).is_err()
        {
            *sender = None;
        }
    }
}

impl Caches {
    /// Caches that watch nothing and hold nothing: what the webhook and the controller see of an
    /// empty cluster (tests and fuzzing use it without an API server).
    pub fn empty() -> Self {
        Self::holding(Cluster::default())
    }

    /// Caches that watch nothing and hold `cluster` as the watches would have stored it (stripped,
    /// indexed by target): a cluster of any size without an API server, for benchmarks and tests.
    pub fn holding(cluster: Cluster) -> Self {
        let by_target = Arc::new(ByTarget::default());
        fn store<K>(objects: impl IntoIterator<Item = K>, strip: fn(&mut K), index: Option<&TargetIndex<K>>) -> Store<K>
        where
            K: Resource<DynamicType = ()> + Clone + 'static,
        {
            let mut writer = Writer::default();
            for mut object in objects {
                strip(&mut object);
                let event = watcher::Event::Apply(object);
                if let Some(index) = index {
                    index.apply(&event);
                }
                writer.apply_watcher_event(&event);
            }
            writer.as_reader()
        }
        for pod in &cluster.pods {
            by_target.pods.apply(&watcher::Event::Apply(cached::read_as(pod)));
        }
        Caches {
            policies: store(cluster.policies, strip, Some(&by_target.policies)),
            deployments: store(cluster.deployments.iter().map(cached::read_as), strip_deployment, None),
            hpas: store(cluster.hpas, strip, Some(&by_target.hpas)),
            scaled_objects: None,
            pools: store(cluster.pools, strip, None),
            nodes: store(cluster.nodes, strip_node, None),
            by_target,
            pods_listed: signal::channel(true).1,
            wakes: Wakes::default(),
        }
    }

    /// The cached objects of `store` that `index` names for `key`, each checked to be about it.
    fn lookup<K>(
        store: &Store<K>,
        index: &TargetIndex<K>,
        key: &str,
        dyntype: &K::DynamicType,
        target_of: fn(&K) -> Option<String>,
    ) -> Vec<Arc<K>>
    where
        K: Resource + Clone + 'static,
        K::DynamicType: std::hash::Hash + Eq + Clone,
    {
        let namespace = key.split_once('/').map_or("", |(ns, _)| ns);
        index
            .get(key)
            .into_iter()
            .filter_map(|name| store.get(&ObjectRef::new_with(&name, dyntype.clone()).within(namespace)))
            .filter(|object| target_of(object).as_deref() == Some(key))
            .collect()
    }

    /// The policies that target Deployment `namespace/name`.
    pub fn policies_of(&self, namespace: &str, name: &str) -> Vec<Arc<ScalingPolicy>> {
        Self::lookup(&self.policies, &self.by_target.policies, &target_key(namespace, name), &(), policy_target)
    }

    /// The HPAs that scale Deployment `namespace/name`.
    pub fn hpas_of(&self, namespace: &str, name: &str) -> Vec<Arc<HorizontalPodAutoscaler>> {
        Self::lookup(&self.hpas, &self.by_target.hpas, &target_key(namespace, name), &(), hpa_target)
    }

    /// The ScaledObjects that scale Deployment `namespace/name`.
    pub fn scaled_objects_of(&self, namespace: &str, name: &str) -> Vec<Arc<DynamicObject>> {
        let Some(store) = &self.scaled_objects else { return Vec::new() };
        let key = target_key(namespace, name);
        Self::lookup(store, &self.by_target.scaled_objects, &key, &scaled_object_resource(), scaled_object_target)
    }

    /// The pods of Deployment `namespace/name`.
    pub fn pods_of(&self, namespace: &str, name: &str) -> Vec<Arc<CachedPod>> {
        self.by_target.pods.values(&target_key(namespace, name))
    }

    /// Which of a policy's two pools `pod` is on: the one its `trimtab.dev/pool` label names, or
    /// for a pod placed without the webhook, the one whose node selector its node matches. The
    /// controller, the rebalancer and the webhook count a workload's pods by this one rule.
    pub fn pool_of(&self, pod: &CachedPod, spot: &CapacityPool, on_demand: &CapacityPool) -> PoolOf {
        if let Some(pool) = labelled_pool(pod, spot, on_demand) {
            return pool;
        }
        // A keyed look-up: this runs for every pod of the workload on every admission.
        let Some(node) = pod.node_name.as_deref().and_then(|name| self.nodes.get(&ObjectRef::new(name))) else {
            return PoolOf::Neither;
        };
        if on_pool(&node, spot) {
            PoolOf::Spot
        } else if on_pool(&node, on_demand) {
            PoolOf::OnDemand
        } else {
            PoolOf::Neither
        }
    }

    /// Wakes every policy of target `key`.
    fn wake_target(wakes: &Wakes, index: &TargetIndex<ScalingPolicy>, key: &str) {
        let namespace = key.split_once('/').map_or("", |(ns, _)| ns);
        for name in index.get(key) {
            wakes.wake(ObjectRef::new(&name).within(namespace));
        }
    }
}

fn scaled_object_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"), "scaledobjects")
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
        let by_target = Arc::new(ByTarget::default());
        let wakes = Wakes::default();
        let policies = watch_policies(scoped(client, namespace), {
            let (by_target, wakes) = (by_target.clone(), wakes.clone());
            move |event, old| on_policy(&by_target, &wakes, event, old)
        });
        let deployments = watch(scoped(client, namespace), strip_deployment, {
            let (by_target, wakes, policies) = (by_target.clone(), wakes.clone(), policies.clone());
            move |event, old| on_deployment(&by_target, &wakes, &policies, event, old)
        });
        let hpas = watch(scoped(client, namespace), strip, {
            let (by_target, wakes) = (by_target.clone(), wakes.clone());
            move |event, _: Option<Arc<HorizontalPodAutoscaler>>| {
                for key in by_target.hpas.apply(event) {
                    Caches::wake_target(&wakes, &by_target.policies, &key);
                }
            }
        });
        let scaled_objects = scaled_objects(client, namespace, {
            let (by_target, wakes) = (by_target.clone(), wakes.clone());
            move |event, _: Option<Arc<DynamicObject>>| {
                for key in by_target.scaled_objects.apply(event) {
                    Caches::wake_target(&wakes, &by_target.policies, &key);
                }
            }
        })
        .await?;
        let pods_listed = watch_pods(scoped(client, namespace), by_target.clone());
        let caches = Caches {
            policies,
            deployments,
            hpas,
            scaled_objects,
            pools: watch(Api::all(client.clone()), strip, |_, _: Option<Arc<CapacityPool>>| {}),
            nodes: watch(Api::all(client.clone()), strip_node, |_, _: Option<Arc<Node>>| {}),
            by_target,
            pods_listed,
            wakes,
        };
        caches.synced().await?;
        Ok(caches)
    }

    async fn synced(&self) -> Result<(), CacheError> {
        /// Waits for `listed` (a cache's first complete list), at most [`SYNC_TIMEOUT`]. Neither
        /// `wait_until_ready` nor `wait_for` fails while the spawned watch lives, and it never ends.
        async fn within<T>(name: &'static str, listed: impl Future<Output = T>) -> Result<(), CacheError> {
            tokio::time::timeout(SYNC_TIMEOUT, listed).await.map(|_| ()).map_err(|_| CacheError::NotSynced(name))
        }
        let mut pods_listed = self.pods_listed.clone();
        within("ScalingPolicy", self.policies.wait_until_ready()).await?;
        within("Deployment", self.deployments.wait_until_ready()).await?;
        within("HorizontalPodAutoscaler", self.hpas.wait_until_ready()).await?;
        within("CapacityPool", self.pools.wait_until_ready()).await?;
        within("Pod", pods_listed.wait_for(|listed| *listed)).await?;
        within("Node", self.nodes.wait_until_ready()).await?;
        if let Some(scaled_objects) = &self.scaled_objects {
            within("ScaledObject", scaled_objects.wait_until_ready()).await?;
        }
        Ok(())
    }
}

/// A store kept by a watch that runs for the life of the process (retrying with kube-runtime's
/// default backoff), each object passed through `strip` first, and each event shown to `hook` with
/// the object as it was, once the store holds it ([`reflect`]).
fn watch<K, H>(api: Api<K>, strip: fn(&mut K), hook: H) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    H: FnMut(&watcher::Event<K>, Option<Arc<K>>) + Send + 'static,
{
    watch_with(api, (), strip, hook)
}

/// [`watch`] for a kind known only at run time (`dyntype` says which).
fn watch_with<K, H>(api: Api<K>, dyntype: K::DynamicType, strip: fn(&mut K), hook: H) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
    H: FnMut(&watcher::Event<K>, Option<Arc<K>>) + Send + 'static,
{
    let writer = Writer::new(dyntype.clone());
    let store = writer.as_reader();
    reflect(writer, dyntype, watcher(api, watcher::Config::default().any_semantic()).default_backoff().modify(strip), hook);
    store
}

/// The pods' watch, for the life of the process: each event goes to their index, which is their
/// cache. The answer says when the first list is complete.
fn watch_pods(api: Api<WatchedPod>, by_target: Arc<ByTarget>) -> signal::Receiver<bool> {
    let (listed, receiver) = signal::channel(false);
    let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    tokio::spawn(events.for_each(move |event| {
        // An error is the watch's to retry (with backoff), as a reflector's is.
        if let Ok(event) = event {
            by_target.pods.apply(&event);
            if matches!(event, watcher::Event::InitDone) {
                listed.send_replace(true);
            }
        }
        async {}
    }));
    receiver
}

/// The policies' store. Each is read on its own ([`LenientPolicy`]): one that does not deserialize
/// is stored as a shell its round reports, instead of failing the list, and so the watch, of all.
fn watch_policies<H>(api: Api<LenientPolicy>, hook: H) -> Store<ScalingPolicy>
where
    H: FnMut(&watcher::Event<ScalingPolicy>, Option<Arc<ScalingPolicy>>) + Send + 'static,
{
    let writer = Writer::new(());
    let store = writer.as_reader();
    let events =
        watcher(api, watcher::Config::default().any_semantic()).default_backoff().modify(strip).map_ok(lenient::policy_event);
    reflect(writer, (), events, hook);
    store
}

/// A watch event and the object as the store held it before the event.
type EventAndOld<K> = (watcher::Event<K>, Option<Arc<K>>);

/// Runs the watch `events` into `writer` for the life of the process. Each event is shown to
/// `hook`, with the object as the store held it before (none when new), once the store shows the
/// event: a policy the hook wakes is in the store when the controller looks it up. Woken any
/// earlier, a new policy was looked up before it was stored, not found, and dropped by the
/// controller with no retry, so it was never reconciled until its spec changed. A relist's events
/// (`Init` to `InitDone`) are stored together at `InitDone`, so they are shown to `hook` then.
fn reflect<K, S, H>(mut writer: Writer<K>, dyntype: K::DynamicType, events: S, mut hook: H)
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    H: FnMut(&watcher::Event<K>, Option<Arc<K>>) + Send + 'static,
{
    let store = writer.as_reader();
    let mut relisted: Option<Vec<EventAndOld<K>>> = None;
    tokio::spawn(events.for_each(move |event| {
        // An error is the watch's to retry (with backoff), as a reflector's is.
        if let Ok(event) = event {
            let old = match &event {
                watcher::Event::Apply(object) | watcher::Event::InitApply(object) | watcher::Event::Delete(object) => {
                    store.get(&ObjectRef::from_obj_with(object, dyntype.clone()))
                }
                watcher::Event::Init | watcher::Event::InitDone => None,
            };
            writer.apply_watcher_event(&event);
            match event {
                watcher::Event::Init => relisted = Some(vec![(event, old)]),
                watcher::Event::InitApply(_) => relisted.get_or_insert_with(Vec::new).push((event, old)),
                watcher::Event::InitDone => {
                    for (listed, old) in relisted.take().unwrap_or_default() {
                        hook(&listed, old);
                    }
                    hook(&event, old);
                }
                watcher::Event::Apply(_) | watcher::Event::Delete(_) => hook(&event, old),
            }
        }
        async {}
    }));
}

/// A policy event: the index follows it; the policy wakes when it is new or its spec (generation)
/// or annotations (trimtab.dev/paused) changed, never for a status write (Trimtab's own above
/// all). A policy appearing or going also wakes the others of its target (who conflicts with whom).
fn on_policy(by_target: &ByTarget, wakes: &Wakes, event: &watcher::Event<ScalingPolicy>, old: Option<Arc<ScalingPolicy>>) {
    for key in by_target.policies.apply(event) {
        Caches::wake_target(wakes, &by_target.policies, &key);
    }
    if let watcher::Event::Apply(policy) | watcher::Event::InitApply(policy) = event {
        let reference = ObjectRef::from_obj(policy);
        let changed = old.is_none_or(|old| {
            old.metadata.generation != policy.metadata.generation
                || old.metadata.uid != policy.metadata.uid
                || old.metadata.annotations != policy.metadata.annotations
        });
        if changed {
            wakes.wake(reference);
        }
    }
}

/// A Deployment event wakes its policies when the Deployment appeared, went, was recreated or its
/// spec changed, except for the echo of a policy's own scale write (only the replicas changed, to
/// what the policy decided). Status changes (pods becoming ready) wait for the interval.
fn on_deployment(
    by_target: &ByTarget,
    wakes: &Wakes,
    policies: &Store<ScalingPolicy>,
    event: &watcher::Event<CachedDeployment>,
    old: Option<Arc<CachedDeployment>>,
) {
    let (deployment, gone) = match event {
        watcher::Event::Apply(d) | watcher::Event::InitApply(d) => (d, false),
        watcher::Event::Delete(d) => (d, true),
        _ => return,
    };
    let namespace = deployment.namespace().unwrap_or_default();
    let key = target_key(&namespace, &deployment.name_any());
    let replicas = deployment.spec.as_ref().and_then(|s| s.replicas);
    let only_replicas = old.as_ref().is_some_and(|old| {
        let without_replicas = |d: &CachedDeployment| d.spec.clone().map(|s| CachedDeploymentSpec { replicas: None, ..s });
        old.metadata.uid == deployment.metadata.uid && without_replicas(old) == without_replicas(deployment)
    });
    let spec_same = old.as_ref().is_some_and(|old| old.metadata.uid == deployment.metadata.uid && old.spec == deployment.spec);
    if !gone && spec_same {
        return;
    }
    if gone || old.as_ref().is_some_and(|old| old.metadata.uid != deployment.metadata.uid) {
        // A scale written to the old Deployment is not the new one's echo (R14).
        wakes.scaling.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
    let own_scale = !gone && only_replicas && wakes.own_scale(&key, replicas);
    for name in by_target.policies.get(&key) {
        let reference = ObjectRef::new(&name).within(&namespace);
        let echo = own_scale
            || (!gone
                && only_replicas
                && policies.get(&reference).is_some_and(|p| p.status.as_ref().and_then(|s| s.desired_replicas) == replicas));
        if !echo {
            wakes.wake(reference);
        }
    }
}

/// The ScaledObject cache, when the API server serves KEDA's CRD and lets us list it; none otherwise
/// (nothing to conflict with that we could see).
async fn scaled_objects<H>(client: &Client, namespace: Option<&str>, hook: H) -> Result<Option<Store<DynamicObject>>, CacheError>
where
    H: FnMut(&watcher::Event<DynamicObject>, Option<Arc<DynamicObject>>) + Send + 'static,
{
    let resource = scaled_object_resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 403 => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    Ok(Some(watch_with(api, resource, strip, hook)))
}

/// The pool `pod`'s `trimtab.dev/pool` label names, when it names one of the two: the webhook
/// placed it there.
pub fn labelled_pool(pod: &CachedPod, spot: &CapacityPool, on_demand: &CapacityPool) -> Option<PoolOf> {
    match pod.pool_label.as_deref() {
        Some(name) if name == spot.name_any() => Some(PoolOf::Spot),
        Some(name) if name == on_demand.name_any() => Some(PoolOf::OnDemand),
        _ => None,
    }
}

/// `node` carries every label of `pool`'s node selector.
pub fn on_pool(node: &Node, pool: &CapacityPool) -> bool {
    pool.spec.node_selector.iter().all(|(k, v)| node.labels().get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn config_map(name: &str, generation: i64) -> ConfigMap {
        let metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            generation: Some(generation),
            ..ObjectMeta::default()
        };
        ConfigMap { metadata, ..ConfigMap::default() }
    }

    /// What a hook saw of one event: its object, whether the store held that object then, and the
    /// generation the object had before.
    type Seen = (String, bool, Option<i64>);

    #[tokio::test]
    async fn a_watched_object_is_in_the_store_when_its_hook_runs_and_a_relist_is_shown_once_stored() {
        let writer = Writer::<ConfigMap>::new(());
        let store = writer.as_reader();
        let (seen, mut shown) = mpsc::unbounded_channel::<Seen>();
        let events = futures::stream::iter([
            watcher::Event::Apply(config_map("web", 1)),
            watcher::Event::Apply(config_map("web", 2)),
            watcher::Event::Init,
            watcher::Event::InitApply(config_map("web", 2)),
            watcher::Event::InitApply(config_map("api", 1)),
            watcher::Event::InitDone,
        ])
        .map(Ok);
        reflect(writer, (), events, {
            let store = store.clone();
            move |event, old: Option<Arc<ConfigMap>>| {
                if let watcher::Event::Apply(object) | watcher::Event::InitApply(object) = event {
                    let stored = store.get(&ObjectRef::from_obj(object)).is_some();
                    let _ = seen.send((object.name_any(), stored, old.and_then(|o| o.metadata.generation)));
                }
            }
        });
        let mut all = Vec::new();
        while all.len() < 4 {
            let next = tokio::time::timeout(Duration::from_secs(10), shown.recv()).await;
            all.push(next.expect("the hook runs for every event").expect("the watch is still running"));
        }
        assert_eq!(
            all,
            [
                ("web".to_owned(), true, None),
                ("web".to_owned(), true, Some(1)),
                ("web".to_owned(), true, Some(2)),
                ("api".to_owned(), true, None),
            ],
            "each object is in the store when its hook runs (a relist's at InitDone), with what it was before"
        );
    }
}
