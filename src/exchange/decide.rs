//! `decide`: the pure decision (POLICY.md "Choosing the policy", "Scopes and lifetime", "Modes").
//!
//! No I/O, no clock (`now` is a parameter), no async. Given the same inputs it always returns the
//! same [`Decision`]. Denial is the default: every path that does not find a holding `enforce`
//! policy ends in a [`Denial`] with a trace.

use serde_json::Map;

use crate::domain::{ScopeSet, UnixSeconds};
use crate::policy::{evaluate, Mode, Policy, PolicySet};
use crate::verify::VerifiedToken;

use super::decision::{
    DecideContext, Decision, Denial, DenyReason, Grant, GuardrailHit, Observation, PolicyTrace,
};
use super::delegation::{apply, SubjectFacts};
use super::guard::Guard;

use super::request::Requested;

/// Sets up to this size get a trace entry for every policy of the issuer on a denial, even those
/// the subject index ruled out; larger sets trace only the policies actually evaluated.
const FULL_TRACE_LIMIT: usize = 32;

/// Decides what `token` may have for `requested` under `policies`.
pub fn decide(
    requested: &Requested,
    token: &VerifiedToken,
    policies: &PolicySet,
    ctx: &DecideContext,
    now: UnixSeconds,
) -> Decision {
    // Guardrails first: an issuer the organisation does not allow never reaches a policy.
    let mut guard = Guard::new(policies.guardrails());
    if let Err(reason) = guard.issuer(token) {
        return deny(reason, Walk::with(guard.hits), requested.policy.clone());
    }
    // The actor's issuer obeys the same allowlist as the subject's.
    if let Some(actor) = &requested.actor {
        if let Err(reason) = guard.issuer(&actor.0) {
            return deny(reason, Walk::with(guard.hits), requested.policy.clone());
        }
    }
    let mut walk = match &requested.policy {
        Some(name) => {
            let Some(i) = policies
                .position(name)
                .filter(|&i| policies.policy(i).issuer == token.issuer)
            else {
                return deny(
                    DenyReason::UnknownPolicy,
                    Walk::with(guard.hits.clone()),
                    Some(name.clone()),
                );
            };
            let p = policies.policy(i);
            if requested
                .audience
                .as_ref()
                .is_some_and(|a| *a != p.grant.audience)
            {
                return deny(
                    DenyReason::AudienceNotServed,
                    Walk::with(guard.hits.clone()),
                    Some(name.clone()),
                );
            }
            walk([i].into_iter(), policies, requested, token, ctx, false)
        }
        None => match search(policies, requested, token, ctx) {
            Ok(walk) => walk,
            Err(reason) => return deny(reason, Walk::with(guard.hits.clone()), None),
        },
    };
    walk.guardrails = guard.hits;
    let named = requested.policy.clone();
    match walk.winner {
        Some(i) => grant(policies, i, requested, token, ctx, now, walk),
        None if !walk.covered_any => deny(DenyReason::ScopeNotAllowed, walk, named),
        None if walk.audit_held => deny(DenyReason::AuditOnly, walk, named),
        None => deny(DenyReason::ClaimMismatch, walk, named),
    }
}

/// Candidates for the token's issuer (narrowed by audience and exact subject via the index).
fn search(
    policies: &PolicySet,
    requested: &Requested,
    token: &VerifiedToken,
    ctx: &DecideContext,
) -> Result<Walk, DenyReason> {
    let issuer = policies
        .index()
        .issuer(&token.issuer)
        .ok_or(DenyReason::NoPolicy)?;
    let subjects = match &requested.audience {
        Some(aud) => issuer
            .by_audience
            .get(aud)
            .ok_or(DenyReason::AudienceNotServed)?,
        None => &issuer.all,
    };
    let candidates = subjects.candidates(&token.subject);
    let mut walk = walk(
        candidates.into_iter(),
        policies,
        requested,
        token,
        ctx,
        !subjects.has_audit,
    );
    if walk.trace.is_empty() && subjects.members.len() <= FULL_TRACE_LIMIT {
        // Nothing was evaluated because the index ruled every policy out by subject. In a small
        // set, evaluate them all anyway (same outcome) so the trace shows why each one failed.
        let all = subjects.members.iter().copied();
        walk = self::walk(all, policies, requested, token, ctx, true);
    }
    if !walk.covered_any {
        // The index skipped policies whose subject cannot match; if one of those covers the
        // scopes, the scopes were fine and the claims were not. Only this rare path scans.
        walk.covered_any = subjects
            .members
            .iter()
            .any(|&i| covers(policies.policy(i), &requested.scopes));
    }
    Ok(walk)
}

/// What evaluating the candidates found.
#[derive(Default)]
struct Walk {
    winner: Option<usize>,
    covered_any: bool,
    audit_held: bool,
    trace: Vec<PolicyTrace>,
    observations: Vec<Observation>,
    guardrails: Vec<GuardrailHit>,
}

impl Walk {
    fn with(guardrails: Vec<GuardrailHit>) -> Walk {
        Walk {
            guardrails,
            ..Walk::default()
        }
    }
}

fn walk(
    candidates: impl Iterator<Item = usize>,
    policies: &PolicySet,
    requested: &Requested,
    token: &VerifiedToken,
    ctx: &DecideContext,
    stop_at_winner: bool,
) -> Walk {
    let mut w = Walk::default();
    for i in candidates {
        let p = policies.policy(i);
        if !covers(p, &requested.scopes) {
            continue;
        }
        w.covered_any = true;
        if w.winner.is_some() && p.mode == Mode::Enforce {
            continue; // after the winner, only audit policies are still observed
        }
        let failed = evaluate(p, token, ctx, requested);
        let held = failed.is_none();
        if w.winner.is_none() {
            w.trace.push(PolicyTrace {
                policy: p.name.clone(),
                file: p.file_name(),
                failed: failed.clone(),
            });
        }
        match p.mode {
            Mode::Audit => {
                w.audit_held |= held;
                let would = if held { "allow" } else { "deny" };
                w.observations.push(Observation {
                    policy: p.name.clone(),
                    would,
                    failed,
                });
            }
            Mode::Enforce if held => {
                w.winner = Some(i);
                if stop_at_winner {
                    break;
                }
            }
            Mode::Enforce => {}
        }
    }
    w
}

fn covers(p: &Policy, requested: &ScopeSet) -> bool {
    requested.is_subset(&p.grant.scopes)
}

fn grant(
    policies: &PolicySet,
    i: usize,
    requested: &Requested,
    token: &VerifiedToken,
    ctx: &DecideContext,
    now: UnixSeconds,
    mut walk: Walk,
) -> Decision {
    let p = policies.policy(i);
    let explicit = !requested.scopes.is_empty();
    let mut scopes = if explicit {
        requested.scopes.clone()
    } else {
        p.grant.scopes.clone()
    };
    // Guardrail deny rules and the scope ceiling win over the policy that held.
    let actor = requested.actor.as_ref().map(|a| a.0.as_ref());
    let mut guard = Guard::new(policies.guardrails());
    let refused = guard.grant(token, actor, &mut scopes, explicit);
    walk.guardrails.append(&mut guard.hits);
    if let Err(reason) = refused {
        return deny(reason, walk, Some(p.name.clone()));
    }
    // Lifetime: the smallest of every bound, the guardrail ceiling included.
    let mut ttl = p.grant.ttl.as_secs();
    if let Some(asked) = requested.ttl {
        ttl = ttl.min(asked.as_secs());
    }
    if p.grant.ttl_bound_to_token {
        let remaining = u64::try_from(token.expires_at.saturating_sub(now)).unwrap_or(0);
        ttl = ttl.min(remaining);
    }
    guard.ttl(&mut ttl);
    walk.guardrails.append(&mut guard.hits);
    let facts = SubjectFacts::of(policies, token, ctx, now);
    let delegation = match apply(p, token, actor, &facts, &mut scopes, &mut ttl) {
        Ok(d) => d,
        Err(refusal) => {
            if let Some(t) = walk.trace.iter_mut().find(|t| t.policy == p.name) {
                t.failed = Some(refusal.failure);
            }
            return deny(refusal.reason, walk, Some(p.name.clone()));
        }
    };
    if ttl < 1 {
        return deny(DenyReason::LifetimeExhausted, walk, Some(p.name.clone()));
    }
    let mut claims = Map::new();
    for (name, source) in &p.grant.claims {
        if let Some(v) = crate::policy::grant_source(token, source) {
            claims.insert(name.clone(), v.clone());
        }
    }
    Decision::Allow(Grant {
        policy: p.name.clone(),
        policy_file: p.file_name(),
        audience: p.grant.audience.clone(),
        scopes,
        ttl_seconds: ttl,
        claims,
        observations: walk.observations,
        guardrails: walk.guardrails,
        delegation,
        credential: p.grant.credential,
        rate_limit: p.grant.rate_limit,
    })
}

fn deny(reason: DenyReason, walk: Walk, named: Option<crate::domain::PolicyName>) -> Decision {
    let policy = named.or_else(|| match walk.trace.as_slice() {
        [only] => Some(only.policy.clone()),
        _ => None,
    });
    Decision::Deny(Denial {
        reason,
        policy,
        trace: walk.trace,
        observations: walk.observations,
        guardrails: walk.guardrails,
    })
}
