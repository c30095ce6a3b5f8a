//! Lints: patterns that load but are probably wider than their author meant (POLICY.md
//! "Matchers"). Codes are stable: `wide-glob`, `subject-any`, `missing-audience`,
//! `regex-crosses-segment`, `actor-any`; the per-provider ones (`github-no-numeric-id`, ...) are
//! in `lint_provider`, the set-level ones in `lint_set`.

use std::path::Path;

use crate::issuer::IssuerKind;

use super::error::Lint;
use super::matcher::Matcher;
use super::model::{Condition, Policy, Target};

/// Regexes that match any subject.
const ANY_REGEXES: [&str; 6] = [".*", ".+", "(?s).*", "(?s).+", "(?s:.*)", "(?s:.+)"];

pub(crate) fn check(p: &Policy, kind: IssuerKind, file: &Path) -> Vec<Lint> {
    let mut out = Vec::new();
    if p.audience.is_none() {
        let msg = "no `audience:`: the policy accepts any token addressed to the broker's \
                   default audience, which changes with the broker's URL; pin `audience:`"
            .to_string();
        out.push(Lint::at(
            file,
            super::yaml::Pos::START,
            "missing-audience",
            msg,
        ));
    }
    for c in p.all_conditions() {
        wide_globs(c, &c.matcher, file, &mut out);
        crossing_regexes(c, &c.matcher, file, &mut out);
        if c.target == Target::Subject && matches_anything(&c.matcher) {
            let msg = format!(
                "`{}` matches every subject of the issuer; pin the subject",
                c.path
            );
            out.push(Lint::at(file, c.pos, "subject-any", msg));
        }
    }
    out.extend(super::lint_provider::check(p, kind, file));
    out.extend(actor_lints(p, file));
    out
}

/// `delegation.actors`: the same pattern lints as a policy's own conditions, and `actor-any`
/// for a rule that lets any subject of its issuer act for the policy's subjects.
fn actor_lints(p: &Policy, file: &Path) -> Vec<Lint> {
    let mut out = Vec::new();
    for (i, rule) in p
        .delegation
        .iter()
        .flat_map(|d| d.actors.iter())
        .enumerate()
    {
        for c in &rule.conditions {
            wide_globs(c, &c.matcher, file, &mut out);
            crossing_regexes(c, &c.matcher, file, &mut out);
        }
        let subject = rule.conditions.iter().find(|c| c.target == Target::Subject);
        if subject.is_none_or(|c| matches_anything(&c.matcher)) {
            let msg = format!(
                "`delegation.actors[{i}]` lets every subject of issuer `{}` act for this                  policy's subjects; pin the actor's `subject`",
                rule.issuer
            );
            out.push(Lint::at(file, rule.pos, "actor-any", msg));
        }
    }
    out
}

/// Globs under `any_of` and `contains` widen what is allowed; under `not` they only widen a
/// denial, so they are left alone.
fn wide_globs(c: &Condition, m: &Matcher, file: &Path, out: &mut Vec<Lint>) {
    match m {
        Matcher::Glob(p) => {
            if let Some(better) = narrower_glob(&p.source) {
                let msg = format!(
                    "glob `{}` in `{}` is wider than it looks: `*` right after a name also matches \
                     longer names (e.g. `{}-evil/...`); did you mean `{better}`?",
                    p.source,
                    c.path,
                    p.source.split('*').next().unwrap_or_default()
                );
                out.push(Lint::at(file, c.pos, "wide-glob", msg));
            }
        }
        Matcher::AnyOf(ms) => ms.iter().for_each(|m| wide_globs(c, m, file, out)),
        Matcher::Contains(m) => wide_globs(c, m, file, out),
        _ => {}
    }
}

/// A regex over a `/`-separated value whose `.*` / `.+` can swallow more than one segment
/// (`acme/.*/deploy.yml` also matches `acme/x/y/deploy.yml`).
fn crossing_regexes(c: &Condition, m: &Matcher, file: &Path, out: &mut Vec<Lint>) {
    match m {
        Matcher::Regex(p) if p.source.contains('/') => {
            let Some(dot) = [".*", ".+"].into_iter().find(|d| p.source.contains(d)) else {
                return;
            };
            let better = if dot == ".*" { "[^/]*" } else { "[^/]+" };
            let msg = format!(
                "regex `{}` in `{}`: `{dot}` also matches `/`, so it can span several path \
                 segments; write `{better}` where one segment is meant",
                p.source, c.path
            );
            out.push(Lint::at(file, c.pos, "regex-crosses-segment", msg));
        }
        Matcher::AnyOf(ms) => ms.iter().for_each(|m| crossing_regexes(c, m, file, out)),
        Matcher::Contains(m) => crossing_regexes(c, m, file, out),
        _ => {}
    }
}

/// When a `*` directly follows a name character, the same glob with a `/` delimiter there.
fn narrower_glob(glob: &str) -> Option<String> {
    let star = glob.char_indices().find(|&(i, c)| {
        c == '*'
            && glob[..i]
                .chars()
                .next_back()
                .is_some_and(|p| p.is_alphanumeric() || p == '_')
    })?;
    Some(format!("{}/{}", &glob[..star.0], &glob[star.0..]))
}

fn matches_anything(m: &Matcher) -> bool {
    match m {
        Matcher::Glob(p) => !p.source.is_empty() && p.source.chars().all(|c| c == '*'),
        Matcher::Regex(p) => ANY_REGEXES.contains(&p.source.as_str()),
        _ => false,
    }
}
