//! A ScalingPolicy Trimtab cannot read does not stop it reconciling the others: it is reported on
//! its own status (Ready=False, PolicyInvalid, the field named) and reconciled as soon as it is fixed.
//!
//! Our CRD's schema makes such an object impossible to create (every integer has a `maximum`, every
//! enum its values), so this scenario stands for an API server that stores what our CRD would
//! reject: a CRD older than the operator, or one that does not enforce the schema. It swaps the
//! shared ScalingPolicy CRD for a copy that keeps whatever spec it is given, and so it is the only
//! scenario of its file (cargo runs test files one after another), and puts the CRD back after.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{CustomResourceDefinition, JSONSchemaProps};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use trimtab::api::ScalingPolicy;
use trimtab_e2e::appsim::{p99_query, set_load, set_model};
use trimtab_e2e::cluster::{apply_deployment, deployment, install_crds};
use trimtab_e2e::operator::Operator;
use trimtab_e2e::policy::{replicas, wait_condition};
use trimtab_e2e::{Env, eventually, scenario};

const CRD: &str = "scalingpolicies.trimtab.dev";

fn spec(namespace: &str, target: &str, max_replicas: Value) -> Value {
    json!({
        "targetRef": {"kind": "Deployment", "name": target},
        "minReplicas": 3,
        "maxReplicas": max_replicas,
        "interval": "5s",
        "objectives": [{"name": "p99-latency", "kind": "Ceiling", "query": p99_query(namespace, target, "20s"), "target": "300m"}]
    })
}

/// Replaces the served schema of `spec` (`None`: the committed one).
async fn set_spec_schema(client: &Client, schema: Option<JSONSchemaProps>) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = api.get(CRD).await.expect("the ScalingPolicy CRD is installed");
    let committed = ScalingPolicy::crd().spec.versions[0].schema.clone();
    let version = &mut crd.spec.versions[0];
    version.schema = committed;
    if let Some(schema) = schema {
        let root = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()).expect("a schema");
        root.properties.as_mut().expect("properties").insert("spec".into(), schema);
    }
    // A replace, not an apply: the schema is exactly this, whoever else manages the CRD.
    api.replace(CRD, &PostParams::default(), &crd).await.expect("the API server takes the CRD");
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_policy_the_operator_cannot_read_is_reported_alone_and_the_others_are_reconciled() {
    let env = Env::from_environment().await;
    install_crds(&env.client).await;
    let permissive = JSONSchemaProps {
        type_: Some("object".into()),
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..JSONSchemaProps::default()
    };
    set_spec_schema(&env.client, Some(permissive)).await;
    let outcome = AssertUnwindSafe(scenario("unreadable", |env, ns| async move {
        for name in ["web", "worker"] {
            apply_deployment(&env.client, &deployment(&ns, name, 2, false)).await;
            set_model(&ns, name, 50.0, 0.05).await;
            set_load(&ns, name, 20.0).await;
        }
        let resource = ApiResource::erase::<ScalingPolicy>(&());
        let dynamic: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &ns, &resource);
        let object = |name: &str, spec: Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": name}, "spec": spec
            }))
            .expect("a dynamic object")
        };
        // Until the API server serves the swapped schema, it refuses the object.
        let broken = object("broken", spec(&ns, "worker", json!(3_000_000_000_u64)));
        eventually("the API server to store a maxReplicas over i32", Duration::from_secs(30), || async {
            dynamic.create(&PostParams::default(), &broken).await.map(|_| ()).map_err(|e| e.to_string())
        })
        .await;
        dynamic
            .create(&PostParams::default(), &object("web", spec(&ns, "web", json!(10))))
            .await
            .expect("the API server takes a good policy");
        let _operator = Operator::start(&ns, &env.prometheus_url);

        // The good policy is reconciled: scaled to its minReplicas, Ready.
        eventually("web scaled to its minReplicas", Duration::from_secs(60), || async {
            let n = replicas(&env.client, &ns, "web").await;
            if n == 3 { Ok(()) } else { Err(format!("{n} replicas")) }
        })
        .await;
        wait_condition(&env.client, &ns, "web", "Ready", "True", None, Duration::from_secs(60)).await;

        // The broken one is reported on its own status, by field, with a Warning Event; its target is untouched.
        let message = eventually("Ready=False PolicyInvalid on the broken policy", Duration::from_secs(60), || async {
            let policy = dynamic.get("broken").await.map_err(|e| e.to_string())?;
            let ready = policy.data["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
                .ok_or("no Ready condition")?;
            match (ready["status"].as_str(), ready["reason"].as_str(), ready["message"].as_str()) {
                (Some("False"), Some("PolicyInvalid"), Some(message)) => Ok(message.to_owned()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        assert!(message.contains("spec.maxReplicas") && message.contains("3000000000"), "{message}");
        assert!(message.contains("kubectl explain scalingpolicy.spec.maxReplicas"), "{message}");
        let events: Api<Event> = Api::namespaced(env.client.clone(), &ns);
        eventually("a Warning Event on the broken policy", Duration::from_secs(30), || async {
            let list =
                events.list(&ListParams::default().fields("involvedObject.name=broken")).await.map_err(|e| e.to_string())?;
            list.items
                .iter()
                .find(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some("PolicyInvalid")
                        && e.message.as_deref().is_some_and(|m| m.contains("spec.maxReplicas"))
                })
                .map(|_| ())
                .ok_or_else(|| format!("{} events", list.items.len()))
        })
        .await;
        assert_eq!(replicas(&env.client, &ns, "worker").await, 2, "an unreadable policy scales nothing");

        // Fixed, it is reconciled at once (the spec change wakes it; it waits for nothing else).
        dynamic
            .patch("broken", &PatchParams::default(), &Patch::Merge(json!({"spec": {"maxReplicas": 10}})))
            .await
            .expect("the fix is accepted");
        eventually("worker scaled by the fixed policy", Duration::from_secs(30), || async {
            let n = replicas(&env.client, &ns, "worker").await;
            if n == 3 { Ok(()) } else { Err(format!("{n} replicas")) }
        })
        .await;
        wait_condition(&env.client, &ns, "broken", "Ready", "True", None, Duration::from_secs(30)).await;
    }))
    .catch_unwind()
    .await;
    set_spec_schema(&env.client, None).await;
    install_crds(&env.client).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
