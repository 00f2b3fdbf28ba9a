//! The decision and the round plan are pure: `trimtab-core` (`api`, `engine`, `plan` and the
//! placement rules they use: `assign`, `rebalance`, `spot_health`) names no kube client, no async
//! runtime, no HTTP, no clock. The operator, `trimtab decide` and `trimtab simulate` all call it,
//! so an I/O call slipping in would make the three disagree.
//!
//! The build holds most of the line: this crate does not depend on tokio, an HTTP client or kube's
//! client and runtime, so code naming them does not compile. The first test keeps it that way: it
//! fails when the crate's dependency graph (`cargo tree -p trimtab-core -e normal`) grows one of them.
//! What the graph cannot show is checked in the sources: the clock, the process's environment, and
//! kube's client items (in a workspace build, cargo unifies kube's features, so `kube::Api` would
//! compile here; `cargo clippy -p trimtab-core`, in `just lint`, builds the crate alone).

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

/// Crates the pure core must not depend on, even indirectly, and why.
const FORBIDDEN_CRATES: &[(&str, &str)] = &[
    ("tokio", "an async runtime"),
    ("futures", "async"),
    ("hyper", "HTTP"),
    ("hyper-util", "HTTP"),
    ("h2", "HTTP"),
    ("reqwest", "an HTTP client"),
    ("tower", "HTTP middleware"),
    ("axum", "an HTTP server"),
    ("rustls", "TLS"),
    ("prometheus-http-query", "a Prometheus client"),
    ("kube-client", "the kube client"),
    ("kube-runtime", "the kube runtime"),
];

/// What pure code must not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    (r"\bkube_(client|runtime)::", "a kube client or runtime"),
    (r"\bkube::(\{[^}]*)?\b(Api|Client|Config|api|client|config|runtime)\b", "a kube client or runtime"),
    (r"\b(Timestamp|Instant|SystemTime|Utc|Zoned)::now\b", "the clock: `now` comes in as data"),
    (r"\bstd::(env|fs|net|process|thread)\b", "the process's environment"),
    (r"\brand::", "randomness"),
];

/// The names of the packages in `cargo tree --prefix none --format {p}` output (`name vX.Y.Z ...`).
fn packages(tree: &str) -> Vec<&str> {
    let mut names: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn forbidden_crates(tree: &str) -> Vec<String> {
    packages(tree)
        .into_iter()
        .filter_map(|name| FORBIDDEN_CRATES.iter().find(|(c, _)| *c == name).map(|(c, why)| format!("{c} ({why})")))
        .collect()
}

#[test]
fn the_core_depends_on_no_kube_client_no_async_runtime_and_no_http() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--locked", "--offline", "-p", "trimtab-core", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo tree failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).expect("UTF-8 output");
    let names = packages(&tree);
    assert!(names.contains(&"trimtab-core") && names.contains(&"kube-core"), "an unexpected dependency tree:\n{tree}");
    let found = forbidden_crates(&tree);
    assert!(found.is_empty(), "trimtab-core depends on {}; keep I/O in the operator:\n{tree}", found.join(", "));
}

#[test]
fn the_dependency_check_catches_what_it_forbids() {
    let tree = "trimtab-core v0.1.0 (/src/core)\nkube-core v5.0.0\nkube-client v5.0.0\ntokio v1.54.1\nserde v1.0.229\n";
    assert_eq!(forbidden_crates(tree), ["kube-client (the kube client)", "tokio (an async runtime)"]);
    assert!(forbidden_crates("trimtab-core v0.1.0 (/src/core)\nkube-core v5.0.0\ntokio-macros v2.0.0\n").is_empty());
}

fn rust_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).expect("a source directory").map(|e| e.expect("an entry").path()).collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, files);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        files.push(path.to_owned());
    }
}

/// `source` without its `#[cfg(test)]` module (tests may use anything) and without comments.
fn code_of(source: &str) -> String {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn violations(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (pattern, what) in FORBIDDEN {
        let re = Regex::new(pattern).expect("a valid pattern");
        for (i, line) in code.lines().enumerate() {
            if re.is_match(line) {
                found.push(format!("line {}: {what}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_core_names_no_kube_client_no_clock_and_no_process_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() >= 25, "the core's source files were not found: {files:?}");
    let mut problems = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("a readable source file");
        for problem in violations(&code_of(&source)) {
            problems.push(format!("{}: {problem}", file.strip_prefix(root).unwrap_or(file).display()));
        }
    }
    assert!(problems.is_empty(), "pure code does I/O; move it to the caller and pass the result in:\n{}", problems.join("\n"));
}

#[test]
fn the_boundary_check_catches_what_it_forbids() {
    for line in [
        "use kube::Api;",
        "use kube::{Api, Client};",
        "use kube::{CustomResource, api::PostParams};",
        "kube::runtime::watcher(api, config)",
        "use kube_client::Client;",
        "let now = Timestamp::now();",
        "std::env::var(\"X\")",
        "std::fs::read_to_string(path)",
    ] {
        assert!(!violations(line).is_empty(), "{line} passed");
    }
    assert!(violations("use kube::{CustomResource, KubeSchema};").is_empty());
    assert!(violations("use kube::CustomResourceExt;").is_empty());
    assert!(violations(&code_of("// kube::Api, in a comment\nlet kubectl = \"kubectl\";")).is_empty());
    assert!(violations(&code_of("fn f() {}\n#[cfg(test)]\nmod tests {\n    use kube::Api;\n}")).is_empty());
}
