//! Lints that look at the whole directory rather than one policy: `unused-issuer`,
//! `ttl-above-guardrail` and `shadowed-policy`. Codes are stable.

use std::collections::BTreeSet;
use std::path::Path;

use crate::issuer::IssuerSpec;

use super::error::Lint;
use super::guardrails::Guardrails;
use super::model::{Mode, Policy};
use super::yaml::Pos;

/// Every set-level lint, in a stable order.
pub(crate) fn check(
    policies: &[Policy],
    issuers: &[IssuerSpec],
    issuers_text: &str,
    guardrails: &Guardrails,
    base_dir: &Path,
) -> Vec<Lint> {
    let mut out = unused_issuers(policies, issuers, issuers_text, base_dir);
    out.extend(ttl_above_guardrail(policies, guardrails, base_dir));
    out.extend(shadowed(policies, base_dir));
    out
}

fn unused_issuers(
    policies: &[Policy],
    issuers: &[IssuerSpec],
    text: &str,
    base_dir: &Path,
) -> Vec<Lint> {
    let used: BTreeSet<&str> = policies.iter().map(|p| p.issuer.as_str()).collect();
    issuers
        .iter()
        .filter(|i| !used.contains(i.name.as_str()))
        .map(|i| {
            let msg = format!(
                "issuer `{}` is trusted but no policy uses it; remove it so its keys are \
                 never fetched",
                i.name
            );
            let pos = key_position(text, i.name.as_str());
            Lint::at(&base_dir.join("issuers.yaml"), pos, "unused-issuer", msg)
        })
        .collect()
}

/// The line where `name:` is written as a mapping key (the loader keeps no span for it).
fn key_position(text: &str, name: &str) -> Pos {
    text.lines()
        .enumerate()
        .find_map(|(i, line)| {
            let trimmed = line.trim_start();
            let rest = trimmed.strip_prefix(name)?;
            rest.starts_with(':').then(|| Pos {
                line: i as u64 + 1,
                column: (line.len() - trimmed.len()) as u64 + 1,
            })
        })
        .unwrap_or(Pos::START)
}

fn ttl_above_guardrail(policies: &[Policy], g: &Guardrails, base_dir: &Path) -> Vec<Lint> {
    let Some(max) = &g.max_ttl else {
        return Vec::new();
    };
    policies
        .iter()
        .filter(|p| p.grant.ttl > max.value)
        .map(|p| {
            let msg = format!(
                "`grant.ttl` is {}, above the guardrail `max_ttl` of {}; credentials get {}",
                humantime::format_duration(p.grant.ttl),
                humantime::format_duration(max.value),
                humantime::format_duration(max.value)
            );
            Lint::at(
                &base_dir.join(&p.file),
                p.grant.ttl_pos,
                "ttl-above-guardrail",
                msg,
            )
        })
        .collect()
}

/// A later policy is shadowed when an earlier enforcing one for the same issuer and grant
/// audience grants at least its scopes and checks only conditions the later one checks too:
/// whenever the later policy holds, the earlier one holds first and wins.
fn shadowed(policies: &[Policy], base_dir: &Path) -> Vec<Lint> {
    let mut out = Vec::new();
    for (j, later) in policies.iter().enumerate() {
        let winner = policies[..j]
            .iter()
            .find(|earlier| always_wins(earlier, later));
        if let Some(earlier) = winner {
            let msg = format!(
                "policy `{}` can never win: `{}` comes first in file order, grants the same \
                 audience and at least these scopes, and holds whenever this one does",
                later.name, earlier.name
            );
            out.push(Lint::at(
                &base_dir.join(&later.file),
                Pos::START,
                "shadowed-policy",
                msg,
            ));
        }
    }
    out
}

fn always_wins(earlier: &Policy, later: &Policy) -> bool {
    let key = |c: &super::model::Condition| format!("{}={}", c.path, c.matcher);
    let later_conditions: BTreeSet<String> = later.all_conditions().map(key).collect();
    earlier.mode == Mode::Enforce
        && earlier.issuer == later.issuer
        && earlier.grant.audience == later.grant.audience
        && later.grant.scopes.is_subset(&earlier.grant.scopes)
        && earlier.any_of.is_none()
        && earlier.when.is_none()
        && (earlier.audience.is_some() || later.audience.is_none())
        && earlier
            .all_conditions()
            .all(|c| later_conditions.contains(&key(c)))
}
