//! The security team's command-line tools, run as the real `ferry` binary: `policy test` pass,
//! fail and exit codes, `policy check --strict`, `policy explain` (decoded and `--verify`), and
//! `policy schema`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const BROKER: &str = "https://ferry.test";

/// `ferry policy explain` of `token` (on stdin) against the policies in `path`, unverified.
fn explain(path: &str, token: &str) -> Output {
    explain_with(path, token, &[])
}

fn explain_with(path: &str, token: &str, extra: &[&str]) -> Output {
    let mut args = vec!["policy", "explain", "--token", "-", "--policies", path];
    args.extend_from_slice(extra);
    ferry(&args, Some(token))
}

/// [`explain`] (with `extra` arguments) of a GitHub Actions token with `claims` changed, against
/// the demo policies.
fn explain_github_token(extra: &[&str], claims: impl FnOnce(Claims) -> Claims) -> Output {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let dir = policy_dir(&issuer.url(), None);
    let token = issuer.sign(
        &claims(Claims::github(&issuer.url(), BROKER)),
        Alg::RS256,
        None,
    );
    explain_with(dir.path().to_str().unwrap(), &token, extra)
}

fn ferry(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_CREDENTIAL__AUDIENCE", BROKER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().expect("ferry finishes")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A policy directory with the deploy policy for `issuer_url`, and optional test file.
fn policy_dir(issuer_url: &str, test_file: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("issuers.yaml"),
        fixture::issuers_yaml(issuer_url),
    )
    .unwrap();
    std::fs::write(dir.path().join("demo-deploy.yaml"), DEPLOY_POLICY).unwrap();
    if let Some(t) = test_file {
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        std::fs::write(dir.path().join("tests/demo-deploy.test.yaml"), t).unwrap();
    }
    dir
}

fn case(name: &str, git_ref: &str, expect: &str) -> String {
    format!(
        "  - name: {name}\n    claims: {{ iss: http://127.0.0.1:9, aud: {BROKER}, sub: \"repo:acme/api:ref:{git_ref}\", repository_id: \"123456789\", ref: {git_ref}, actor: ana }}\n    request: {{ audience: {DEPLOY_AUDIENCE} }}\n    expect: {expect}\n"
    )
}

#[test]
fn policy_test_passes_on_the_shipped_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("trust-policies");
    let out = ferry(&["policy", "test", dir.to_str().unwrap()], None);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.lines().any(|l| l.ends_with(" passed, 0 failed")), "{t}");
    assert!(t.contains("ok    deploy-api: "), "{t}");
}

#[test]
fn policy_test_prints_each_case_and_exits_0_when_all_pass() {
    let cases = case("main deploys", "refs/heads/main", "allow")
        + &case("dev does not", "refs/heads/dev", "{ deny: claim_mismatch }");
    let dir = policy_dir(
        "http://127.0.0.1:9",
        Some(&format!("policy: demo-deploy\ncases:\n{cases}")),
    );
    let out = ferry(&["policy", "test", dir.path().to_str().unwrap()], None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(
            "ok    demo-deploy: main deploys\nok    demo-deploy: dev does not\n2 passed, 0 failed"
        ),
        "{t}"
    );
}

#[test]
fn policy_test_exits_1_and_shows_the_trace_of_a_failing_case() {
    let cases = case("main deploys", "refs/heads/main", "allow")
        + &case("dev deploys too (wrong)", "refs/heads/dev", "allow");
    let dir = policy_dir(
        "http://127.0.0.1:9",
        Some(&format!("policy: demo-deploy\ncases:\n{cases}")),
    );
    let out = ferry(&["policy", "test", dir.path().to_str().unwrap()], None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAIL  demo-deploy: dev deploys too (wrong) ("),
        "{t}"
    );
    assert!(
        t.contains("demo-deploy.test.yaml:7)"),
        "points at the case: {t}"
    );
    assert!(
        t.contains("expected allow by demo-deploy, got deny: claim_mismatch"),
        "{t}"
    );
    assert!(
        t.contains("FAIL ") && t.contains("claims.ref") && t.contains("\"refs/heads/dev\""),
        "{t}"
    );
    assert!(t.trim_end().ends_with("1 passed, 1 failed"), "{t}");
}

#[test]
fn policy_test_exits_1_on_a_malformed_test_file() {
    let dir = policy_dir(
        "http://127.0.0.1:9",
        Some("policy: demo-deploy\ncases:\n  - name: x\n    expect: maybe\n"),
    );
    let out = ferry(&["policy", "test", dir.path().to_str().unwrap()], None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("demo-deploy.test.yaml:"), "{t}");
}

#[test]
fn policy_check_strict_turns_warnings_into_errors() {
    let dir = policy_dir("http://127.0.0.1:9", None);
    let wide = DEPLOY_POLICY.replace("repo:acme/api:*", "repo:acme*");
    std::fs::write(dir.path().join("demo-deploy.yaml"), wide).unwrap();
    let path = dir.path().to_str().unwrap();
    let out = ferry(&["policy", "check", path], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("warning[wide-glob]"), "{}", text(&out));
    let out = ferry(&["policy", "check", "--strict", path], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// A pasted token is anyone's: its subject and claims reach the screen escaped, never as the
/// escape sequences they hold.
#[test]
fn policy_explain_prints_a_hostile_subject_escaped() {
    let hostile = "repo:acme/api\u{1b}]0;owned\u{7}\u{1b}[2K\u{202e}";
    let out = explain_github_token(&[], |claims| {
        claims
            .set("sub", hostile)
            .set("ref", "refs/heads/\u{1b}[31mmain")
    });
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains('\u{1b}') && !t.contains('\u{7}') && !t.contains('\u{202e}'),
        "{t:?}"
    );
    assert!(t.contains("subject: repo:acme/api\\u{1b}]0;owned"), "{t}");
}

#[test]
fn policy_explain_json_keeps_a_hostile_subject_but_prints_it_escaped() {
    // serde_json escapes C0 itself; C1 and bidi controls it would leave raw.
    let hostile = "repo:acme/api\u{9b}2J\u{202e}\u{1b}[2K";
    let out = explain_github_token(&["--json"], |claims| claims.set("sub", hostile));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains('\u{9b}') && !t.contains('\u{202e}') && !t.contains('\u{1b}'),
        "{t:?}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect(&t);
    fn holds(v: &serde_json::Value, s: &str) -> bool {
        match v {
            serde_json::Value::String(x) => x == s,
            serde_json::Value::Array(a) => a.iter().any(|v| holds(v, s)),
            serde_json::Value::Object(o) => o.values().any(|v| holds(v, s)),
            _ => false,
        }
    }
    assert!(holds(&json, hostile), "the value itself is kept: {json}");
}

#[test]
fn policy_explain_decodes_only_without_verify_and_says_so() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let dir = policy_dir(&issuer.url(), None);
    let token = issuer.sign(
        &Claims::github(&issuer.url(), BROKER).set("ref", "refs/heads/dev"),
        Alg::RS256,
        None,
    );
    let path = dir.path().to_str().unwrap();
    let out = explain(path, &token);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("signature NOT verified"), "{t}");
    assert!(t.contains("policy demo-deploy (enforce): fails"), "{t}");
    assert!(
        t.contains("FAIL") && t.contains("demo-deploy.yaml:7:8"),
        "{t}"
    );
    assert!(t.contains("decision:  deny (claim_mismatch)"), "{t}");

    let out = ferry(
        &[
            "policy",
            "explain",
            "--token",
            "-",
            "--policies",
            path,
            "--json",
        ],
        Some(&token),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["signature_verified"], false);
    assert_eq!(v["reason"], "claim_mismatch");
    let failed: Vec<&serde_json::Value> = v["policies"][0]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0]["path"].as_str(), failed[0]["line"].as_u64()),
        (Some("claims.ref"), Some(7))
    );
}

#[test]
fn policy_explain_verify_checks_the_signature_with_the_issuers_keys() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let dir = policy_dir(&issuer.url(), None);
    let path = dir.path().to_str().unwrap();
    let token = issuer.sign(&Claims::github(&issuer.url(), BROKER), Alg::RS256, None);
    let file = dir.path().join("token.jwt");
    std::fs::write(&file, &token).unwrap();
    let args = [
        "policy",
        "explain",
        "--token",
        file.to_str().unwrap(),
        "--policies",
        path,
        "--verify",
    ];
    let out = ferry(&args, None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("signature verified"), "{t}");
    assert!(
        t.contains("decision:  allow (granted) policy demo-deploy"),
        "{t}"
    );
    // The same claims with a broken signature: decoded they would pass, verified they do not.
    let (head, _) = token.rsplit_once('.').unwrap();
    std::fs::write(&file, format!("{head}.AAAA")).unwrap();
    let out = ferry(&args, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("bad_signature"), "{}", text(&out));
}

#[test]
fn policy_schema_prints_a_schema_for_each_file_kind() {
    let out = ferry(&["policy", "schema"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for kind in ["policy", "issuers", "guardrails", "test"] {
        assert!(v[kind]["$schema"].is_string(), "{kind}: {v}");
    }
    assert!(v["policy"]["properties"]["grant"].is_object());
    assert_eq!(v["policy"]["additionalProperties"], false);
    let out = ferry(&["policy", "schema", "guardrails"], None);
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(g["properties"]["deny"].is_object(), "{g}");
    assert_eq!(
        ferry(&["policy", "schema", "nope"], None).status.code(),
        Some(2)
    );
}

/// An audit-mode policy on live traffic grants nothing, and `ferry audit list --audit-mode`
/// shows what it would have done, with the condition that decided it.
#[tokio::test]
async fn audit_list_shows_what_audit_mode_policies_would_do() {
    let watching =
        DEPLOY_POLICY.replace("ref: refs/heads/main", "ref: refs/heads/release") + "mode: audit\n";
    let app = spawn_app(Fixture::deploy().policy("z-watching", &watching)).await;
    let (status, _, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "demo-deploy grants");
    let release = app.sign(&app.claims().set("ref", "refs/heads/release"));
    let (status, _, _) = app.exchange_token(&release, None).await;
    assert_eq!(
        status, 400,
        "the audit-mode policy holds but grants nothing"
    );
    assert_eq!(app.last_audit_event()["reason"], "audit_only");
    let granted = &app.audit_events()[0];
    let watched = &granted["trace"]["policies"][0];
    assert_eq!(
        watched["policy"], "z-watching",
        "the audit-mode policy's full trace: {granted}"
    );
    assert_eq!(watched["mode"], "audit");
    assert_eq!(watched["holds"], false);

    let file = app.audit_path();
    let out = ferry(
        &["audit", "list", file.to_str().unwrap(), "--audit-mode"],
        None,
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("allow granted            policy=demo-deploy"),
        "{t}"
    );
    assert!(t.contains("policy z-watching would deny: claims.ref at line 7 expected \"refs/heads/release\" actual \"refs/heads/main\""), "{t}");
    assert!(t.contains("policy z-watching would allow"), "{t}");
    assert!(t.trim_end().ends_with("2 events"), "{t}");
    let out = ferry(
        &[
            "audit",
            "list",
            file.to_str().unwrap(),
            "--policy",
            "nobody",
        ],
        None,
    );
    assert!(text(&out).trim_end().ends_with("0 events"));
}

/// A guardrail in `mode: audit` denies nothing but is listed as a would-be denial.
#[tokio::test]
async fn audit_list_shows_what_an_audit_mode_guardrail_would_deny() {
    let guardrails = "mode: audit\ndeny:\n  - description: no deploys from main yet\n    claims: { ref: refs/heads/main }\n";
    let app = spawn_app(Fixture::deploy().guardrails(guardrails)).await;
    let (status, _, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "audit mode denies nothing");
    assert_eq!(
        app.last_audit_event()["guardrails"][0]["effect"],
        "would_deny"
    );
    let file = app.audit_path();
    let out = ferry(
        &["audit", "list", file.to_str().unwrap(), "--audit-mode"],
        None,
    );
    let t = text(&out);
    assert!(
        t.contains("guardrail deny[0] would deny (guardrails.yaml line 3)"),
        "{t}"
    );
    assert!(t.trim_end().ends_with("1 events"), "{t}");
}

/// `ferry audit list --json` prints an event's C1 and bidi characters escaped, as the same JSON.
#[test]
fn audit_list_json_prints_hostile_text_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let subject = "repo:acme/api\u{9b}2J\u{202e}";
    let event = serde_json::json!({ "decision": "deny", "subject": subject });
    std::fs::write(&file, format!("{event}\n")).unwrap();
    let out = ferry(&["audit", "list", file.to_str().unwrap(), "--json"], None);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(!t.contains('\u{9b}') && !t.contains('\u{202e}'), "{t:?}");
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["subject"], subject, "{t}");
}

/// An unknown issuer is named in the error, escaped: the token is any text at all.
#[test]
fn policy_explain_names_a_hostile_unknown_issuer_escaped() {
    let out = explain_github_token(&[], |claims| {
        claims.set("iss", "https://evil\u{9b}2J\u{1b}]0;x")
    });
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(!t.contains('\u{9b}') && !t.contains('\u{1b}'), "{t:?}");
    assert!(t.contains("evil\\u{9b}2J"), "{t}");
}
