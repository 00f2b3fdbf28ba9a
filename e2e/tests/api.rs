//! The CRDs against the real API server: they install, and each schema or CEL rule rejects its bad
//! ScalingPolicy with a message that names the field.

use kube::api::{Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::discovery::ApiResource;
use kube::{Api, CustomResourceExt};
use serde_json::{Value, json};
use trimtab::api::ScalingPolicy;
use trimtab_e2e::cluster::install_crds;
use trimtab_e2e::scenario;

fn good_spec() -> Value {
    json!({
        "targetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 10,
        "objectives": [{"name": "p99-latency", "kind": "Ceiling", "query": "up", "target": "300m"}],
        "placement": {"spotPool": "spot", "onDemandPool": "on-demand", "onDemandBase": 1, "spotPercentage": 70}
    })
}

fn with(mut spec: Value, pointer: &str, value: Value) -> Value {
    *spec.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} exists in the good spec")) = value;
    spec
}

/// `spec` with a top-level field set, whether or not it was there.
fn with_field(mut spec: Value, field: &str, value: Value) -> Value {
    spec[field] = value;
    spec
}

async fn create(api: &Api<DynamicObject>, name: &str, spec: Value) -> Result<(), String> {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": name}, "spec": spec
    }))
    .expect("a dynamic object");
    api.create(&PostParams::default(), &object).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn each_rule_rejects_its_bad_policy_naming_the_field() {
    scenario("api", |env, namespace| async move {
        install_crds(&env.client).await;
        let resource = ApiResource::erase::<ScalingPolicy>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &namespace, &resource);

        create(&api, "good", good_spec()).await.expect("a good policy is accepted");
        // Quantities take whole numbers unquoted, as HPA's averageValue does.
        let mut numbers = with(good_spec(), "/objectives/0/target", json!(50));
        numbers["budget"] = json!({"maxCostPerHour": 4});
        create(&api, "numbers", numbers).await.expect("a whole-number target and budget are accepted");

        let duplicate = json!([
            {"name": "p99", "kind": "Ceiling", "query": "a", "target": "1"},
            {"name": "p99", "kind": "Ceiling", "query": "b", "target": "1"}
        ]);
        let cases: Vec<(&str, Value, &str)> = vec![
            ("min-over-max", with(good_spec(), "/minReplicas", json!(20)), "minReplicas"),
            ("max-zero", with(good_spec(), "/maxReplicas", json!(0)), "maxReplicas"),
            ("spot-percent", with(good_spec(), "/placement/spotPercentage", json!(120)), "spotPercentage"),
            ("target-zero", with(good_spec(), "/objectives/0/target", json!("0")), "target"),
            ("target-text", with(good_spec(), "/objectives/0/target", json!("fast")), "target"),
            ("target-integer-zero", with(good_spec(), "/objectives/0/target", json!(0)), "target"),
            ("target-unquoted-decimal", with(good_spec(), "/objectives/0/target", json!(0.5)), "target"),
            ("blank-query", with(good_spec(), "/objectives/0/query", json!("  ")), "query"),
            ("duplicate-names", with(good_spec(), "/objectives", duplicate), "objectives"),
            ("bad-interval", with_field(good_spec(), "interval", json!("soon")), "interval"),
            (
                "bad-budget",
                {
                    let mut s = good_spec();
                    s["budget"] = json!({"maxCostPerHour": "-1"});
                    s
                },
                "maxCostPerHour",
            ),
            (
                "fallback-over-max",
                {
                    let mut s = good_spec();
                    s["missingData"] = json!({"fallbackReplicas": 50});
                    s
                },
                "fallbackReplicas",
            ),
            ("base-over-max", with(good_spec(), "/placement/onDemandBase", json!(11)), "onDemandBase"),
            ("interval-overflows", with_field(good_spec(), "interval", json!("99999999999999999999h")), "interval"),
            ("interval-too-fast", with_field(good_spec(), "interval", json!("1ms")), "interval"),
            ("max-replicas-huge", with(good_spec(), "/maxReplicas", json!(2_000_000_000)), "maxReplicas"),
            (
                "return-after-too-long",
                {
                    let mut s = good_spec();
                    s["placement"]["returnAfter"] = json!("48h");
                    s
                },
                "returnAfter",
            ),
        ];
        for (name, spec, field) in cases {
            let error = create(&api, name, spec).await.expect_err(&format!("{name} must be rejected"));
            assert!(error.contains(field), "{name}: the error should name {field}: {error}");
        }

        // targetRef cannot change.
        let patch = json!({"spec": {"targetRef": {"kind": "Deployment", "name": "other"}}});
        let error = api.patch("good", &PatchParams::default(), &Patch::Merge(&patch)).await.expect_err("targetRef is immutable");
        assert!(error.to_string().contains("targetRef"), "the error should name targetRef: {error}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn the_committed_crds_are_what_the_types_generate() {
    // The API server stores what we applied; the drift test keeps crds/ equal to the types.
    let crd = ScalingPolicy::crd();
    assert_eq!(crd.spec.names.short_names, Some(vec!["sp".to_owned()]));
}

/// The operator's status write is a server-side apply carrying the resourceVersion its round read:
/// the API server must refuse it once the policy changed since (a late write of a replica that lost
/// the policy's shard), or the fence is not one.
#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn a_status_apply_carrying_an_older_resource_version_is_refused() {
    scenario("fence", |env, namespace| async move {
        install_crds(&env.client).await;
        let resource = ApiResource::erase::<ScalingPolicy>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &namespace, &resource);
        create(&api, "web", good_spec()).await.expect("a good policy is accepted");
        let read = api.get("web").await.expect("the policy").metadata.resource_version;
        let apply = |version: Option<String>, desired: i32| {
            let api = api.clone();
            async move {
                let patch = json!({
                    "apiVersion": "trimtab.dev/v1alpha1", "kind": "ScalingPolicy",
                    "metadata": {"resourceVersion": version}, "status": {"desiredReplicas": desired}
                });
                api.patch_status("web", &PatchParams::apply("trimtab").force(), &Patch::Apply(&patch)).await
            }
        };
        let written = apply(read.clone(), 3).await.expect("a write at the version read is accepted");
        match apply(read, 4).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 409, "{status:?}"),
            other => panic!("a write at an older version must be refused with 409 Conflict: {other:?}"),
        }
        apply(written.metadata.resource_version, 5).await.expect("a write at the version the last one produced is accepted");
    })
    .await;
}
