//! The `delegation:` block: strict loading with positions, the `actor-any` lint, and the pure
//! delegation rules inside `decide` (each refusal next to the same setup granting).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::exchange::{decide, ActorToken, Decision, DenyReason};
use crate::verify::VerifiedToken;

use super::decide::{ctx, req, token, NOW};
use super::*;

const DELEGATING: &str = "issuer: corp
audience: https://ferry.internal
subject: alice
grant:
  audience: https://tickets
  scopes: [read, comment, admin]
  ttl: 15m
delegation:
  actors:
    - issuer: github
      subject: { glob: 'repo:acme/agents:*' }
      scopes: [read, comment]
  max_depth: 2
";

fn delegating() -> PolicySet {
    set(&[("tickets.yaml", DELEGATING)]).unwrap_or_else(|e| panic!("{e}"))
}

/// An actor token (a token of its own: its hash is not the subject's).
fn agent(sub: &str) -> VerifiedToken {
    let iss = json!({ "iss": "https://token.actions.githubusercontent.com" });
    let mut t = token("github", sub, iss);
    t.token_sha256 = crate::domain::sha256_hex(sub.as_bytes());
    t
}

fn with_actor(scopes: &str, actor: VerifiedToken) -> crate::exchange::Requested {
    let mut r = req(Some("https://tickets"), scopes, None);
    r.actor = Some(ActorToken(Arc::new(actor)));
    r
}

fn decided(subject_claims: Value, scopes: &str, actor: VerifiedToken) -> Decision {
    let subject = token("corp", "alice", subject_claims);
    decide(
        &with_actor(scopes, actor),
        &subject,
        &delegating(),
        &ctx(),
        NOW,
    )
}

fn reason(d: Decision) -> DenyReason {
    match d {
        Decision::Deny(d) => d.reason,
        Decision::Allow(g) => panic!("expected a denial, got {g:?}"),
    }
}

#[test]
fn a_delegation_block_loads_and_its_mistakes_are_refused_at_their_position() {
    delegating();
    let bad = DELEGATING
        .replace("issuer: github", "issuer: gitlab")
        .replace("scopes: [read, comment]", "scopes: [read, delete]")
        .replace("max_depth: 2", "max_depth: 0");
    let errors = errors_of(&bad);
    let expect = [
        "tp/p.yaml:10:15: unknown issuer `gitlab`",
        "tp/p.yaml:12:22: scope `delete` is not in `grant.scopes`",
        "tp/p.yaml:13:14: `delegation.max_depth` must be between 1 and 8, found 0",
    ];
    for (e, want) in errors.iter().zip(expect) {
        assert!(e.starts_with(want), "{e:?} should start with {want:?}");
    }
    assert_eq!(errors.len(), 3, "{errors:?}");
    let unknown = errors_of(&DELEGATING.replace("max_depth: 2", "depth: 2"));
    assert!(unknown[0].starts_with("tp/p.yaml:13:3: "), "{unknown:?}");
    let empty = errors_of(&DELEGATING.replace("scopes: [read, comment]", "scopes: []"));
    assert!(empty[0].contains("at least one scope"), "{empty:?}");
}

#[test]
fn an_actor_rule_without_a_pinned_subject_is_linted() {
    let codes = |s: &PolicySet| s.warnings().iter().map(|l| l.code).collect::<Vec<_>>();
    assert!(!codes(&delegating()).contains(&"actor-any"));
    let any = DELEGATING.replace(
        "subject: { glob: 'repo:acme/agents:*' }",
        "subject: { glob: '*' }",
    );
    let s = set(&[("p.yaml", &any)]).unwrap();
    let lint = s
        .warnings()
        .iter()
        .find(|l| l.code == "actor-any")
        .expect("actor-any");
    assert_eq!((lint.line, lint.column), (10, 7));
    assert!(
        !codes(&s).contains(&"unused-issuer"),
        "an actor's issuer is used"
    );
}

#[test]
fn scopes_are_narrowed_to_the_actor_allowance_and_the_chain_is_recorded() {
    let Decision::Allow(g) = decided(json!({}), "read admin", agent("repo:acme/agents:bot")) else {
        panic!("the agent may act for alice")
    };
    assert_eq!(g.scopes.to_scope_string(), "read");
    let d = g.delegation.expect("delegated");
    assert_eq!(d.scopes_refused.to_scope_string(), "admin");
    assert_eq!(
        d.act,
        json!({ "sub": "repo:acme/agents:bot", "iss": "https://token.actions.githubusercontent.com" })
    );
    assert_eq!(
        reason(decided(json!({}), "admin", agent("repo:acme/agents:bot"))),
        DenyReason::DelegationScopeEmpty
    );
}

#[test]
fn an_actor_that_matches_no_rule_is_refused_and_the_trace_points_at_the_rule() {
    let other = decided(json!({}), "read", agent("repo:evil/agents:bot"));
    let Decision::Deny(d) = other else {
        panic!("refused")
    };
    assert_eq!(d.reason, DenyReason::ActorNotAllowed);
    let failed = d.trace[0].failed.as_ref().unwrap();
    assert_eq!(
        (failed.path.as_str(), failed.line),
        ("delegation.actors[0].subject", 11)
    );
    let corp_actor = token("corp", "repo:acme/agents:bot", json!({}));
    assert_eq!(
        reason(decided(json!({}), "read", corp_actor)),
        DenyReason::ActorNotAllowed
    );
}

#[test]
fn may_act_must_match_the_actor_and_a_malformed_one_matches_nobody() {
    let bot = || agent("repo:acme/agents:bot");
    let ok = decided(
        json!({ "may_act": { "sub": "repo:acme/agents:bot" } }),
        "read",
        bot(),
    );
    assert!(matches!(ok, Decision::Allow(_)));
    for may_act in [
        json!({ "sub": "repo:acme/agents:other" }),
        json!("repo:acme/agents:bot"),
        json!({}),
    ] {
        let d = decided(json!({ "may_act": may_act }), "read", bot());
        assert_eq!(reason(d), DenyReason::MayActMismatch, "{may_act}");
    }
}

#[test]
fn a_chain_is_nested_up_to_max_depth_and_malformed_chains_are_refused() {
    let bot = || agent("repo:acme/agents:bot");
    let prior = json!({ "sub": "repo:acme/agents:first" });
    let Decision::Allow(g) = decided(json!({ "act": prior }), "read", bot()) else {
        panic!("a chain of two is within max_depth 2")
    };
    let d = g.delegation.unwrap();
    assert_eq!(d.act["act"], prior, "the old chain nested inside");
    assert_eq!(d.chain.len(), 2);
    let deep = json!({ "act": { "sub": "b", "act": { "sub": "a" } } });
    assert_eq!(
        reason(decided(deep, "read", bot())),
        DenyReason::DelegationTooDeep
    );
    let broken = json!({ "act": { "iss": "x" } });
    assert_eq!(
        reason(decided(broken, "read", bot())),
        DenyReason::ActChainInvalid
    );
}

#[test]
fn a_delegated_subject_token_without_an_actor_is_refused() {
    let plain = token("corp", "alice", json!({}));
    let set = delegating();
    let r = req(Some("https://tickets"), "read", None);
    assert!(matches!(
        decide(&r, &plain, &set, &ctx(), NOW),
        Decision::Allow(_)
    ));
    let delegated = token("corp", "alice", json!({ "act": { "sub": "bot" } }));
    assert_eq!(
        reason(decide(&r, &delegated, &set, &ctx(), NOW)),
        DenyReason::ActorRequired
    );
}

#[test]
fn the_schema_describes_the_delegation_block() {
    let schema = schemas()["policy"].to_string();
    for word in ["delegation", "max_depth", "actors"] {
        assert!(schema.contains(word), "{word}");
    }
}

#[test]
fn a_ferry_issuer_is_the_broker_and_refuses_key_sources_of_its_own() {
    let ferry = "issuers:\n  broker:\n    kind: ferry\n";
    let set = PolicySet::from_sources(ferry, &[], Path::new("tp")).unwrap();
    let spec = &set.issuers()[0];
    assert_eq!(spec.kind, crate::issuer::IssuerKind::Ferry);
    assert_eq!(spec.keys, crate::issuer::KeySourceSpec::Broker);
    assert!(
        spec.require_jti,
        "each Ferry credential is exchanged at most once"
    );
    let fetching = format!("{ferry}    jwks_url: https://elsewhere.example/jwks\n");
    let errors = PolicySet::from_sources(&fetching, &[], Path::new("tp")).unwrap_err();
    let first = errors.0[0].to_string();
    assert!(
        first.starts_with("tp/issuers.yaml:4:15: `jwks_url` does not apply"),
        "{first}"
    );
}

#[test]
fn explain_shows_the_actor_rule_row_by_row() {
    let subject = token("corp", "alice", json!({}));
    let rows = |actor: &str| {
        let r = with_actor("read", agent(actor));
        let e = crate::exchange::explain(
            &r,
            &subject,
            &delegating(),
            &ctx(),
            NOW,
            crate::exchange::Candidates::Issuer(None),
        );
        let rows: Vec<(String, bool)> = e.policies[0]
            .conditions
            .iter()
            .filter(|c| c.path.starts_with("delegation"))
            .map(|c| (c.path.clone(), c.passed))
            .collect();
        (e.reason, rows)
    };
    let issuer = ("delegation.actors[0].issuer".to_string(), true);
    let depth = ("delegation.max_depth".to_string(), true);
    let subject_row = |passed| ("delegation.actors[0].subject".to_string(), passed);
    let (reason, ok) = rows("repo:acme/agents:bot");
    assert_eq!(reason, "granted");
    assert_eq!(ok, vec![issuer.clone(), subject_row(true), depth.clone()]);
    let (reason, bad) = rows("repo:evil/agents:bot");
    assert_eq!(reason, "actor_not_allowed");
    assert_eq!(bad, vec![issuer, subject_row(false), depth]);
}

#[test]
fn a_ferry_credential_only_narrows_whether_or_not_an_actor_comes_with_it() {
    let issuers = format!("{ISSUERS}  broker:\n    kind: ferry\n");
    let hop = DELEGATING.replace("issuer: corp", "issuer: broker");
    let policies = vec![("hop.yaml".to_string(), hop)];
    let set = PolicySet::from_sources(&issuers, &policies, Path::new("tp")).unwrap();
    let credential = |scope: &str| token("broker", "alice", json!({ "scope": scope }));
    let alone = req(Some("https://tickets"), "", None);
    let Decision::Allow(g) = decide(&alone, &credential("read admin"), &set, &ctx(), NOW) else {
        panic!("a Ferry credential may be exchanged again")
    };
    assert_eq!(
        g.scopes.to_scope_string(),
        "admin read",
        "never more than it carried"
    );
    let none_left = decide(&alone, &credential("other"), &set, &ctx(), NOW);
    assert_eq!(reason(none_left), DenyReason::DelegationScopeEmpty);
    let with_bot = with_actor("", agent("repo:acme/agents:bot"));
    let Decision::Allow(g) = decide(&with_bot, &credential("read admin"), &set, &ctx(), NOW) else {
        panic!("the agent may act")
    };
    assert_eq!(
        g.scopes.to_scope_string(),
        "read",
        "carried ∩ the actor's allowance"
    );
}

#[test]
fn the_subject_token_cannot_be_its_own_actor() {
    let subject = token("corp", "alice", json!({}));
    let mut actor = agent("repo:acme/agents:bot");
    let ok = decide(
        &with_actor("read", actor.clone()),
        &subject,
        &delegating(),
        &ctx(),
        NOW,
    );
    assert!(matches!(ok, Decision::Allow(_)), "control");
    actor.token_sha256 = subject.token_sha256.clone();
    let same = decide(
        &with_actor("read", actor),
        &subject,
        &delegating(),
        &ctx(),
        NOW,
    );
    assert_eq!(reason(same), DenyReason::ActorNotAllowed);
}

#[test]
fn a_guardrail_deny_rule_refuses_an_actor_it_covers_whoever_it_acts_for() {
    let guardrails = "deny:
  - description: the untrusted agent never acts
    issuer: github
    subject: { glob: 'repo:acme/agents:untrusted*' }
";
    let policies = vec![("tickets.yaml".to_string(), DELEGATING.to_string())];
    let s =
        PolicySet::from_sources_with_guardrails(ISSUERS, guardrails, &policies, Path::new("tp"))
            .unwrap_or_else(|e| panic!("{e}"));
    let subject = token("corp", "alice", json!({}));
    let run = |actor: &str| decide(&with_actor("read", agent(actor)), &subject, &s, &ctx(), NOW);

    match run("repo:acme/agents:triage") {
        Decision::Allow(g) => assert!(g.guardrails.is_empty(), "{:?}", g.guardrails),
        Decision::Deny(d) => panic!("control: another agent acts: {d:?}"),
    }
    let Decision::Deny(d) = run("repo:acme/agents:untrusted-1") else {
        panic!("the covered agent must be refused");
    };
    assert_eq!(d.reason, DenyReason::GuardrailDenied);
    let hit = &d.guardrails[0];
    assert_eq!(
        (hit.rule.as_str(), hit.effect, hit.matched_token, hit.line),
        ("deny[0]", "denied", Some("actor"), 2)
    );
    let trace = crate::cli::render::trace(
        &crate::exchange::explain(
            &with_actor("read", agent("repo:acme/agents:untrusted-1")),
            &subject,
            &s,
            &ctx(),
            NOW,
            crate::exchange::Candidates::Issuer(None),
        ),
        Path::new("tp"),
    );
    assert!(
        trace.contains("denied     deny[0] (the untrusted agent never acts) on the actor token  at tp/guardrails.yaml:2:5"),
        "{trace}"
    );
}
