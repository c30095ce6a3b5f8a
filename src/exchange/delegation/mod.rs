//! Delegation inside `decide` (RFC 8693 §1.1, §4.1, §4.4): whether the actor of a request may act
//! for its subject under the policy that held, and what the credential then says. Pure, like
//! `decide`: no I/O, no clock (`now` is a parameter).
//!
//! Rules, in order, each refusing with its own [`DenyReason`]:
//! 1. A subject token that already carries `act` is only exchanged with an actor (otherwise the
//!    chain would be dropped, turning delegation into impersonation).
//! 2. An actor needs a `delegation:` block in the policy; the actor token must be addressed to
//!    the broker; the chain (the subject's `act`, plus the new actor) holds at most
//!    `max_depth` actors; a `may_act` claim in the subject token must match the actor.
//! 3. The first actor rule whose issuer, subject and claims match the actor token applies.
//! 4. Scopes = what the policy grants for the request ∩ the actor rule's `scopes` (∩ the
//!    subject credential's own `scope` when the subject token is a Ferry credential: scopes
//!    only narrow along a chain). Lifetime ≤ both tokens' remaining lives.
//! 5. The credential's `act` is `{sub, iss}` of the actor, with the subject's chain nested.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{ScopeSet, UnixSeconds};
use crate::issuer::IssuerKind;
use crate::policy::{ActorRule, Policy, PolicySet, Pos};
use crate::verify::VerifiedToken;

use super::decision::{ConditionFailure, DecideContext, DenyReason};

mod explain;
mod rules;

pub(super) use explain::rows;
pub use rules::presented_chain;
use rules::{
    check_actor_audience, check_depth, check_may_act, link_of, matching_rule, parse_chain,
};

/// A verified actor token, carried in [`super::Requested`]. Two are equal when they are the
/// same token (same SHA-256).
#[derive(Debug, Clone)]
pub struct ActorToken(pub Arc<VerifiedToken>);

impl PartialEq for ActorToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.token_sha256 == other.0.token_sha256
    }
}

impl Eq for ActorToken {}

/// One party of an `act` chain, as the audit event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// What a granted delegation adds to the grant.
#[derive(Debug, Clone, PartialEq)]
pub struct Delegation {
    /// The credential's `act` claim (RFC 8693 §4.1): the new actor outside, the old chain inside.
    pub act: Value,
    /// Every actor, outermost (the one acting now) first.
    pub chain: Vec<ChainLink>,
    /// Scopes the policy would have granted that the actor (or the chain) may not carry.
    pub scopes_refused: ScopeSet,
}

/// Why a delegation was refused, with the condition for the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: DenyReason,
    pub failure: ConditionFailure,
}

/// What the subject token says about its issuer that delegation needs.
pub(super) struct SubjectFacts<'a> {
    /// The subject token is one of this broker's credentials (a `ferry` issuer).
    is_ferry_credential: bool,
    ctx: &'a DecideContext,
    now: UnixSeconds,
}

impl<'a> SubjectFacts<'a> {
    pub fn of(
        set: &PolicySet,
        subject: &VerifiedToken,
        ctx: &'a DecideContext,
        now: UnixSeconds,
    ) -> Self {
        let is_ferry_credential = set
            .issuers()
            .iter()
            .any(|s| s.name == subject.issuer && s.kind == IssuerKind::Ferry);
        SubjectFacts {
            is_ferry_credential,
            ctx,
            now,
        }
    }
}

/// Applies `p`'s delegation rules; narrows `scopes` and `ttl` in place. `Ok(None)`: no actor.
pub(super) fn apply(
    p: &Policy,
    subject: &VerifiedToken,
    actor: Option<&VerifiedToken>,
    facts: &SubjectFacts<'_>,
    scopes: &mut ScopeSet,
    ttl: &mut u64,
) -> Result<Option<Delegation>, Refusal> {
    let now = facts.now;
    let prior = subject.claims.get("act");
    let Some(actor) = actor else {
        return match prior {
            Some(v) => Err(refuse(
                DenyReason::ActorRequired,
                "act",
                "an actor_token (the subject token is delegated)",
                Some(v.clone()),
                Pos::START,
            )),
            // Re-exchanging a Ferry credential alone: scopes still only narrow, and the new
            // credential cannot outlive the one presented (else re-exchanging it renews it for
            // ever, without the person's IdP being asked again).
            None => {
                if facts.is_ferry_credential {
                    bound_ttl(ttl, subject, now);
                }
                narrow(scopes, None, subject, facts).map(|_| None)
            }
        };
    };
    if actor.token_sha256 == subject.token_sha256 {
        let expected = "an actor token other than the subject token";
        return Err(refuse(
            DenyReason::ActorNotAllowed,
            "actor",
            expected,
            None,
            Pos::START,
        ));
    }
    if let Some(own) = actor.claims.get("act") {
        // An actor that is itself acting for someone: its chain would be lost (and escape
        // `max_depth`) under the subject's, so it is refused rather than flattened.
        return Err(refuse(
            DenyReason::ActorNotAllowed,
            "actor.act",
            "an actor token that does not itself act for anyone (no `act`)",
            Some(own.clone()),
            Pos::START,
        ));
    }
    let Some(spec) = &p.delegation else {
        return Err(refuse(
            DenyReason::DelegationNotAllowed,
            "delegation",
            "a `delegation:` block in the policy",
            None,
            Pos::START,
        ));
    };
    check_actor_audience(actor, facts.ctx)?;
    let mut chain = vec![link_of(actor)];
    if let Some(prior) = prior {
        chain.extend(parse_chain(prior)?);
    }
    check_depth(spec, chain.len())?;
    check_may_act(subject, actor)?;
    let rule = matching_rule(spec, actor)?;
    let scopes_refused = narrow(scopes, Some(rule), subject, facts)?;
    for token in [subject, actor] {
        bound_ttl(ttl, token, now);
    }
    let mut act = Map::new();
    act.insert("sub".into(), Value::from(actor.subject.as_str()));
    if let Some(iss) = actor.claims.get("iss") {
        act.insert("iss".into(), iss.clone());
    }
    if let Some(prior) = prior {
        act.insert("act".into(), prior.clone());
    }
    Ok(Some(Delegation {
        act: Value::Object(act),
        chain,
        scopes_refused,
    }))
}

/// Lowers `ttl` to what is left of `token`'s life.
fn bound_ttl(ttl: &mut u64, token: &VerifiedToken, now: UnixSeconds) {
    *ttl = (*ttl).min(u64::try_from(token.expires_at.saturating_sub(now)).unwrap_or(0));
}

/// Narrows `scopes` to the actor rule's allowance and, for a Ferry credential as subject, to its
/// own `scope` (scopes only narrow along a chain). Returns what was taken away; nothing left is
/// a refusal.
fn narrow(
    scopes: &mut ScopeSet,
    rule: Option<&ActorRule>,
    subject: &VerifiedToken,
    facts: &SubjectFacts<'_>,
) -> Result<ScopeSet, Refusal> {
    let mut allowed = rule.map_or_else(|| scopes.clone(), |r| r.scopes.clone());
    if facts.is_ferry_credential {
        let carried = subject.claims.get("scope").and_then(Value::as_str);
        let carried = ScopeSet::parse(carried.unwrap_or("")).unwrap_or_default();
        allowed = allowed.intersection(&carried);
    }
    let granted = scopes.intersection(&allowed);
    if granted.is_empty() {
        let expected = format!("some of `{}`", allowed.to_scope_string());
        let actual = Some(Value::from(scopes.to_scope_string()));
        let (path, pos) = match rule {
            Some(r) => ("delegation.actors.scopes", r.pos),
            None => ("scope", Pos::START),
        };
        return Err(refuse(
            DenyReason::DelegationScopeEmpty,
            path,
            &expected,
            actual,
            pos,
        ));
    }
    let refused = scopes.difference(&granted);
    *scopes = granted;
    Ok(refused)
}

pub(super) fn refuse(
    reason: DenyReason,
    path: &str,
    expected: &str,
    actual: Option<Value>,
    pos: Pos,
) -> Refusal {
    Refusal {
        reason,
        failure: ConditionFailure {
            path: path.to_string(),
            line: pos.line,
            column: pos.column,
            expected: expected.to_string(),
            actual,
        },
    }
}
