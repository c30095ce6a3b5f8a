//! `exchange::explain`: every condition of every candidate, for each matcher kind, with its
//! line, expected and actual; and skipped candidates say why.

use serde_json::json;

use crate::exchange::{explain, Candidates, ConditionResult};

use super::decide::*;
use super::*;

const EVERY_MATCHER: &str = "subject: { glob: 'svc-*' }
audience: https://ferry.internal
claims:
  ref: main
  repo: { glob: 'acme/*' }
  tag: { regex: 'v\\d+' }
  event: { one_of: [push, tag] }
  actor: { not: { glob: '*[bot]' } }
  env: { any_of: [prod, { glob: 'stage-*' }] }
  ci: { exists: true }
  groups: { contains: deployers }
  k8s: { namespace: ci }
any_of:
  - claims: { team: red }
  - claims: { team: blue }
";

fn rows() -> Vec<ConditionResult> {
    let s = set(&[(
        "every.yaml",
        &pol(EVERY_MATCHER, "https://api", "read", "5m"),
    )])
    .unwrap();
    let t = token(
        "corp",
        "svc-a",
        json!({ "ref": "dev", "repo": "acme/api", "tag": "v1x", "event": "push",
                "actor": "ci[bot]", "env": "stage-2", "groups": ["devs"],
                "k8s": { "namespace": "ci" }, "team": "blue" }),
    );
    let e = explain(
        &req(None, "read", None),
        &t,
        &s,
        &ctx(),
        NOW,
        Candidates::Issuer(None),
    );
    assert_eq!((e.decision, e.reason), ("deny", "claim_mismatch"));
    assert_eq!(e.policies.len(), 1);
    assert!(!e.policies[0].holds);
    e.policies[0].conditions.clone()
}

#[test]
fn explain_traces_every_matcher_kind_with_line_expected_and_actual() {
    let rows = rows();
    let find = |path: &str| {
        rows.iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no row {path}: {rows:?}"))
    };
    let cases = [
        ("subject", true, "glob \"svc-*\"", 2),
        ("audience", true, "\"https://ferry.internal\"", 3),
        ("claims.ref", false, "\"main\"", 5),
        ("claims.repo", true, "glob \"acme/*\"", 6),
        ("claims.tag", false, "regex \"v\\\\d+\"", 7),
        ("claims.event", true, "one_of [\"push\", \"tag\"]", 8),
        ("claims.actor", false, "not glob \"*[bot]\"", 9),
        (
            "claims.env",
            true,
            "any_of [\"prod\", glob \"stage-*\"]",
            10,
        ),
        ("claims.ci", false, "exists true", 11),
        ("claims.groups", false, "contains \"deployers\"", 12),
        ("claims.k8s.namespace", true, "\"ci\"", 13),
        ("any_of", true, "one of 2 groups to hold", 15),
        ("any_of[0].claims.team", false, "\"red\"", 15),
        ("any_of[1].claims.team", true, "\"blue\"", 16),
    ];
    for (path, passed, expected, line) in cases {
        let r = find(path);
        assert_eq!(
            (r.passed, r.expected.as_str(), r.line),
            (passed, expected, line),
            "{path}"
        );
    }
    assert_eq!(find("claims.ref").actual, Some(json!("dev")));
    assert_eq!(
        find("claims.ci").actual,
        None,
        "a missing claim has no actual value"
    );
    assert_eq!(find("claims.groups").actual, Some(json!(["devs"])));
}

#[test]
fn explain_says_why_a_policy_was_not_a_candidate() {
    let s = fixture();
    let t = token("corp", "svc-a", json!({ "ref": "main" }));
    let e = explain(
        &req(Some("https://other"), "admin", None),
        &t,
        &s,
        &ctx(),
        NOW,
        Candidates::Issuer(None),
    );
    assert_eq!(
        (e.decision, e.policy.as_ref().map(|p| p.as_str())),
        ("allow", Some("c-other"))
    );
    let a = &e.policies[0];
    assert_eq!(a.policy.as_str(), "a-main");
    assert!(
        a.skipped
            .as_deref()
            .unwrap_or_default()
            .contains("grants audience https://api"),
        "{a:?}"
    );
    let granted = e.granted.expect("granted");
    assert_eq!(
        (granted.scopes.as_str(), granted.ttl_seconds),
        ("admin", 300)
    );
}
