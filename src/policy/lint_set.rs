//! Lints that look at the whole directory rather than one policy: `unused-issuer`,
//! `ttl-above-guardrail` and `shadowed-policy`. Codes are stable.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::issuer::IssuerSpec;

use super::error::Lint;
use super::guardrails::Guardrails;
use super::model::{Condition, Mode, Policy};
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
    out.extend(super::lint_spiffe::check(policies, issuers, base_dir));
    out
}

fn unused_issuers(
    policies: &[Policy],
    issuers: &[IssuerSpec],
    text: &str,
    base_dir: &Path,
) -> Vec<Lint> {
    let actors = policies
        .iter()
        .flat_map(|p| p.delegation.iter().flat_map(|d| d.actors.iter()))
        .map(|a| a.issuer.as_str());
    let used: BTreeSet<&str> = policies
        .iter()
        .map(|p| p.issuer.as_str())
        .chain(actors)
        .collect();
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
///
/// Runs on every load (10,000 policies included), so earlier policies are grouped by issuer,
/// grant audience and subject condition: only those with the same subject condition, or none,
/// can shadow a policy.
fn shadowed(policies: &[Policy], base_dir: &Path) -> Vec<Lint> {
    type Group<'a> = (&'a str, &'a str, Option<String>);
    let keys: Vec<BTreeSet<String>> = policies
        .iter()
        .map(|p| p.all_conditions().map(condition_key).collect())
        .collect();
    let mut groups: HashMap<Group, Vec<usize>> = HashMap::new();
    let mut out = Vec::new();
    for (j, later) in policies.iter().enumerate() {
        let group = |subject: Option<String>| {
            (
                later.issuer.as_str(),
                later.grant.audience.as_str(),
                subject,
            )
        };
        let subject = later.subject.as_ref().map(condition_key);
        let same = groups.get(&group(subject.clone())).into_iter().flatten();
        let open = match subject {
            Some(_) => groups.get(&group(None)).map(Vec::as_slice).unwrap_or(&[]),
            None => &[],
        };
        let winner = same
            .chain(open)
            .copied()
            .filter(|&i| always_wins(&policies[i], &keys[i], later, &keys[j]))
            .min();
        if let Some(i) = winner {
            let msg = format!(
                "policy `{}` can never win: `{}` comes first in file order, grants the same \
                 audience and at least these scopes, and holds whenever this one does",
                later.name, policies[i].name
            );
            let file = base_dir.join(&later.file);
            out.push(Lint::at(&file, Pos::START, "shadowed-policy", msg));
        }
        let key = later.subject.as_ref().map(condition_key);
        groups.entry(group(key)).or_default().push(j);
    }
    out
}

fn condition_key(c: &Condition) -> String {
    format!("{}={}", c.path, c.matcher)
}

fn always_wins(
    earlier: &Policy,
    earlier_keys: &BTreeSet<String>,
    later: &Policy,
    later_keys: &BTreeSet<String>,
) -> bool {
    earlier.mode == Mode::Enforce
        && later.grant.scopes.is_subset(&earlier.grant.scopes)
        && earlier.any_of.is_none()
        && earlier.when.is_none()
        && (earlier.audience.is_some() || later.audience.is_none())
        && earlier_keys.is_subset(later_keys)
}
