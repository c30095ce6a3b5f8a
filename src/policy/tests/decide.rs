//! `exchange::decide`: selection order, named policies, every deny reason, narrowing, audit mode,
//! copied claims and trace positions.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::domain::{Algorithm, ScopeSet};
use crate::exchange::{decide, DecideContext, Decision, DenyReason, Requested};
use crate::verify::VerifiedToken;

use super::*;

pub(super) const NOW: i64 = 1_700_000_000;

pub(super) fn token(issuer: &str, sub: &str, claims: Value) -> VerifiedToken {
    let Value::Object(claims) = claims else {
        panic!("claims must be an object")
    };
    VerifiedToken {
        issuer: issuer.parse().unwrap(),
        subject: sub.to_string(),
        audiences: vec!["https://ferry.internal".to_string()],
        expires_at: NOW + 300,
        issued_at: Some(NOW),
        jti: None,
        claims,
        normalized: Map::new(),
        token_sha256: "00".repeat(32),
        algorithm: Algorithm::RS256,
        key_id: None,
    }
}

pub(super) fn ctx() -> DecideContext {
    DecideContext {
        broker_audience: "https://ferry.internal".parse().unwrap(),
    }
}

pub(super) fn req(audience: Option<&str>, scopes: &str, policy: Option<&str>) -> Requested {
    Requested {
        audience: audience.map(|a| a.parse().unwrap()),
        scopes: ScopeSet::parse(scopes).unwrap(),
        ttl: None,
        policy: policy.map(|p| p.parse().unwrap()),
        actor: None,
    }
}

pub(super) fn pol(extra: &str, aud: &str, scopes: &str, ttl: &str) -> String {
    format!("issuer: corp\n{extra}grant:\n  audience: {aud}\n  scopes: [{scopes}]\n  ttl: {ttl}\n")
}

pub(super) fn fixture() -> PolicySet {
    set(&[
        (
            "a-main.yaml",
            &pol(
                "subject: svc-a\nclaims:\n  ref: main\n",
                "https://api",
                "read, write",
                "1h",
            ),
        ),
        (
            "b-any.yaml",
            &pol("subject: { glob: 'svc-*' }\n", "https://api", "read", "10m"),
        ),
        (
            "c-other.yaml",
            &pol("subject: svc-a\n", "https://other", "admin", "5m"),
        ),
        (
            "d-audit.yaml",
            &pol("subject: job-z\nmode: audit\n", "https://api", "read", "5m"),
        ),
    ])
    .unwrap()
}

pub(super) fn run(r: &Requested, t: &VerifiedToken, s: &PolicySet) -> Decision {
    decide(r, t, s, &ctx(), NOW)
}

pub(super) fn allowed(d: Decision) -> crate::exchange::Grant {
    match d {
        Decision::Allow(g) => g,
        Decision::Deny(d) => panic!("expected allow, got {d:?}"),
    }
}

pub(super) fn denied(d: Decision) -> crate::exchange::Denial {
    match d {
        Decision::Deny(d) => d,
        Decision::Allow(g) => panic!("expected deny, got {g:?}"),
    }
}

#[test]
fn deny_reasons_table() {
    let s = fixture();
    let main = token("corp", "svc-a", json!({"ref": "main"}));
    let cases: Vec<(Requested, VerifiedToken, DenyReason)> = vec![
        (
            req(None, "", None),
            token("github", "x", json!({})),
            DenyReason::NoPolicy,
        ),
        (
            req(None, "", Some("nope")),
            main.clone(),
            DenyReason::UnknownPolicy,
        ),
        (
            req(None, "", Some("a-main")),
            token("github", "svc-a", json!({})),
            DenyReason::UnknownPolicy,
        ),
        (
            req(Some("https://none"), "", None),
            main.clone(),
            DenyReason::AudienceNotServed,
        ),
        (
            req(Some("https://api"), "admin", None),
            main.clone(),
            DenyReason::ScopeNotAllowed,
        ),
        (
            req(None, "write", None),
            token("corp", "svc-b", json!({})),
            DenyReason::ClaimMismatch,
        ),
        (
            req(None, "", None),
            token("corp", "nobody", json!({})),
            DenyReason::ClaimMismatch,
        ),
        (
            req(None, "", None),
            token("corp", "job-z", json!({})),
            DenyReason::AuditOnly,
        ),
    ];
    for (r, t, want) in cases {
        assert_eq!(denied(run(&r, &t, &s)).reason, want, "{r:?} {}", t.subject);
    }
}

#[test]
fn first_holding_policy_in_file_order_wins() {
    let s = fixture();
    let g = allowed(run(
        &req(None, "", None),
        &token("corp", "svc-a", json!({"ref": "main"})),
        &s,
    ));
    assert_eq!(g.policy.as_str(), "a-main");
    assert_eq!(g.scopes.to_scope_string(), "read write");
    assert_eq!(g.ttl_seconds, 3600);
    let g = allowed(run(
        &req(None, "", None),
        &token("corp", "svc-a", json!({"ref": "dev"})),
        &s,
    ));
    assert_eq!(
        g.policy.as_str(),
        "b-any",
        "a-main fails on ref, b-any holds"
    );
    let g = allowed(run(
        &req(Some("https://other"), "", None),
        &token("corp", "svc-a", json!({})),
        &s,
    ));
    assert_eq!(
        g.policy.as_str(),
        "c-other",
        "audience selects among policies"
    );
}

#[test]
fn named_policy_is_the_only_candidate() {
    let s = fixture();
    let t = token("corp", "svc-a", json!({"ref": "dev"}));
    let d = denied(run(&req(None, "", Some("a-main")), &t, &s));
    assert_eq!(d.reason, DenyReason::ClaimMismatch);
    assert_eq!(d.policy.as_ref().map(|p| p.as_str()), Some("a-main"));
    assert_eq!(d.trace.len(), 1);
    let g = allowed(run(&req(None, "", Some("c-other")), &t, &s));
    assert_eq!(g.audience.as_str(), "https://other");
}

#[test]
fn requested_scopes_and_ttl_only_narrow() {
    let s = fixture();
    let t = token("corp", "svc-a", json!({"ref": "main"}));
    let mut r = req(None, "read", None);
    r.ttl = Some(Duration::from_secs(90));
    let g = allowed(run(&r, &t, &s));
    assert_eq!(
        (g.scopes.to_scope_string().as_str(), g.ttl_seconds),
        ("read", 90)
    );
    r.ttl = Some(Duration::from_secs(99_999));
    assert_eq!(allowed(run(&r, &t, &s)).ttl_seconds, 3600);
}

#[test]
fn ttl_bound_to_token_caps_and_exhausts() {
    let p =
        "issuer: corp\ngrant: { audience: a, scopes: [x], ttl: 1h, ttl_bound_to_token: true }\n";
    let s = set(&[("p.yaml", p)]).unwrap();
    let mut t = token("corp", "s", json!({}));
    assert_eq!(allowed(run(&req(None, "", None), &t, &s)).ttl_seconds, 300);
    t.expires_at = NOW;
    let d = denied(run(&req(None, "", None), &t, &s));
    assert_eq!(d.reason, DenyReason::LifetimeExhausted);
}

#[test]
fn audit_mode_is_observed_and_never_grants() {
    let s = fixture();
    let d = denied(run(
        &req(None, "", None),
        &token("corp", "job-z", json!({})),
        &s,
    ));
    assert_eq!(d.observations.len(), 1);
    assert_eq!(
        (d.observations[0].policy.as_str(), d.observations[0].would),
        ("d-audit", "allow")
    );
    let audit = pol(
        "subject: { glob: 'svc-*' }\nclaims: { ref: main }\nmode: audit\n",
        "https://api",
        "read",
        "5m",
    );
    let s = set(&[
        ("a.yaml", &audit),
        ("b.yaml", &pol("", "https://api", "read", "5m")),
    ])
    .unwrap();
    let g = allowed(run(
        &req(None, "", None),
        &token("corp", "svc-q", json!({"ref": "dev"})),
        &s,
    ));
    assert_eq!(g.policy.as_str(), "b");
    assert_eq!(g.observations[0].would, "deny");
}

#[test]
fn grant_claims_are_copied_and_missing_sources_omitted() {
    let p = "issuer: corp\ngrant:\n  audience: a\n  scopes: [x]\n  ttl: 1m\n  claims: { repo: repository, run: run_id }\n";
    let s = set(&[("p.yaml", p)]).unwrap();
    let g = allowed(run(
        &req(None, "", None),
        &token("corp", "s", json!({"repository": "acme/api"})),
        &s,
    ));
    let mut want = Map::new();
    want.insert("repo".into(), json!("acme/api"));
    assert_eq!(g.claims, want);
}

#[test]
fn policy_without_audience_requires_the_broker_audience() {
    let s = set(&[("p.yaml", &pol("", "a", "x", "1m"))]).unwrap();
    let mut t = token("corp", "s", json!({}));
    t.audiences = vec!["https://elsewhere".into()];
    let d = denied(run(&req(None, "", None), &t, &s));
    assert_eq!(d.trace[0].failed.as_ref().unwrap().path, "audience");
    let p = pol("audience: { glob: 'https://else*' }\n", "a", "x", "1m");
    let s = set(&[("p.yaml", &p)]).unwrap();
    assert!(matches!(
        run(&req(None, "", None), &t, &s),
        Decision::Allow(_)
    ));
}

#[test]
fn trace_points_at_the_failing_condition() {
    let p = pol(
        "subject: { glob: 'repo:acme/*' }\nclaims:\n  kubernetes.io:\n    namespace: ci\n  event_name: { one_of: [push, workflow_dispatch] }\n",
        "a", "x", "1m",
    );
    let s = set(&[("p.yaml", &p)]).unwrap();
    let fail = |sub: &str, claims: Value| {
        let d = denied(run(&req(None, "", None), &token("corp", sub, claims), &s));
        d.trace[0].failed.clone().unwrap()
    };
    let f = fail("repo:other/x", json!({}));
    assert_eq!((f.path.as_str(), f.line, f.column), ("subject", 2, 10));
    assert_eq!(f.expected, "glob \"repo:acme/*\"");
    let f = fail(
        "repo:acme/x",
        json!({"kubernetes.io": {"namespace": "prod"}}),
    );
    assert_eq!(
        (f.path.as_str(), f.line, f.column),
        ("claims.kubernetes.io.namespace", 5, 16)
    );
    assert_eq!(f.actual, Some(json!("prod")));
    let f = fail("repo:acme/x", json!({"kubernetes.io": {"namespace": "ci"}}));
    assert_eq!((f.path.as_str(), f.line), ("claims.event_name", 6));
    assert_eq!(f.expected, "one_of [\"push\", \"workflow_dispatch\"]");
    assert_eq!(f.actual, None);
}

#[test]
fn any_of_needs_one_group_and_traces_each_group() {
    let p = pol(
        "any_of:\n  - claims: { environment: production }\n  - claims: { ref: refs/heads/main }\n",
        "a",
        "x",
        "1m",
    );
    let s = set(&[("p.yaml", &p)]).unwrap();
    let r = req(None, "", None);
    assert!(matches!(
        run(
            &r,
            &token("corp", "s", json!({"ref": "refs/heads/main"})),
            &s
        ),
        Decision::Allow(_)
    ));
    let d = denied(run(&r, &token("corp", "s", json!({"ref": "dev"})), &s));
    let f = d.trace[0].failed.clone().unwrap();
    assert_eq!(
        (f.path.as_str(), f.line),
        ("any_of", 3),
        "the first group of the block list"
    );
    assert!(
        f.expected
            .contains("any_of[0].claims.environment: \"production\""),
        "{}",
        f.expected
    );
}

#[test]
fn subject_index_never_hides_a_policy_that_could_match() {
    let s = set(&[
        (
            "a.yaml",
            &pol("subject: { glob: 'repo:acme/*' }\n", "a", "x", "1m"),
        ),
        (
            "b.yaml",
            &pol("subject: { glob: '*:main' }\n", "a", "x", "1m"),
        ),
        (
            "c.yaml",
            &pol("subject: { glob: 'r?po:*' }\n", "a", "x", "1m"),
        ),
        (
            "d.yaml",
            &pol("subject: { regex: 'z.*' }\n", "a", "x", "1m"),
        ),
        ("e.yaml", &pol("subject: zed\n", "a", "x", "1m")),
    ])
    .unwrap();
    for (sub, want) in [
        ("repo:acme/api", "a"),
        ("x:main", "b"),
        ("rXpo:other", "c"),
        ("zz", "d"),
        ("zed", "d"),
    ] {
        let g = allowed(run(
            &req(None, "", None),
            &token("corp", sub, json!({})),
            &s,
        ));
        assert_eq!(g.policy.as_str(), want, "{sub}");
    }
    let named = allowed(run(
        &req(None, "", Some("e")),
        &token("corp", "zed", json!({})),
        &s,
    ));
    assert_eq!(named.policy.as_str(), "e");
}
