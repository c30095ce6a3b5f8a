//! Trust-policy matchers, exercised through real exchanges: each test loads one policy and sends
//! tokens that should and should not satisfy it.

mod common;

use common::*;
use serde_json::json;

type Edit = fn(Claims) -> Claims;

fn same(c: Claims) -> Claims {
    c
}

/// Spawns a broker whose only policy is the deploy grant under `conditions`, then for each case
/// exchanges a token edited by `edit` and asserts it is allowed (200) or denied as a claim
/// mismatch (400, audited `claim_mismatch`).
async fn check(conditions: &str, cases: &[(&str, Edit, bool)]) {
    let policy = policy_with(&format!(
        "subject: {{ glob: \"repo:acme/api:*\" }}\n{conditions}"
    ));
    let app = spawn_app(Fixture::empty().policy("matcher", &policy)).await;
    for (name, edit, allowed) in cases {
        let token = app.sign(&edit(app.claims()));
        let (status, body, _) = app.exchange_token(&token, None).await;
        if *allowed {
            assert_eq!(status, 200, "case `{name}` should be allowed: {body}");
        } else {
            assert_eq!(status, 400, "case `{name}` should be denied: {body}");
            assert_generic(body["error_description"].as_str().unwrap_or_default());
            let reason = assert_denial_event(&app.last_audit_event());
            assert_eq!(reason, "claim_mismatch", "case `{name}`");
        }
    }
}

#[tokio::test]
async fn glob_star_matches_across_slashes() {
    let conditions = "claims:\n  job_workflow_ref: { glob: \"acme/*@refs/heads/main\" }";
    check(
        conditions,
        &[
            ("nested workflow path", same, true),
            (
                "other ref",
                |c| {
                    c.set(
                        "job_workflow_ref",
                        "acme/api/.github/workflows/deploy.yml@refs/heads/dev",
                    )
                },
                false,
            ),
            (
                "other owner",
                |c| {
                    c.set(
                        "job_workflow_ref",
                        "acme-evil/x/.github/workflows/d.yml@refs/heads/main",
                    )
                },
                false,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn subject_glob_does_not_match_a_look_alike_repository() {
    check(
        "",
        &[
            ("acme/api", same, true),
            (
                "acme/api-evil",
                |c| c.subject("repo:acme/api-evil:ref:refs/heads/main"),
                false,
            ),
            (
                "other owner",
                |c| c.subject("repo:evil/acme/api:ref:refs/heads/main"),
                false,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn regex_is_anchored_at_both_ends() {
    let conditions = "claims:\n  ref: { regex: 'refs/heads/(main|release/v\\d+)' }";
    check(
        conditions,
        &[
            ("main", same, true),
            ("release", |c| c.set("ref", "refs/heads/release/v2"), true),
            ("suffix", |c| c.set("ref", "refs/heads/main-evil"), false),
            ("prefix", |c| c.set("ref", "xrefs/heads/main"), false),
        ],
    )
    .await;
}

#[tokio::test]
async fn one_of_accepts_only_listed_values() {
    let conditions = "claims:\n  event_name: { one_of: [push, workflow_dispatch] }";
    check(
        conditions,
        &[
            ("push", same, true),
            (
                "dispatch",
                |c| c.set("event_name", "workflow_dispatch"),
                true,
            ),
            (
                "pull_request_target",
                |c| c.set("event_name", "pull_request_target"),
                false,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn not_negates_but_still_requires_the_claim() {
    let conditions = "claims:\n  actor: { not: { one_of: [\"dependabot[bot]\"] } }";
    check(
        conditions,
        &[
            ("human", same, true),
            ("bot", |c| c.set("actor", "dependabot[bot]"), false),
            ("missing actor", |c| c.remove("actor"), false),
        ],
    )
    .await;
}

#[tokio::test]
async fn any_of_groups_need_one_group_to_hold() {
    let conditions =
        "any_of:\n  - claims: { environment: production }\n  - claims: { ref: refs/heads/main }";
    check(
        conditions,
        &[
            ("main", same, true),
            (
                "production from a branch",
                |c| c.set("ref", "refs/heads/dev").environment("production"),
                true,
            ),
            ("neither", |c| c.set("ref", "refs/heads/dev"), false),
        ],
    )
    .await;
}

#[tokio::test]
async fn any_of_matcher_holds_when_one_alternative_does() {
    let conditions = "claims:\n  ref: { any_of: [refs/heads/main, { glob: \"refs/tags/v*\" }] }";
    check(
        conditions,
        &[
            ("main", same, true),
            (
                "tag",
                |c| c.set("ref", "refs/tags/v1.2.3").set("ref_type", "tag"),
                true,
            ),
            ("branch", |c| c.set("ref", "refs/heads/dev"), false),
        ],
    )
    .await;
}

#[tokio::test]
async fn exists_checks_presence_only() {
    let conditions = "claims:\n  environment: { exists: false }\n  ref_protected: { exists: true }";
    check(
        conditions,
        &[
            ("no environment", same, true),
            ("with environment", |c| c.environment("production"), false),
            (
                "without ref_protected",
                |c| c.remove("ref_protected"),
                false,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn contains_matches_an_element_of_an_array_claim() {
    let conditions = "claims:\n  groups: { contains: deployers }";
    check(
        conditions,
        &[
            (
                "member",
                |c| c.set("groups", json!(["devs", "deployers"])),
                true,
            ),
            ("not a member", |c| c.set("groups", json!(["devs"])), false),
            (
                "a string, not an array",
                |c| c.set("groups", "deployers"),
                false,
            ),
            ("missing", same, false),
        ],
    )
    .await;
}

#[tokio::test]
async fn nested_claims_are_matched_by_nested_mappings() {
    let conditions =
        "claims:\n  kubernetes.io: { namespace: ci, serviceaccount: { name: deployer } }";
    check(conditions, &[
        ("ci/deployer with extra fields", |c| c.set("kubernetes.io", json!({ "namespace": "ci", "serviceaccount": { "name": "deployer", "uid": "u-1" } })), true),
        ("wrong namespace", |c| c.set("kubernetes.io", json!({ "namespace": "prod", "serviceaccount": { "name": "deployer" } })), false),
        ("wrong service account", |c| c.set("kubernetes.io", json!({ "namespace": "ci", "serviceaccount": { "name": "intruder" } })), false),
        ("flat claims", |c| c.set("namespace", "ci"), false),
    ])
    .await;
}

#[tokio::test]
async fn exact_values_are_type_strict() {
    check(
        "claims:\n  ref_protected: \"true\"",
        &[
            ("string true", same, true),
            ("boolean true", |c| c.set("ref_protected", true), false),
        ],
    )
    .await;
    check(
        "claims:\n  ref_protected: true",
        &[
            ("boolean true", |c| c.set("ref_protected", true), true),
            ("string true", same, false),
        ],
    )
    .await;
}

/// CEL `when:` is a condition like any other: through a real exchange, `true` allows, `false`
/// and evaluation errors deny (never allow).
#[tokio::test]
async fn a_when_expression_decides_and_its_errors_deny() {
    check(
        "when: 'claims.run_attempt == \"1\" && request.scopes.all(s, s.startsWith(\"deploy:\"))'",
        &[
            ("first attempt", |c| c.set("run_attempt", "1"), true),
            ("a retry", |c| c.set("run_attempt", "2"), false),
            (
                "no run_attempt: an evaluation error",
                |c| c.remove("run_attempt"),
                false,
            ),
        ],
    )
    .await;
}

/// A broken `when:` refuses the whole set at load, naming file and line.
#[tokio::test]
async fn a_broken_when_expression_refuses_the_set() {
    let policy =
        policy_with("subject: { glob: \"repo:acme/api:*\" }\nwhen: 'claims.run_attempt =='");
    let error = startup_error(Fixture::empty().policy("guarded", &policy)).await;
    assert!(
        error.contains("guarded.yaml:3:7: invalid CEL in `when`"),
        "{error}"
    );
}

#[tokio::test]
async fn an_audit_mode_policy_never_grants() {
    let policy = format!("{DEPLOY_POLICY}mode: audit\n");
    let app = spawn_app(Fixture::empty().policy("watching", &policy)).await;
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(assert_denial_event(&app.last_audit_event()), "audit_only");
}

/// A guardrail deny rule beats the policy that holds, through a real exchange; the audit event
/// names the rule and keeps the full trace, so the denial can be explained from the record alone.
#[tokio::test]
async fn a_guardrail_deny_rule_beats_a_holding_policy_and_is_audited() {
    let guardrails = "deny:\n  - description: bots never deploy\n    claims: { actor: { glob: \"*[bot]\" } }\n    scopes: [\"deploy:*\"]\n";
    let app = spawn_app(Fixture::deploy().guardrails(guardrails)).await;
    let (status, body, _) = app.exchange_token(&app.token(), Some("deploy:api")).await;
    assert_eq!(status, 200, "a human may deploy: {body}");
    let bot = app.sign(&app.claims().set("actor", "renovate-like[bot]"));
    let (status, body, _) = app.exchange_token(&bot, Some("deploy:api")).await;
    assert_eq!(status, 400, "{body}");
    assert_generic(body["error_description"].as_str().unwrap_or_default());
    let event = app.last_audit_event();
    assert_eq!(assert_denial_event(&event), "guardrail_denied");
    let trace = &event["trace"];
    assert_eq!(trace["guardrails"][0]["rule"], "deny[0]", "{trace}");
    assert_eq!(trace["guardrails"][0]["description"], "bots never deploy");
    assert_eq!(trace["guardrails"][0]["line"], 2);
    assert_eq!(
        trace["policies"][0]["holds"], true,
        "the policy itself held: {trace}"
    );
}

/// A guardrail's `scopes_allowed` is a scope ceiling: an explicit request above it is
/// `invalid_scope` (RFC 6749 §5.2), as a request above the policy's grant is; the audit event
/// says which ceiling refused it.
#[tokio::test]
async fn a_scope_request_above_the_guardrail_ceiling_is_invalid_scope() {
    let app = spawn_app(Fixture::deploy().guardrails("scopes_allowed: [\"read:*\"]\n")).await;
    let (status, body, _) = app
        .exchange_token(&app.token(), Some("read:artifacts"))
        .await;
    assert_eq!(status, 200, "control: under the ceiling: {body}");
    let got = app
        .exchange_token(&app.token(), Some("deploy:api read:artifacts"))
        .await;
    assert_oauth_error(&got, 400, "invalid_scope");
    assert_eq!(app.last_audit_event()["reason"], "scope_above_ceiling");
}

/// The audit record of a claim mismatch holds every condition with pass/fail and its line.
#[tokio::test]
async fn a_denial_audit_event_holds_the_full_trace() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.sign(&app.claims().set("ref", "refs/heads/dev"));
    let (status, _, _) = app.exchange_token(&token, None).await;
    assert_eq!(status, 400);
    let event = app.last_audit_event();
    assert_eq!(assert_denial_event(&event), "claim_mismatch");
    let conditions = event["trace"]["policies"][0]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failed: Vec<&serde_json::Value> =
        conditions.iter().filter(|c| c["passed"] == false).collect();
    assert_eq!(failed.len(), 1, "{conditions:?}");
    assert_eq!(failed[0]["path"], "claims.ref");
    assert_eq!(failed[0]["expected"], "\"refs/heads/main\"");
    assert_eq!(failed[0]["actual"], "refs/heads/dev");
    assert!(failed[0]["line"].as_u64().unwrap_or_default() > 1);
    assert!(conditions.len() >= 4, "passing conditions are listed too");
}
