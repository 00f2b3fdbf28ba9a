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

#[test]
fn every_quantity_field_takes_an_integer_or_a_string_like_hpa() {
    let crds: Vec<serde_json::Value> =
        trimtab::api::crd::all().iter().map(|c| serde_json::to_value(c).expect("a CRD is JSON")).collect();
    let schema = |kind: usize, path: &str| -> serde_json::Value {
        let root = &crds[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        root.pointer(path).cloned().unwrap_or_else(|| panic!("{path} is in the schema"))
    };
    let (pool, policy) = (0, 1);
    let fields = [
        (policy, "/properties/objectives/items/properties/target"),
        (policy, "/properties/budget/properties/maxCostPerHour"),
        (policy, "/properties/behavior/properties/scaleUp/properties/tolerance"),
        (policy, "/properties/behavior/properties/scaleDown/properties/tolerance"),
        (pool, "/properties/price/properties/cpuCoreHour"),
        (pool, "/properties/price/properties/memoryGiBHour"),
    ];
    for (kind, path) in fields {
        let field = schema(kind, path);
        assert_eq!(field["x-kubernetes-int-or-string"], serde_json::json!(true), "{path}: {field}");
        assert!(field.get("type").is_none(), "{path} must not force a type: {field}");
        let description = field["description"].as_str().unwrap_or_default();
        assert!(description.contains("decimals as strings"), "{path} should say how to write decimals: {description}");
    }
}
