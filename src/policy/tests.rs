//! Loader tests: the example directory, strict parsing, errors that point at file:line:col.

use std::path::Path;

use super::*;

fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("trust-policies")
}

#[test]
fn example_trust_policies_load_without_errors_or_lints() {
    let set = PolicySet::load(&example_dir()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = set.policy_names().map(|n| n.as_str()).collect();
    assert_eq!(names, ["demo-deploy", "demo-read-artifacts", "deploy-api"]);
    assert_eq!(set.issuers().len(), 2);
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    assert_eq!(set.version().len(), 64);
}
