//! The mutating admission webhook on pod creation, served over TLS by every operator replica. It
//! fails open (the chart sets `failurePolicy: Ignore`): a pod it cannot place is admitted as is,
//! and the rebalancer corrects the split later.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;

use super::PoolOf;
use super::assign::{Pool, assign};
use super::mutate::placement_patch;
use super::tls::ServingKeys;
use crate::controller::Telemetry;
use crate::controller::cached::{POD_TEMPLATE_HASH, WatchedPod};
use crate::controller::caches::Caches;
use crate::controller::telemetry::AdmissionLabels;
use crate::engine::{Policy, Split};

/// Assignments this recent are counted from the ledger, not from the pod cache, which lags.
const IN_FLIGHT: Duration = Duration::from_secs(20);

pub struct WebhookState {
    /// Policies and pods are looked up by their Deployment, nodes and pools by name.
    pub caches: Caches,
    ledger: Mutex<Ledger>,
    /// Admissions by outcome and their latency.
    telemetry: Arc<Telemetry>,
}

/// Recent assignments per workload (namespace, Deployment, its UID: a Deployment created again under
/// the same name counts none of the old one's): the pod cache has not seen them yet.
struct Ledger {
    recent: HashMap<(String, String, String), Vec<(Pool, Instant)>>,
    /// When workloads with nothing in flight were last dropped. Sweeping every workload on every
    /// admission cost milliseconds under the lock with 10,000 workloads in flight (benches/webhook.rs),
    /// so the sweep runs once per [`IN_FLIGHT`]: an entry outlives its last assignment by at most that.
    swept: Instant,
}

impl Ledger {
    /// The recent assignments of workload `key` at `now`, the expired ones dropped.
    fn recent(&mut self, key: (String, String, String), now: Instant) -> &mut Vec<(Pool, Instant)> {
        let in_flight = |at: &Instant| now.saturating_duration_since(*at) < IN_FLIGHT;
        if now.saturating_duration_since(self.swept) >= IN_FLIGHT {
            // Workloads with nothing in flight any more (deleted, or recreated under a new UID) go.
            self.recent.retain(|_, recent| recent.iter().any(|(_, at)| in_flight(at)));
            self.swept = now;
        }
        let recent = self.recent.entry(key).or_default();
        recent.retain(|(_, at)| in_flight(at));
        recent
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

impl WebhookState {
    pub fn new(caches: Caches, telemetry: Arc<Telemetry>) -> Self {
        WebhookState { caches, ledger: Mutex::new(Ledger { recent: HashMap::new(), swept: Instant::now() }), telemetry }
    }

    /// The patch for a new pod, or none when no policy places it.
    fn place(&self, namespace: &str, pod: &Value) -> Option<Value> {
        let pod_typed: WatchedPod = serde_json::from_value(pod.clone()).ok()?;
        let deployment = deployment_of(&pod_typed)?;
        let policy = self.caches.policies_of(namespace, &deployment).into_iter().find(|p| p.spec.placement.is_some())?;
        let rules = Policy::from_spec(&policy.spec).ok()?;
        let placement = rules.placement.as_ref()?;
        let pool_named = |name: &str| self.caches.pools.get(&ObjectRef::new(name));
        let (spot_pool, on_demand_pool) = (pool_named(&placement.spot_pool)?, pool_named(&placement.on_demand_pool)?);
        let status = policy.status.clone().unwrap_or_default();
        let spot_healthy = status.placement.as_ref().is_none_or(|p| p.spot_healthy);
        let desired = status.desired_replicas.unwrap_or(rules.min_replicas);

        let uid = self.caches.deployments.get(&ObjectRef::new(&deployment).within(namespace)).and_then(|d| d.uid());
        let key = (namespace.to_owned(), deployment.clone(), uid.unwrap_or_default());
        let mut existing = Split { spot: 0, on_demand: 0 };
        let settled = jiff::Timestamp::now() - jiff::SignedDuration::try_from(IN_FLIGHT).unwrap_or_default();
        for pod in self.caches.pods_of(namespace, &deployment) {
            if pod.deleting || pod.created.is_none_or(|c| c > settled) {
                continue;
            }
            match self.caches.pool_of(&pod, &spot_pool, &on_demand_pool) {
                PoolOf::Spot => existing.spot += 1,
                PoolOf::OnDemand => existing.on_demand += 1,
                PoolOf::Neither => {}
            }
        }
        // Only what the ledger adds is read under its lock: concurrent admissions of one workload
        // see each other's assignment, those of other workloads barely wait.
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let recent = ledger.recent(key, now);
        for (pool, _) in recent.iter() {
            match pool {
                Pool::Spot => existing.spot += 1,
                Pool::OnDemand => existing.on_demand += 1,
            }
        }
        let assignment = assign(&rules, spot_healthy, desired, existing)?;
        recent.push((assignment.pool, now));
        let (name, pool) = match assignment.pool {
            Pool::Spot => (&placement.spot_pool, &spot_pool),
            Pool::OnDemand => (&placement.on_demand_pool, &on_demand_pool),
        };
        Some(placement_patch(pod, name, pool, assignment.deletion_cost))
    }
}

/// The Deployment a pod belongs to: its ReplicaSet owner, minus the pod-template-hash suffix.
pub fn deployment_of(pod: &impl kube::Resource) -> Option<String> {
    let hash = pod.labels().get(POD_TEMPLATE_HASH)?;
    let owner = pod.owner_references().iter().find(|o| o.kind == "ReplicaSet")?;
    owner.name.strip_suffix(&format!("-{hash}")).map(str::to_owned)
}

/// The answer to one AdmissionReview body: the pod admitted, placed when a policy places it.
/// Whatever the body, never a panic: one that is not an AdmissionReview is an error, and a request
/// whose pod cannot be read or placed is admitted as it is (the webhook fails open).
pub fn admit(state: &WebhookState, body: &[u8]) -> Result<AdmissionReview<DynamicObject>, serde_json::Error> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(error) => return Ok(AdmissionResponse::invalid(error.to_string()).into_review()),
    };
    let response = AdmissionResponse::from(&request);
    let namespace = request.namespace.clone().unwrap_or_default();
    let pod = request.object.as_ref().and_then(|o| serde_json::to_value(o).ok());
    let patch = pod.and_then(|pod| state.place(&namespace, &pod));
    let response = match patch.map(serde_json::from_value::<json_patch::Patch>) {
        Some(Ok(patch)) => match response.clone().with_patch(patch) {
            Ok(patched) => patched,
            Err(error) => {
                tracing::warn!(%error, "admitting the pod unplaced");
                response
            }
        },
        // No policy places this pod, or the patch could not be built: admit it as it is.
        _ => response,
    };
    Ok(response.into_review())
}

async fn mutate_pods(
    State(state): State<Arc<WebhookState>>,
    body: axum::body::Bytes,
) -> Result<Json<AdmissionReview<DynamicObject>>, (axum::http::StatusCode, String)> {
    let started = Instant::now();
    let answer = admit(&state, &body);
    let outcome = match &answer {
        Ok(review) if review.response.as_ref().is_some_and(|r| r.patch.is_some()) => "placed",
        Ok(_) => "admitted",
        Err(_) => "rejected",
    };
    state.telemetry.webhook_admissions.get_or_create(&AdmissionLabels { outcome }).inc();
    state.telemetry.webhook_admission_duration.observe(started.elapsed().as_secs_f64());
    answer.map(Json).map_err(|error| (axum::http::StatusCode::BAD_REQUEST, format!("not an AdmissionReview: {error}")))
}

/// The most connections the webhook holds open at once (the API server keeps a few alive).
const MAX_CONNECTIONS: usize = 256;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `/mutate-pods` over TLS until the process ends, each handshake with the certificate
/// `keys` holds then (see [`super::tls`]: it rotates without a restart).
pub async fn serve(
    addr: SocketAddr,
    keys: Arc<ServingKeys>,
    state: Arc<WebhookState>,
) -> Result<tokio::task::JoinHandle<()>, WebhookError> {
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(keys);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| WebhookError::Listen { addr, source })?;
    let router = Router::new().route("/mutate-pods", post(mutate_pods)).with_state(state);
    tracing::info!(%addr, "placement webhook serving");
    // A client that opens connections and never finishes the handshake (or many of them) must not
    // tie the webhook up: handshakes have a deadline and open connections a cap.
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    Ok(tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                tracing::warn!(limit = MAX_CONNECTIONS, "webhook connection refused: too many open");
                continue; // dropping the socket closes it
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let io = hyper_util::rt::TokioIo::new(tls);
                if let Err(error) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                    tracing::debug!(%error, "webhook connection ended");
                }
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::caches::Cluster;
    use serde_json::json;

    fn state() -> WebhookState {
        let pool = |name: &str, capacity: &str| {
            serde_json::from_value(json!({
                "apiVersion": "trimtab.dev/v1alpha1", "kind": "CapacityPool", "metadata": {"name": name},
                "spec": {"capacityType": capacity, "nodeSelector": {"pool": name}, "price": {"cpuCoreHour": "1", "memoryGiBHour": "1"}}
            }))
            .expect("a pool")
        };
        let policy = serde_json::from_value(json!({
            "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 20,
                     "objectives": [{"name": "rps", "kind": "AverageValue", "query": "q", "target": "1"}],
                     "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": 2, "spotPercentage": 70}},
            "status": {"desiredReplicas": 10}
        }))
        .expect("a policy");
        let deployment =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop", "uid": "u1"}})).expect("a deployment");
        let cluster = Cluster {
            policies: vec![policy],
            deployments: vec![deployment],
            pools: vec![pool("spot", "Spot"), pool("on-demand", "OnDemand")],
            ..Cluster::default()
        };
        WebhookState::new(Caches::holding(cluster), Arc::default())
    }

    fn new_pod(i: usize) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": format!("r{i}"), "operation": "CREATE", "namespace": "shop", "userInfo": {},
                "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "generateName": "web-abc-", "labels": {"pod-template-hash": "abc"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs"}]}}
            }
        }))
        .expect("a review")
    }

    #[test]
    fn a_burst_of_pods_the_cache_has_not_seen_yet_lands_on_the_split_through_the_ledger() {
        let state = state();
        let mut spot = 0;
        for i in 0..10 {
            let review = admit(&state, &new_pod(i)).expect("a review");
            let patch = review.response.and_then(|r| r.patch).expect("the pod is placed");
            if String::from_utf8_lossy(&patch).contains(r#""value":"spot""#) {
                spot += 1;
            }
        }
        // 10 replicas, 2 on-demand as the base, 70 % of the other 8 on spot: 5 (floor), 5 on-demand.
        assert_eq!(spot, 5);
    }
}
