//! The decision and the round plan are pure: `engine`, `plan` and the placement rules they use
//! (`assign`, `rebalance`, `spot_health`) name no kube client, no async runtime, no HTTP, no clock,
//! and none of the operator's I/O modules. The operator, `trimtab decide` and `trimtab simulate`
//! all call them, so an I/O call slipping in would make the three disagree.
//!
//! They still share the crate with the I/O (the resource types in `api` carry kube's
//! `CustomResource` derive), so this test, not the build, holds the line.

use std::path::{Path, PathBuf};

use regex::Regex;

/// The pure source files: whole module trees, and the pure files of `placement`.
const PURE: &[&str] =
    &["src/engine", "src/plan", "src/placement/assign.rs", "src/placement/rebalance.rs", "src/placement/spot_health.rs"];

/// What pure code must not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    (r"\bkube(_\w+)?::", "a kube client or runtime"),
    (r"\b(tokio|futures|reqwest|axum|hyper|hyper_util|tower|prometheus_http_query)::", "async or HTTP"),
    (r"\b(Timestamp|Instant|SystemTime|Utc|Zoned)::now\b", "the clock: `now` comes in as data"),
    (r"\bstd::(env|fs|net|process|thread)\b", "the process's environment"),
    (r"\bcrate::(controller|metrics|leases|cli|sim)\b", "an I/O module of the operator"),
    (r"\bcrate::placement::(webhook|certs|tls|mutate)\b", "the placement webhook"),
    (r"\brand::", "randomness"),
];

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
fn the_engine_and_the_round_plan_name_no_io_no_clock_and_no_operator_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for pure in PURE {
        rust_files(&root.join(pure), &mut files);
    }
    assert!(files.len() >= 15, "the pure files were not found: {files:?}");
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
        "let now = Timestamp::now();",
        "tokio::time::sleep(d).await;",
        "use crate::controller::Context;",
        "crate::placement::webhook::serve()",
        "std::env::var(\"X\")",
    ] {
        assert!(!violations(line).is_empty(), "{line} passed");
    }
    assert!(violations(&code_of("// kube::Api, in a comment\nlet kubectl = \"kubectl\";")).is_empty());
    assert!(violations(&code_of("fn f() {}\n#[cfg(test)]\nmod tests {\n    use kube::Api;\n}")).is_empty());
}
