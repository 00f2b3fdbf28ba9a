//! The Helm chart, read as rendered manifests: least-privilege RBAC, Pod Security `restricted`, and
//! secure defaults; then installed, upgraded and uninstalled on the real cluster.
//!
//! The manifest tests read every `*.yaml` in `TRIMTAB_CHART_RENDERED` (what `just chart-lint` renders
//! with the default values and each `charts/trimtab/ci/*.yaml`), or render those themselves with the
//! helm from `e2e/cluster/tools.sh` (under `just e2e`). They fail listing every violation found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use trimtab_e2e::repo_root;

/// Each rendering: its name (the values file) and its objects.
fn renderings() -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    match std::env::var_os("TRIMTAB_CHART_RENDERED") {
        Some(dir) => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("TRIMTAB_CHART_RENDERED={dir:?} is not a readable directory: {e}"))
                .map(|entry| entry.expect("a directory entry").path())
                .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
                .collect();
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path).expect("a readable rendering");
                out.push((path.file_stem().unwrap().to_string_lossy().into_owned(), parse(&text, &path)));
            }
        }
        None => {
            let chart = repo_root().join("charts/trimtab");
            let mut sets = vec![None];
            let mut ci: Vec<PathBuf> = std::fs::read_dir(chart.join("ci"))
                .map(|d| d.map(|e| e.expect("a directory entry").path()).collect())
                .unwrap_or_default();
            ci.sort();
            sets.extend(ci.into_iter().map(Some));
            for values in sets {
                let mut helm = Command::new(helm());
                helm.args(["template", "trimtab"]).arg(&chart).args(["--namespace", "trimtab-system"]);
                if let Some(values) = &values {
                    helm.arg("--values").arg(values);
                }
                let output = helm.output().expect("run helm template");
                assert!(output.status.success(), "helm template failed: {}", String::from_utf8_lossy(&output.stderr));
                let name = values.map_or("default".to_owned(), |v| v.file_stem().unwrap().to_string_lossy().into_owned());
                out.push((name.clone(), parse(&String::from_utf8_lossy(&output.stdout), Path::new(&name))));
            }
        }
    }
    assert!(out.iter().any(|(name, _)| name == "default"), "no rendering with the default values among {:?}", names(&out));
    out
}

fn names(renderings: &[(String, Vec<Value>)]) -> Vec<&str> {
    renderings.iter().map(|(name, _)| name.as_str()).collect()
}

fn parse(text: &str, origin: &Path) -> Vec<Value> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", origin.display()));
    documents.into_iter().filter(|d| d.is_object()).collect()
}

/// helm, from TRIMTAB_HELM or the tools cache.
fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("TRIMTAB_HELM") {
        return PathBuf::from(path);
    }
    let output = Command::new("bash")
        .arg(repo_root().join("e2e/cluster/tools.sh"))
        .arg("--print-path")
        .output()
        .expect("run e2e/cluster/tools.sh --print-path");
    let helm = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("helm");
    assert!(helm.is_file(), "{} is missing: build it with `bash e2e/cluster/tools.sh` (or `just tools`)", helm.display());
    helm
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> String {
    format!("{} {}", kind(object), object["metadata"]["name"].as_str().unwrap_or("?"))
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn fail_on(violations: Vec<String>) {
    assert!(violations.is_empty(), "{} violation(s):\n  {}", violations.len(), violations.join("\n  "));
}

const READ: &[&str] = &["get", "list", "watch"];

/// Every permission the chart may grant: (API group, resource) -> verbs. Anything else is a
/// violation: a new permission is a deliberate change to this table, reviewed with the code that
/// needs it.
fn allowed() -> BTreeMap<(&'static str, &'static str), &'static [&'static str]> {
    BTreeMap::from([
        (("trimtab.dev", "scalingpolicies"), READ),
        (("trimtab.dev", "scalingpolicies/status"), &["patch"][..]),
        (("trimtab.dev", "capacitypools"), READ),
        (("apps", "deployments"), READ),
        (("apps", "deployments/scale"), &["get", "patch", "update"][..]),
        (("", "pods"), &["list", "watch"][..]),
        (("", "pods/eviction"), &["create"][..]),
        (("", "nodes"), &["list", "watch"][..]),
        (("autoscaling", "horizontalpodautoscalers"), &["list", "watch"][..]),
        (("keda.sh", "scaledobjects"), &["list", "watch"][..]),
        (("events.k8s.io", "events"), &["create", "patch"][..]),
        // Watched, so that a standby takes a released Lease at once.
        (("coordination.k8s.io", "leases"), &["get", "list", "watch", "create", "update", "patch"][..]),
        // Pinned by resourceNames, checked below.
        (("", "secrets"), &["get", "update", "patch"][..]),
        (("admissionregistration.k8s.io", "mutatingwebhookconfigurations"), &["get", "update", "patch"][..]),
    ])
}

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

#[test]
#[ignore = "needs helm: run with `just chart-lint` or `just e2e`"]
fn rendered_rbac_is_least_privilege_without_wildcards() {
    let allowed = allowed();
    let mut violations = Vec::new();
    for (set, objects) in renderings() {
        let service_accounts: BTreeSet<(String, String)> = objects
            .iter()
            .filter(|o| kind(o) == "Deployment")
            .map(|d| {
                let account = d["spec"]["template"]["spec"]["serviceAccountName"].as_str().unwrap_or("default");
                (d["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(), account.to_owned())
            })
            .collect();
        let namespaced_mode =
            objects.iter().filter(|o| kind(o) == "Deployment").any(|d| {
                d["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten().any(|c| {
                    c["env"].as_array().into_iter().flatten().any(|e| e["name"] == "WATCH_NAMESPACE" && e["value"] != "")
                })
            });
        let roles: BTreeSet<String> = objects.iter().filter(|o| matches!(kind(o), "Role" | "ClusterRole")).map(name).collect();
        let mut grants_workloads = false;

        for object in &objects {
            let at = format!("[{set}] {}", name(object));
            match kind(object) {
                "Role" | "ClusterRole" => {
                    let cluster = kind(object) == "ClusterRole";
                    if object.get("aggregationRule").is_some() {
                        violations.push(format!("{at}: aggregationRule grants whatever other roles hold"));
                    }
                    for (i, rule) in object["rules"].as_array().into_iter().flatten().enumerate() {
                        let at = format!("{at} rule {i}");
                        for field in ["apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"] {
                            if strings(&rule[field]).iter().any(|s| s.contains('*')) {
                                violations.push(format!("{at}: wildcard in {field}: {}", rule[field]));
                            }
                        }
                        if rule.get("nonResourceURLs").is_some() {
                            violations.push(format!("{at}: nonResourceURLs"));
                        }
                        let pinned = !strings(&rule["resourceNames"]).is_empty();
                        for group in strings(&rule["apiGroups"]) {
                            for resource in strings(&rule["resources"]) {
                                let verbs = strings(&rule["verbs"]);
                                if group == "apps" && resource == "deployments" {
                                    grants_workloads = true;
                                    if let Some(verb) = verbs.iter().find(|v| WRITE_VERBS.contains(v)) {
                                        violations.push(format!(
                                            "{at}: write verb {verb:?} on deployments (only deployments/scale may change)"
                                        ));
                                    }
                                }
                                if cluster
                                    && namespaced_mode
                                    && !["capacitypools", "nodes", "mutatingwebhookconfigurations"].contains(&resource)
                                {
                                    violations.push(format!("{at}: namespaced mode grants {group}/{resource} cluster-wide"));
                                }
                                if resource == "secrets" && (cluster || !pinned) {
                                    violations.push(format!("{at}: secrets only in a Role, pinned by resourceNames"));
                                }
                                if resource == "mutatingwebhookconfigurations" && !pinned {
                                    violations.push(format!("{at}: mutatingwebhookconfigurations not pinned by resourceNames"));
                                }
                                match allowed.get(&(group, resource)) {
                                    None => {
                                        violations.push(format!("{at}: {group}/{resource} is not a permission Trimtab needs"))
                                    }
                                    Some(ok) => {
                                        for verb in verbs.iter().filter(|v| !ok.contains(v)) {
                                            violations
                                                .push(format!("{at}: verb {verb:?} on {group}/{resource} (allowed: {ok:?})"));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                "RoleBinding" | "ClusterRoleBinding" => {
                    let role = format!(
                        "{} {}",
                        object["roleRef"]["kind"].as_str().unwrap_or("?"),
                        object["roleRef"]["name"].as_str().unwrap_or("?")
                    );
                    if !roles.contains(&role) {
                        violations.push(format!("{at}: binds {role}, which the chart does not define"));
                    }
                    for subject in object["subjects"].as_array().into_iter().flatten() {
                        let account = (
                            subject["namespace"].as_str().unwrap_or_default().to_owned(),
                            subject["name"].as_str().unwrap_or_default().to_owned(),
                        );
                        if subject["kind"] != "ServiceAccount" || !service_accounts.contains(&account) {
                            violations.push(format!("{at}: binds {subject}, not the operator's ServiceAccount"));
                        }
                    }
                }
                _ => {}
            }
        }
        if !grants_workloads {
            violations.push(format!("[{set}] no role grants read access to deployments: did rendering change?"));
        }
    }
    fail_on(violations);
}

/// Pod Security Standard `restricted` (and a read-only root filesystem), for every pod template.
fn check_pod(at: &str, pod: &Value, violations: &mut Vec<String>) {
    let pod_context = &pod["securityContext"];
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[field] == true {
            violations.push(format!("{at}: {field}"));
        }
    }
    let allowed_volumes =
        ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        let kinds: Vec<&String> = volume.as_object().into_iter().flatten().map(|(k, _)| k).filter(|k| *k != "name").collect();
        if kinds.iter().any(|k| !allowed_volumes.contains(&k.as_str())) {
            violations.push(format!("{at}: volume {} of type {kinds:?}", volume["name"]));
        }
    }
    if !pod_context["sysctls"].is_null() {
        violations.push(format!("{at}: sysctls"));
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|field| pod[*field].as_array().into_iter().flatten());
    let mut any = false;
    for container in containers {
        any = true;
        let at = format!("{at} container {}", container["name"]);
        let context = &container["securityContext"];
        let effective = |field: &str| if context[field].is_null() { &pod_context[field] } else { &context[field] };
        if context["privileged"] == true {
            violations.push(format!("{at}: privileged"));
        }
        if context["allowPrivilegeEscalation"] != false {
            violations.push(format!("{at}: allowPrivilegeEscalation is not false"));
        }
        if effective("runAsNonRoot") != true {
            violations.push(format!("{at}: runAsNonRoot is not true"));
        }
        if effective("runAsUser") == 0 {
            violations.push(format!("{at}: runAsUser 0"));
        }
        let seccomp = effective("seccompProfile")["type"].as_str().unwrap_or_default();
        if !matches!(seccomp, "RuntimeDefault" | "Localhost") {
            violations.push(format!("{at}: seccompProfile {seccomp:?}, not RuntimeDefault or Localhost"));
        }
        if !strings(&context["capabilities"]["drop"]).contains(&"ALL") {
            violations.push(format!("{at}: capabilities do not drop ALL"));
        }
        if strings(&context["capabilities"]["add"]).iter().any(|c| *c != "NET_BIND_SERVICE") {
            violations.push(format!("{at}: adds capabilities {}", context["capabilities"]["add"]));
        }
        if context["readOnlyRootFilesystem"] != true {
            violations.push(format!("{at}: readOnlyRootFilesystem is not true"));
        }
        for port in container["ports"].as_array().into_iter().flatten() {
            if port.get("hostPort").is_some() {
                violations.push(format!("{at}: hostPort"));
            }
        }
        if container["resources"]["requests"].is_null() || container["resources"]["limits"]["memory"].is_null() {
            violations.push(format!("{at}: no resource requests or memory limit"));
        }
    }
    if !any {
        violations.push(format!("{at}: no containers"));
    }
}

#[test]
#[ignore = "needs helm: run with `just chart-lint` or `just e2e`"]
fn rendered_pods_meet_pod_security_restricted() {
    let mut violations = Vec::new();
    let mut pods = 0;
    for (set, objects) in renderings() {
        for object in &objects {
            let template = match kind(object) {
                "Pod" => &object["spec"],
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => &object["spec"]["template"]["spec"],
                "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                _ => continue,
            };
            pods += 1;
            check_pod(&format!("[{set}] {}", name(object)), template, &mut violations);
            if template["automountServiceAccountToken"] != false {
                violations.push(format!("[{set}] {}: automountServiceAccountToken is not false", name(object)));
            }
        }
        for account in objects.iter().filter(|o| kind(o) == "ServiceAccount") {
            if account["automountServiceAccountToken"] != false {
                violations.push(format!("[{set}] {}: automountServiceAccountToken is not false", name(account)));
            }
        }
    }
    assert!(pods > 0, "no pod templates rendered");
    fail_on(violations);
}

#[test]
#[ignore = "needs helm: run with `just chart-lint` or `just e2e`"]
fn rendered_defaults_are_secure_and_complete() {
    let renderings = renderings();
    let (_, objects) = renderings.iter().find(|(name, _)| name == "default").expect("the default rendering");
    fn of_kind<'a>(objects: &'a [Value], k: &'a str) -> impl Iterator<Item = &'a Value> {
        objects.iter().filter(move |o| kind(o) == k)
    }
    let find = |k: &'static str| of_kind(objects, k);
    let mut violations = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            violations.push(what.to_owned());
        }
    };

    let deployment = find("Deployment").next().expect("a Deployment");
    expect(deployment["spec"]["replicas"] == 2, "two replicas");
    let env: BTreeMap<&str, &Value> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["name"].as_str().unwrap_or_default(), &e["value"]))
        .collect();
    expect(env.get("TRIMTAB_LEADER_ELECT").is_some_and(|v| *v == "true"), "leader election on");
    expect(env.get("WATCH_NAMESPACE").is_some_and(|v| *v == ""), "every namespace watched");
    for variable in ["PROMETHEUS_URL", "POD_NAME", "POD_NAMESPACE", "TRIMTAB_METRICS_ADDR", "TRIMTAB_WEBHOOK_SECRET"] {
        expect(env.contains_key(variable), &format!("env {variable}"));
    }

    let policies: Vec<&Value> = find("NetworkPolicy").collect();
    expect(policies.len() == 1, "one NetworkPolicy");
    if let Some(policy) = policies.first() {
        let types = strings(&policy["spec"]["policyTypes"]);
        expect(types.contains(&"Ingress") && types.contains(&"Egress"), "NetworkPolicy restricts ingress and egress");
        let egress_ports: BTreeSet<i64> = policy["spec"]["egress"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|rule| rule["ports"].as_array().into_iter().flatten())
            .filter_map(|p| p["port"].as_i64())
            .collect();
        expect(
            egress_ports == BTreeSet::from([53, 443, 6443, 9090]),
            &format!("egress to DNS, API server, Prometheus only, got {egress_ports:?}"),
        );
        expect(
            policy["spec"]["egress"].as_array().into_iter().flatten().filter(|r| r["to"].is_null()).count() == 1,
            "only the API server rule is open to any address",
        );
    }
    expect(find("PodDisruptionBudget").next().is_some_and(|p| p["spec"]["minAvailable"] == 1), "a PDB with minAvailable 1");
    expect(
        find("Service").any(|s| s["spec"]["ports"].as_array().into_iter().flatten().any(|p| p["name"] == "http-metrics")),
        "a metrics Service",
    );
    expect(find("ServiceMonitor").next().is_none(), "no ServiceMonitor by default (its CRD may be missing)");
    expect(find("ConfigMap").next().is_none(), "no dashboard by default");

    let webhook = find("MutatingWebhookConfiguration").next().expect("a MutatingWebhookConfiguration");
    let hook = &webhook["webhooks"][0];
    expect(hook["failurePolicy"] == "Ignore", "the webhook fails open");
    expect(hook["timeoutSeconds"] == 2, "the webhook times out after 2 s");
    expect(hook["sideEffects"] == "None", "the webhook has no side effects");
    expect(hook["namespaceSelector"]["matchLabels"]["trimtab.dev/placement"] == "enabled", "namespaces opt in");
    expect(hook["objectSelector"].is_null(), "no objectSelector");
    expect(hook["clientConfig"]["service"]["path"] == "/mutate-pods", "the webhook path");
    let rule = &hook["rules"][0];
    expect(
        strings(&rule["operations"]) == ["CREATE"]
            && strings(&rule["resources"]) == ["pods"]
            && hook["rules"].as_array().map(Vec::len) == Some(1),
        "the webhook sees pod creation only",
    );
    expect(find("Secret").any(|s| s["metadata"]["name"] == "trimtab-webhook-tls"), "the webhook certificate Secret");
    expect(find("Lease").any(|l| l["metadata"]["name"] == "trimtab-leader"), "the leader Lease");
    fail_on(violations);
}

#[test]
#[ignore = "needs a cluster: run with `just e2e`"]
fn chart_installs_upgrades_and_uninstalls_leaving_only_the_crds() {
    // Its own release and namespace, so that it never touches an install the scenarios run under.
    let status = Command::new("bash")
        .arg(repo_root().join("e2e/chart/install.sh"))
        .arg("lifecycle")
        .env("TRIMTAB_RELEASE", "trimtab-lifecycle")
        .env("TRIMTAB_NAMESPACE", "trimtab-lifecycle")
        .status()
        .expect("run e2e/chart/install.sh");
    assert!(status.success(), "e2e/chart/install.sh lifecycle failed (its output is above)");
}
