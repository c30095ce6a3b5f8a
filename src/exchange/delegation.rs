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
use serde_json::{json, Map, Value};

use crate::domain::{ScopeSet, UnixSeconds};
use crate::issuer::IssuerKind;
use crate::policy::{
    condition_rows, first_failure, ActorRule, DelegationSpec, Policy, PolicySet, Pos,
};
use crate::verify::VerifiedToken;

use super::decision::{ConditionFailure, ConditionResult, DecideContext, DenyReason};

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
            None => Ok(None),
        };
    };
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
    let mut allowed = rule.scopes.clone();
    if facts.is_ferry_credential {
        let carried = subject
            .claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("");
        allowed = allowed.intersection(&ScopeSet::parse(carried).unwrap_or_default());
    }
    let granted = scopes.intersection(&allowed);
    if granted.is_empty() {
        let expected = format!("some of `{}`", allowed.to_scope_string());
        let actual = Some(Value::from(scopes.to_scope_string()));
        return Err(refuse(
            DenyReason::DelegationScopeEmpty,
            "delegation.actors.scopes",
            &expected,
            actual,
            rule.pos,
        ));
    }
    let scopes_refused = scopes.difference(&granted);
    *scopes = granted;
    for token in [subject, actor] {
        *ttl = (*ttl).min(u64::try_from(token.expires_at.saturating_sub(now)).unwrap_or(0));
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

fn refuse(
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

/// The chain a request presents, the new actor first, before any rule is applied: what the audit
/// event records for a denial too. A malformed `act` contributes nothing (it is refused anyway).
pub fn presented_chain(subject: &VerifiedToken, actor: &VerifiedToken) -> Vec<ChainLink> {
    let mut chain = vec![link_of(actor)];
    if let Some(prior) = subject.claims.get("act") {
        chain.extend(parse_chain(prior).unwrap_or_default());
    }
    chain
}

fn link_of(actor: &VerifiedToken) -> ChainLink {
    ChainLink {
        sub: actor.subject.clone(),
        iss: actor
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// The actor token must be meant for this broker, like a subject token without `audience:`.
fn check_actor_audience(actor: &VerifiedToken, ctx: &DecideContext) -> Result<(), Refusal> {
    let aud = ctx.broker_audience.as_str();
    if actor.audiences.iter().any(|a| a == aud) {
        return Ok(());
    }
    let expected = format!("{} (the broker's audience)", Value::from(aud));
    let actual = Some(Value::from(actor.audiences.clone()));
    Err(refuse(
        DenyReason::ActorNotAllowed,
        "actor.audience",
        &expected,
        actual,
        Pos::START,
    ))
}

/// The subject token's `act` chain, outermost first. Each level is an object with a string
/// `sub`; anything else is refused rather than guessed at.
fn parse_chain(prior: &Value) -> Result<Vec<ChainLink>, Refusal> {
    let mut links = Vec::new();
    let mut level = Some(prior);
    while let Some(v) = level {
        let sub = v.get("sub").and_then(Value::as_str);
        let (Some(obj), Some(sub)) = (v.as_object(), sub) else {
            return Err(refuse(
                DenyReason::ActChainInvalid,
                "act",
                "an RFC 8693 `act` object with a string `sub`",
                Some(prior.clone()),
                Pos::START,
            ));
        };
        if links.len() > crate::policy::MAX_DEPTH_LIMIT as usize {
            return Err(refuse(
                DenyReason::DelegationTooDeep,
                "act",
                "a shorter `act` chain",
                None,
                Pos::START,
            ));
        }
        let iss = obj.get("iss").and_then(Value::as_str).map(str::to_string);
        links.push(ChainLink {
            sub: sub.to_string(),
            iss,
        });
        level = obj.get("act");
    }
    Ok(links)
}

fn check_depth(spec: &DelegationSpec, depth: usize) -> Result<(), Refusal> {
    if depth <= spec.max_depth {
        return Ok(());
    }
    let expected = format!("at most {} actors in the `act` chain", spec.max_depth);
    Err(refuse(
        DenyReason::DelegationTooDeep,
        "delegation.max_depth",
        &expected,
        Some(Value::from(depth)),
        spec.pos,
    ))
}

/// RFC 8693 §4.4: every member of the subject's `may_act` must equal the actor token's claim
/// of the same name (typically `sub`, and `iss`). A `may_act` that is not an object matches
/// no actor.
fn check_may_act(subject: &VerifiedToken, actor: &VerifiedToken) -> Result<(), Refusal> {
    let Some(may_act) = subject.claims.get("may_act") else {
        return Ok(());
    };
    let subject = Value::from(actor.subject.as_str());
    let claim = |k: &str| match k {
        "sub" => Some(&subject),
        _ => actor.claims.get(k),
    };
    let holds = may_act
        .as_object()
        .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| claim(k) == Some(v)));
    if holds {
        return Ok(());
    }
    let actual = json!({ "sub": actor.subject, "iss": actor.claims.get("iss") });
    Err(refuse(
        DenyReason::MayActMismatch,
        "may_act",
        &may_act.to_string(),
        Some(actual),
        Pos::START,
    ))
}

/// The first rule for the actor's issuer whose conditions hold; the refusal points at the
/// first failing condition of the first rule for that issuer.
fn matching_rule<'a>(
    spec: &'a DelegationSpec,
    actor: &VerifiedToken,
) -> Result<&'a ActorRule, Refusal> {
    let mut first: Option<ConditionFailure> = None;
    for rule in spec.actors.iter().filter(|r| r.issuer == actor.issuer) {
        match first_failure(&rule.conditions, actor) {
            None => return Ok(rule),
            Some(f) => {
                first.get_or_insert(f);
            }
        }
    }
    let failure = first.unwrap_or_else(|| {
        let issuers: Vec<String> = spec.actors.iter().map(|r| r.issuer.to_string()).collect();
        refuse(
            DenyReason::ActorNotAllowed,
            "delegation.actors",
            &format!("an actor of issuer {}", issuers.join(" or ")),
            Some(Value::from(actor.issuer.to_string())),
            spec.pos,
        )
        .failure
    });
    Err(Refusal {
        reason: DenyReason::ActorNotAllowed,
        failure,
    })
}

/// Explain rows for the actor under `p` (`ferry policy explain`, audit traces): the actor rule
/// that matches, or else the first one, condition by condition.
pub(super) fn rows(
    p: &Policy,
    subject: &VerifiedToken,
    actor: &VerifiedToken,
) -> Vec<ConditionResult> {
    let Some(spec) = &p.delegation else {
        return vec![ConditionResult {
            path: "delegation".to_string(),
            line: Pos::START.line,
            column: Pos::START.column,
            passed: false,
            expected: "a `delegation:` block (an actor_token was sent)".to_string(),
            actual: Some(Value::from(actor.subject.as_str())),
        }];
    };
    let (i, rule) = match matching_rule(spec, actor) {
        Ok(r) => (
            spec.actors
                .iter()
                .position(|a| std::ptr::eq(a, r))
                .unwrap_or(0),
            r,
        ),
        Err(_) => match spec.actors.first() {
            Some(r) => (0, r),
            None => return Vec::new(),
        },
    };
    let mut out = vec![ConditionResult {
        path: format!("delegation.actors[{i}].issuer"),
        line: rule.pos.line,
        column: rule.pos.column,
        passed: rule.issuer == actor.issuer,
        expected: Value::from(rule.issuer.to_string()).to_string(),
        actual: Some(Value::from(actor.issuer.to_string())),
    }];
    out.extend(condition_rows(&rule.conditions, actor));
    let depth = presented_chain(subject, actor).len();
    out.push(ConditionResult {
        path: "delegation.max_depth".to_string(),
        line: spec.pos.line,
        column: spec.pos.column,
        passed: depth <= spec.max_depth,
        expected: format!("at most {} actors in the `act` chain", spec.max_depth),
        actual: Some(Value::from(depth)),
    });
    if let Some(may_act) = subject.claims.get("may_act") {
        out.push(ConditionResult {
            path: "may_act".to_string(),
            line: Pos::START.line,
            column: Pos::START.column,
            passed: check_may_act(subject, actor).is_ok(),
            expected: may_act.to_string(),
            actual: Some(json!({ "sub": actor.subject, "iss": actor.claims.get("iss") })),
        });
    }
    out
}
