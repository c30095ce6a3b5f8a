//! The checks behind [`super::apply`]: the presented `act` chain and its depth, the actor
//! token's audience, `may_act`, and the matching actor rule. Pure.

use serde_json::{json, Value};

use super::{refuse, ChainLink, Refusal};
use crate::exchange::decision::{ConditionFailure, DecideContext, DenyReason};
use crate::policy::{first_failure, ActorRule, DelegationSpec, Pos};
use crate::verify::VerifiedToken;
/// The chain a request presents, the new actor first, before any rule is applied: what the audit
/// event records for a denial too. A malformed `act` contributes nothing (it is refused anyway).
pub fn presented_chain(subject: &VerifiedToken, actor: &VerifiedToken) -> Vec<ChainLink> {
    let mut chain = vec![link_of(actor)];
    if let Some(prior) = subject.claims.get("act") {
        chain.extend(parse_chain(prior).unwrap_or_default());
    }
    chain
}

pub(super) fn link_of(actor: &VerifiedToken) -> ChainLink {
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
pub(super) fn check_actor_audience(
    actor: &VerifiedToken,
    ctx: &DecideContext,
) -> Result<(), Refusal> {
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
pub(super) fn parse_chain(prior: &Value) -> Result<Vec<ChainLink>, Refusal> {
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

pub(super) fn check_depth(spec: &DelegationSpec, depth: usize) -> Result<(), Refusal> {
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
pub(super) fn check_may_act(subject: &VerifiedToken, actor: &VerifiedToken) -> Result<(), Refusal> {
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
pub(super) fn matching_rule<'a>(
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
