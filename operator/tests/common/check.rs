//! Running `trimtab check` as a user does: a ScalingPolicy manifest on stdin, a Prometheus URL,
//! and never a real cluster (KUBECONFIG points nowhere, the in-cluster variables are unset).

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

/// A ScalingPolicy `namespace/name` on Deployment `name`, between `min` and `max` replicas.
pub fn manifest(namespace: &str, name: &str, min: i32, max: i32, objectives: Value) -> String {
    json!({
        "apiVersion": "trimtab.dev/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"kind": "Deployment", "name": name}, "minReplicas": min, "maxReplicas": max, "objectives": objectives}
    })
    .to_string()
}

/// `trimtab check -f - --prometheus-url URL EXTRA...` with `policy` on stdin.
pub fn check(url: &str, policy: &str, extra: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trimtab"))
        .args(["check", "-f", "-", "--prometheus-url", url])
        .args(extra)
        .env("KUBECONFIG", "/nonexistent/trimtab-check-test-kubeconfig") // never a real cluster
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("TRIMTAB_ENFORCE_NAMESPACE_LABEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("trimtab runs");
    child.stdin.take().expect("stdin").write_all(policy.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("trimtab finishes")
}
