//! Every example a user copies is accepted by the real API server, with the committed CRDs and their
//! CEL rules: ScalingPolicies are applied for real in the namespaces they name (created for the test
//! when missing, deleted after), cluster-scoped CapacityPools with a server-side dry run, so that
//! pools of the same name that something else relies on are never touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{Scope, pinned_kind};
use kube::{Api, Client, ResourceExt};
use trimtab_e2e::cluster::install_crds;
use trimtab_e2e::{eventually, repo_root};

const FIELD_MANAGER: &str = "trimtab-e2e-examples";

/// Every Kubernetes object file under examples/, recipes/ and simulate/ included; situations/ holds
/// `trimtab decide` inputs, not objects.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("examples/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "situations") {
                    walk(&path, found);
                }
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join("examples"), &mut files);
    files.sort();
    files
}

#[tokio::test]
#[ignore = "needs a cluster: run with `just e2e`"]
async fn every_example_is_accepted_by_the_api_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default().await.expect("KUBECONFIG must point at the cluster under test (just e2e sets it)");
    install_crds(&client).await;

    let mut objects = Vec::new();
    for path in example_files() {
        let text = std::fs::read_to_string(&path).expect("a readable example");
        let documents: Vec<DynamicObject> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        for object in documents {
            let file = path.strip_prefix(repo_root().join("examples")).unwrap_or(&path).display().to_string();
            objects.push((file, object));
        }
    }
    assert!(objects.len() >= 14, "expected the bundled examples and recipes, found {} objects", objects.len());

    // The namespaces the examples live in (shop, billing): created when missing, deleted after.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut created = Vec::new();
    for namespace in objects.iter().filter_map(|(_, o)| o.namespace()).collect::<BTreeSet<_>>() {
        // A namespace an earlier run is still deleting accepts nothing: wait for it to go.
        let existing = eventually(&format!("namespace {namespace} to finish terminating"), Duration::from_secs(120), || {
            let namespaces = namespaces.clone();
            let namespace = namespace.clone();
            async move {
                let found = namespaces.get_opt(&namespace).await.map_err(|e| e.to_string())?;
                match found {
                    Some(ns) if ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating") => {
                        Err("still terminating".to_owned())
                    }
                    other => Ok(other),
                }
            }
        })
        .await;
        if existing.is_none() {
            let mut object = Namespace::default();
            object.metadata.name = Some(namespace.clone());
            object.metadata.labels = Some([("trimtab.dev/e2e".to_owned(), "true".to_owned())].into());
            namespaces.create(&PostParams::default(), &object).await.expect("create an example's namespace");
            created.push(namespace);
        }
    }

    let mut failures = Vec::new();
    let mut applied = Vec::new();
    for (file, object) in &objects {
        let types = object.types.clone().expect("every example has apiVersion and kind");
        let gvk = GroupVersionKind::try_from(&types).expect("a valid apiVersion");
        let what = format!("{file}: {} {}", types.kind, object.name_any());
        let (resource, capabilities) = match pinned_kind(&client, &gvk).await {
            Ok(found) => found,
            Err(e) => {
                failures.push(format!("{what}: the API server does not serve {}: {e}", types.api_version));
                continue;
            }
        };
        let (api, params): (Api<DynamicObject>, PatchParams) = match capabilities.scope {
            Scope::Cluster => (Api::all_with(client.clone(), &resource), PatchParams::apply(FIELD_MANAGER).dry_run()),
            Scope::Namespaced => {
                let namespace = object.namespace().unwrap_or_else(|| "default".to_owned());
                (Api::namespaced_with(client.clone(), &namespace, &resource), PatchParams::apply(FIELD_MANAGER))
            }
        };
        match api.patch(&object.name_any(), &params, &Patch::Apply(object)).await {
            Ok(accepted) => {
                // Applied as written: the API server kept the spec (no field pruned as unknown).
                let sent = &object.data["spec"];
                let kept = &accepted.data["spec"];
                for (field, value) in sent.as_object().into_iter().flatten() {
                    if kept.get(field).is_none_or(|k| k.is_null() && !value.is_null()) {
                        failures.push(format!("{what}: spec.{field} was dropped by the API server"));
                    }
                }
                if !params.dry_run {
                    applied.push((api, object.name_any()));
                }
            }
            Err(e) => failures.push(format!("{what}: rejected: {e}")),
        }
    }

    for (api, name) in applied {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    for namespace in created {
        let _ = namespaces.delete(&namespace, &DeleteParams::background()).await;
    }
    assert!(failures.is_empty(), "examples the API server did not accept:\n  {}", failures.join("\n  "));
}
