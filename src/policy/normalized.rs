//! `normalized:` blocks of a policy (README "Normalised claims"): the shared CI vocabulary of
//! `issuer::normalize`, matched with the same matchers as `claims:`. The mapping is flat: each
//! key must be a word of the vocabulary, so a typo is a load error rather than a condition that
//! can never hold.

use crate::issuer::normalize::NORMALIZED_KEYS;

use super::compile::{self, Problem};
use super::model::{Condition, Target};
use super::yaml::{Node, Pos, Yaml};

/// A `normalized:` mapping -> one condition per key, in file order. `prefix` is the trace path
/// of the mapping (`normalized`, `any_of[1].normalized`).
pub(crate) fn conditions(
    node: &Node,
    prefix: &str,
    out: &mut Vec<Condition>,
    problems: &mut Vec<Problem>,
) {
    let Yaml::Map(entries) = &node.value else {
        let msg = format!(
            "`{prefix}` maps normalised claim names to expected values, found {}",
            node.value.kind()
        );
        problems.push((Pos::of(node), msg));
        return;
    };
    for (key, value) in entries {
        let Some(&name) = NORMALIZED_KEYS.iter().find(|k| **k == key.value) else {
            let msg = format!(
                "`{}` is not a normalised claim; `{prefix}` takes {}",
                key.value,
                NORMALIZED_KEYS.map(|k| format!("`{k}`")).join(", ")
            );
            problems.push((Pos::of(key), msg));
            continue;
        };
        match compile::matcher(value) {
            Ok(matcher) => out.push(Condition {
                target: Target::Normalized(name),
                path: format!("{prefix}.{name}"),
                matcher,
                pos: Pos::of(value),
            }),
            Err(p) => problems.push(p),
        }
    }
}

/// How a `grant.claims` source names a normalised claim: `normalized.repository_id`.
const GRANT_SOURCE_PREFIX: &str = "normalized.";

/// A `grant.claims` source that starts with `normalized.` must name a vocabulary key.
pub(crate) fn check_grant_source(source: &str, pos: Pos, problems: &mut Vec<Problem>) {
    if let Some(key) = source.strip_prefix(GRANT_SOURCE_PREFIX) {
        if !NORMALIZED_KEYS.contains(&key) {
            let msg = format!(
                "`{source}`: `{key}` is not a normalised claim; write `normalized.` followed by \
                 one of {}",
                NORMALIZED_KEYS.map(|k| format!("`{k}`")).join(", ")
            );
            problems.push((pos, msg));
        }
    }
}

/// The value a `grant.claims` source copies: `normalized.KEY` from the normalised claims,
/// anything else from the token's top-level claims.
pub(crate) fn grant_source<'a>(
    token: &'a crate::verify::VerifiedToken,
    source: &str,
) -> Option<&'a serde_json::Value> {
    match source.strip_prefix(GRANT_SOURCE_PREFIX) {
        Some(key) => token.normalized.get(key),
        None => token.claims.get(source),
    }
}
