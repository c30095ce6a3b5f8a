//! The offline tools on provider tokens, as the real `ferry` binary against the shipped
//! `trust-policies/`: `policy explain` shows `normalized.*` rows computed from the token's claims
//! by its issuer's kind, and the shipped provider policy tests pass.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Alg, Claims, DevIssuer};

fn ferry(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("ferry finishes")
}

/// `ferry policy explain --json` of a GitLab token of the `local-gitlab` example issuer; the
/// condition rows of `providers-gitlab`.
fn explain_gitlab(claims: &Claims) -> (serde_json::Value, Vec<serde_json::Value>) {
    // Decoded only: any key will do, the issuer is chosen by `iss`.
    let signer = DevIssuer::start("127.0.0.1:0");
    let token = signer.sign(claims, Alg::RS256, None);
    let args = [
        "policy",
        "explain",
        "--token",
        "-",
        "--policies",
        "trust-policies",
        "--audience",
        "https://deploy.acme.internal",
        "--scope",
        "deploy:api",
        "--json",
    ];
    let out = ferry(&args, &token);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "providers-gitlab")
        .expect("providers-gitlab was a candidate")["conditions"]
        .as_array()
        .unwrap()
        .clone();
    (v, rows)
}

fn row<'a>(rows: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["path"] == path)
        .unwrap_or_else(|| panic!("no row {path}: {rows:?}"))
}

#[test]
fn explain_shows_the_normalised_ref_of_a_gitlab_token() {
    let main = Claims::gitlab("http://127.0.0.1:8092", "http://127.0.0.1:8080");
    let (v, rows) = explain_gitlab(&main);
    assert_eq!(v["decision"], "allow", "{v}");
    let normalized = row(&rows, "normalized.ref");
    assert_eq!(normalized["passed"], true);
    assert_eq!(normalized["actual"], "refs/heads/main");

    let feature = main
        .set("ref", "feature")
        .set("ref_path", "refs/heads/feature")
        .subject("project_path:acme/api:ref_type:branch:ref:feature");
    let (v, rows) = explain_gitlab(&feature);
    assert_eq!(v["decision"], "deny", "{v}");
    let normalized = row(&rows, "normalized.ref");
    assert_eq!(normalized["passed"], false);
    assert_eq!(normalized["actual"], "refs/heads/feature");
}

#[test]
fn the_shipped_provider_policy_tests_pass() {
    let out = ferry(&["policy", "test", "trust-policies"], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    for p in ["github", "gitlab", "buildkite", "circleci", "kubernetes"] {
        assert!(
            text.contains(&format!("ok    providers-{p}: ")),
            "{p}: {text}"
        );
    }
}
