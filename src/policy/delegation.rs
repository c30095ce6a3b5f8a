//! `delegation:` of a policy file (RFC 8693 delegation, README "Agents acting for people") ->
//! a compiled [`DelegationSpec`]: which actors may act for the policy's subjects, the most each
//! may carry, and how long an `act` chain may grow.
//!
//! Without this block a policy refuses every `actor_token` (deny by default). The actor is
//! matched with the same matchers as a subject token (`issuer`, `subject`, `claims`); this
//! module only parses and compiles, `exchange::delegation` applies it inside the pure `decide`.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::{IssuerName, Scope, ScopeSet};

use super::compile::{self, Problem};
use super::model::{Condition, Target};
use super::yaml::{self, Node, Pos};

/// The longest `act` chain a policy may allow: deeper chains are unreviewable.
pub(crate) const MAX_DEPTH_LIMIT: u64 = 8;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelegationFile {
    /// Who may act for this policy's subjects; the first actor rule that matches applies.
    #[schemars(with = "Vec<ActorFile>")]
    actors: Spanned<Vec<Spanned<ActorFile>>>,
    /// The most actors an `act` chain may hold (1..=8, default 1: no re-delegation).
    #[schemars(with = "Option<u64>")]
    max_depth: Option<Spanned<u64>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActorFile {
    /// A name from issuers.yaml: the actor token's issuer.
    #[schemars(with = "String")]
    issuer: Spanned<String>,
    /// A matcher for the actor token's `sub`.
    #[schemars(with = "Option<super::schema::Expected>")]
    subject: Option<Node>,
    /// Claim name -> expected value or matcher, in the actor token.
    #[schemars(with = "Option<super::schema::Claims>")]
    claims: Option<Node>,
    /// The most this actor may carry for the subject; each must be in `grant.scopes`.
    #[schemars(with = "Vec<String>")]
    scopes: Spanned<Vec<Spanned<String>>>,
}

/// One compiled actor rule.
#[derive(Debug, Clone)]
pub(crate) struct ActorRule {
    pub issuer: IssuerName,
    /// Subject and claim conditions on the actor token, traced as `delegation.actors[N]...`.
    pub conditions: Vec<Condition>,
    /// Never empty; a subset of the policy's `grant.scopes`.
    pub scopes: ScopeSet,
    pub pos: Pos,
}

/// The compiled `delegation:` block.
#[derive(Debug, Clone)]
pub(crate) struct DelegationSpec {
    pub actors: Vec<ActorRule>,
    /// 1..=[`MAX_DEPTH_LIMIT`].
    pub max_depth: usize,
    pub pos: Pos,
}

/// Compiles `delegation:`; `granted` is the policy's `grant.scopes` (when it compiled).
pub(crate) fn delegation(
    d: &Spanned<DelegationFile>,
    issuers: &BTreeSet<IssuerName>,
    granted: Option<&ScopeSet>,
    problems: &mut Vec<Problem>,
) -> Option<DelegationSpec> {
    let before = problems.len();
    let f = &d.value;
    if f.actors.value.is_empty() {
        let msg = "`delegation.actors` needs at least one actor rule; remove `delegation:` to \
                   refuse every actor";
        problems.push((Pos::of(&f.actors), msg.to_string()));
    }
    let actors: Vec<ActorRule> = f
        .actors
        .value
        .iter()
        .enumerate()
        .filter_map(|(i, a)| actor(i, a, issuers, granted, problems))
        .collect();
    let max_depth = match &f.max_depth {
        None => 1,
        Some(n) if (1..=MAX_DEPTH_LIMIT).contains(&n.value) => n.value as usize,
        Some(n) => {
            let msg = format!(
                "`delegation.max_depth` must be between 1 and {MAX_DEPTH_LIMIT}, found {}",
                n.value
            );
            problems.push((Pos::of(n), msg));
            1
        }
    };
    (problems.len() == before).then(|| DelegationSpec {
        actors,
        max_depth,
        pos: Pos::of(d),
    })
}

fn actor(
    i: usize,
    a: &Spanned<ActorFile>,
    issuers: &BTreeSet<IssuerName>,
    granted: Option<&ScopeSet>,
    problems: &mut Vec<Problem>,
) -> Option<ActorRule> {
    let f = &a.value;
    let prefix = format!("delegation.actors[{i}]");
    let issuer = yaml::known_issuer(&f.issuer, issuers, problems);
    let mut conditions = Vec::new();
    if let Some(n) = &f.subject {
        match compile::matcher(n) {
            Ok(matcher) => conditions.push(Condition {
                target: Target::Subject,
                path: format!("{prefix}.subject"),
                matcher,
                pos: Pos::of(n),
            }),
            Err(p) => problems.push(p),
        }
    }
    if let Some(n) = &f.claims {
        compile::claims(n, &format!("{prefix}.claims"), &mut conditions, problems);
    }
    let scopes = actor_scopes(&f.scopes, &prefix, granted, problems);
    Some(ActorRule {
        issuer: issuer?,
        conditions,
        scopes,
        pos: Pos::of(a),
    })
}

fn actor_scopes(
    list: &Spanned<Vec<Spanned<String>>>,
    prefix: &str,
    granted: Option<&ScopeSet>,
    problems: &mut Vec<Problem>,
) -> ScopeSet {
    if list.value.is_empty() {
        let msg = format!("`{prefix}.scopes` must list at least one scope");
        problems.push((Pos::of(list), msg));
    }
    let mut scopes = ScopeSet::new();
    for s in &list.value {
        match s.value.parse::<Scope>() {
            Ok(scope) if granted.is_some_and(|g| !g.contains(&scope)) => {
                let msg = format!(
                    "scope `{}` is not in `grant.scopes`; an actor never carries more than the \
                     policy grants",
                    s.value
                );
                problems.push((Pos::of(s), msg));
            }
            Ok(scope) => scopes.insert(scope),
            Err(e) => problems.push((Pos::of(s), format!("invalid scope `{}`: {e}", s.value))),
        }
    }
    scopes
}
