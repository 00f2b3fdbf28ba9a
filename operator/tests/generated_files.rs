//! Generated files must match what their command generates today.

use std::path::Path;

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn committed_crds_match_the_rust_types() {
    let generated = trimtab::api::crd::all_as_yaml().expect("CRDs render as YAML");
    for committed in ["crds/trimtab.dev.yaml", "charts/trimtab/crds/trimtab.dev.yaml"] {
        assert!(repo_file(committed) == generated, "{committed} is stale: run `just crds` and commit the result");
    }
}

#[test]
fn generated_crds_parse_back_as_custom_resource_definitions() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let yaml = trimtab::api::crd::all_as_yaml().expect("CRDs render as YAML");
    let crds: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&yaml).expect("every document is a CustomResourceDefinition");
    let names: Vec<_> = crds.iter().filter_map(|c| c.metadata.name.clone()).collect();
    assert_eq!(names, ["capacitypools.trimtab.dev", "scalingpolicies.trimtab.dev"]);
}
