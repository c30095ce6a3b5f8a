//! The full decision trace: `decide`'s outcome plus, for each candidate policy, every condition
//! with pass/fail, expected and actual, and the guardrail rules that applied. Pure.
//!
//! `decide` stops at the first failing condition to stay cheap on the allow path; this second
//! pass evaluates everything and runs only where a person will read it: `ferry policy explain`,
//! `ferry policy test` failures, and the audit event of a denied exchange.

use serde::Serialize;

use crate::domain::{PolicyName, UnixSeconds};
use crate::policy::{evaluate_all, Mode, PolicySet};
use crate::verify::VerifiedToken;

use super::decision::{ConditionResult, DecideContext, Decision, GuardrailHit};
use super::{decide, Requested};

/// What `ferry policy explain --json` prints and a denial's audit event holds in `trace`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// `granted`, or the stable denial code.
    pub reason: &'static str,
    /// The winning policy, or the one a denial is about.
    pub policy: Option<PolicyName>,
    pub policy_set_version: String,
    pub policies: Vec<PolicyExplain>,
    pub guardrails: Vec<GuardrailHit>,
    /// Scopes and lifetime granted, when allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted: Option<Granted>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Granted {
    pub audience: String,
    pub scopes: String,
    pub ttl_seconds: u64,
}

/// One candidate policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyExplain {
    pub policy: PolicyName,
    pub file: String,
    /// `enforce` or `audit`.
    pub mode: &'static str,
    /// Why the policy was not a candidate for this request (audience or scopes), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Every condition held.
    pub holds: bool,
    pub conditions: Vec<ConditionResult>,
}

/// Which policies to trace.
pub enum Candidates<'a> {
    /// Every policy of the token's issuer (optionally only one, by name).
    Issuer(Option<&'a PolicyName>),
    /// These policies (a denial's trace: the ones `decide` actually evaluated).
    Named(Vec<PolicyName>),
}

/// Decides and explains in one call.
pub fn explain(
    requested: &Requested,
    token: &VerifiedToken,
    set: &PolicySet,
    ctx: &DecideContext,
    now: UnixSeconds,
    candidates: Candidates,
) -> Explanation {
    let decision = decide(requested, token, set, ctx, now);
    explain_decision(&decision, requested, token, set, ctx, candidates)
}

/// What an audit event keeps in `trace`: for a denial, the full trace of the policies `decide`
/// evaluated (so an operator can explain a production denial from the record alone); for a
/// grant watched by `mode: audit` policies, theirs; otherwise nothing, so the plain allow path
/// stays as cheap as `decide`.
pub fn audit_trace(
    decision: &Decision,
    requested: &Requested,
    token: &VerifiedToken,
    set: &PolicySet,
    ctx: &DecideContext,
) -> Option<serde_json::Value> {
    let names: Vec<PolicyName> = match decision {
        Decision::Deny(d) => d.trace.iter().map(|t| t.policy.clone()).collect(),
        Decision::Allow(g) if !g.observations.is_empty() => {
            g.observations.iter().map(|o| o.policy.clone()).collect()
        }
        Decision::Allow(_) => return None,
    };
    let e = explain_decision(
        decision,
        requested,
        token,
        set,
        ctx,
        Candidates::Named(names),
    );
    serde_json::to_value(e).ok()
}

/// The trace behind a decision already made.
pub fn explain_decision(
    decision: &Decision,
    requested: &Requested,
    token: &VerifiedToken,
    set: &PolicySet,
    ctx: &DecideContext,
    candidates: Candidates,
) -> Explanation {
    let indices: Vec<usize> = match &candidates {
        Candidates::Issuer(only) => (0..set.len())
            .filter(|&i| set.policy(i).issuer == token.issuer)
            .filter(|&i| only.is_none_or(|n| *n == set.policy(i).name))
            .collect(),
        Candidates::Named(names) => names.iter().filter_map(|n| set.position(n)).collect(),
    };
    let policies = indices
        .into_iter()
        .map(|i| policy(set, i, requested, token, ctx))
        .collect();
    let (decision, reason, policy, guardrails, granted) = match decision {
        Decision::Allow(g) => (
            "allow",
            "granted",
            Some(g.policy.clone()),
            g.guardrails.clone(),
            Some(Granted {
                audience: g.audience.to_string(),
                scopes: g.scopes.to_scope_string(),
                ttl_seconds: g.ttl_seconds,
            }),
        ),
        Decision::Deny(d) => (
            "deny",
            d.reason.code(),
            d.policy.clone(),
            d.guardrails.clone(),
            None,
        ),
    };
    Explanation {
        decision,
        reason,
        policy,
        policy_set_version: set.version().to_string(),
        policies,
        guardrails,
        granted,
    }
}

fn policy(
    set: &PolicySet,
    i: usize,
    requested: &Requested,
    token: &VerifiedToken,
    ctx: &DecideContext,
) -> PolicyExplain {
    let p = set.policy(i);
    let skipped = match &requested.audience {
        Some(a) if *a != p.grant.audience => Some(format!(
            "grants audience {}, the request asks for {a}",
            p.grant.audience
        )),
        _ if !requested.scopes.is_subset(&p.grant.scopes) => Some(format!(
            "grants scopes `{}`, the request asks for `{}`",
            p.grant.scopes.to_scope_string(),
            requested.scopes.to_scope_string()
        )),
        _ => None,
    };
    let mut conditions = evaluate_all(p, token, ctx, requested);
    if let Some(actor) = &requested.actor {
        conditions.extend(super::delegation::rows(p, token, &actor.0));
    }
    PolicyExplain {
        policy: p.name.clone(),
        file: p.file_name(),
        mode: match p.mode {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        },
        skipped,
        holds: conditions.iter().all(|c| c.passed),
        conditions,
    }
}
