//! Guardrails in `decide`: precedence over every policy, ceilings, and audit mode.

use serde_json::json;

use crate::exchange::DenyReason;

use super::decide::*;
use super::*;

fn with_guardrails(guardrails: &str) -> PolicySet {
    let policies = vec![
        (
            "deploy.yaml".to_string(),
            pol(
                "subject: { glob: 'svc-*' }\n",
                "https://api",
                "deploy:api, read",
                "2h",
            ),
        ),
        (
            "other.yaml".to_string(),
            pol("", "https://other", "read", "5m").replace("corp", "github"),
        ),
    ];
    PolicySet::from_sources_with_guardrails(ISSUERS, guardrails, &policies, Path::new("tp"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn svc(claims: serde_json::Value) -> crate::verify::VerifiedToken {
    token("corp", "svc-a", claims)
}

#[test]
fn a_deny_rule_wins_over_a_policy_that_holds() {
    let s = with_guardrails(
        "deny:\n  - description: bots never deploy\n    claims: { actor: { glob: '*[bot]' } }\n    scopes: ['deploy:*']\n",
    );
    let bot = svc(json!({ "actor": "ci[bot]" }));
    let d = denied(run(&req(None, "deploy:api", None), &bot, &s));
    assert_eq!(d.reason, DenyReason::GuardrailDenied);
    assert_eq!(d.reason.code(), "guardrail_denied");
    let hit = &d.guardrails[0];
    assert_eq!(
        (hit.rule.as_str(), hit.effect, hit.line),
        ("deny[0]", "denied", 2)
    );
    assert_eq!(hit.description.as_deref(), Some("bots never deploy"));
    // No scope asked for means every scope of the policy, deploy included: still denied.
    let d = denied(run(&req(None, "", None), &bot, &s));
    assert_eq!(d.reason, DenyReason::GuardrailDenied);
    // The rule is limited to deploy scopes; reading is fine, and humans may deploy.
    allowed(run(&req(None, "read", None), &bot, &s));
    allowed(run(
        &req(None, "deploy:api", None),
        &svc(json!({ "actor": "ana" })),
        &s,
    ));
}

#[test]
fn issuers_not_allowed_never_reach_a_policy() {
    let s = with_guardrails("issuers_allowed: [github]\n");
    let d = denied(run(&req(None, "read", None), &svc(json!({})), &s));
    assert_eq!(d.reason, DenyReason::IssuerNotAllowed);
    assert!(d.trace.is_empty(), "no policy was evaluated");
    assert_eq!(d.guardrails[0].rule, "issuers_allowed");
}

#[test]
fn max_ttl_caps_every_grant() {
    let s = with_guardrails("max_ttl: 30m\n");
    let g = allowed(run(&req(None, "read", None), &svc(json!({})), &s));
    assert_eq!(g.ttl_seconds, 1800, "policy says 2h, guardrail 30m");
    assert_eq!(
        (g.guardrails[0].rule.as_str(), g.guardrails[0].effect),
        ("max_ttl", "capped")
    );
}

#[test]
fn scope_ceiling_narrows_implicit_scopes_and_refuses_explicit_ones() {
    let s = with_guardrails("scopes_allowed: ['read*']\n");
    let g = allowed(run(&req(None, "", None), &svc(json!({})), &s));
    assert_eq!(g.scopes.to_scope_string(), "read");
    let d = denied(run(&req(None, "deploy:api", None), &svc(json!({})), &s));
    assert_eq!(d.reason.code(), "scope_above_ceiling");
}

#[test]
fn audit_mode_guardrails_record_but_deny_nothing() {
    let s = with_guardrails(
        "mode: audit\nissuers_allowed: [github]\nmax_ttl: 30m\ndeny:\n  - description: no svc\n    subject: { glob: 'svc-*' }\n",
    );
    let g = allowed(run(&req(None, "read", None), &svc(json!({})), &s));
    assert_eq!(
        g.ttl_seconds, 7200,
        "the ceiling is not applied in audit mode"
    );
    let effects: Vec<(&str, &str)> = g
        .guardrails
        .iter()
        .map(|h| (h.rule.as_str(), h.effect))
        .collect();
    assert_eq!(
        effects,
        vec![
            ("issuers_allowed", "would_deny"),
            ("deny[0]", "would_deny"),
            ("max_ttl", "would_cap")
        ]
    );
}
