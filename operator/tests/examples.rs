//! Every file under examples/ is something a user copies: each must parse strictly (no unknown
//! field) and validate, and each situation must decide.

use std::path::{Path, PathBuf};

use trimtab::api::{CapacityPool, ScalingPolicy};
use trimtab::cli::input::{documents, from_value_strict};
use trimtab::engine::Policy;

fn example_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("examples/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            example_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
}

fn all_examples() -> Vec<PathBuf> {
    let mut found = Vec::new();
    example_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"), &mut found);
    found.sort();
    found
}

#[test]
fn every_example_parses_strictly_and_validates() {
    let files = all_examples();
    assert!(files.len() >= 5, "expected the bundled examples, found {files:?}");
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("example is readable");
        if path.components().any(|c| c.as_os_str() == "situations") {
            trimtab::cli::decide::decide_text(&name, &text).unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        for document in documents(&name, &text).unwrap_or_else(|e| panic!("{e}")) {
            match document.get("kind").and_then(|k| k.as_str()) {
                Some("ScalingPolicy") => {
                    let policy: ScalingPolicy = from_value_strict(&name, document).unwrap_or_else(|e| panic!("{e}"));
                    Policy::from_spec(&policy.spec).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                Some("CapacityPool") => {
                    let _: CapacityPool = from_value_strict(&name, document).unwrap_or_else(|e| panic!("{e}"));
                }
                other => panic!("{name}: no check for a document of kind {other:?}; add one to this test"),
            }
        }
    }
}

#[test]
fn every_example_says_when_to_use_it() {
    for path in all_examples() {
        let text = std::fs::read_to_string(&path).expect("example is readable");
        assert!(text.starts_with('#'), "{} should open with a comment saying when to use it", path.display());
    }
}
