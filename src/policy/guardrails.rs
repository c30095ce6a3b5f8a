//! `guardrails.yaml` (POLICY.md "guardrails.yaml"): organisation-wide ceilings and deny rules that
//! every policy obeys, compiled like a policy file (strict YAML, every node's line and column).
//!
//! This module only parses and compiles; `exchange::guard` applies them inside the pure `decide`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::IssuerName;

use super::compile::{self, Problem};
use super::error::LoadError;
use super::matcher::Pattern;
use super::model::{Condition, Mode, Target};
use super::yaml::{self, Node, Pos};

pub(crate) const GUARDRAILS_FILE: &str = "guardrails.yaml";

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Ferry guardrails.yaml")]
pub(crate) struct GuardrailsFile {
    /// `enforce` (default) or `audit`: record would-be denials, deny nothing.
    mode: Option<Mode>,
    /// Issuer names (from issuers.yaml) whose tokens may be exchanged at all.
    #[schemars(with = "Option<Vec<String>>")]
    issuers_allowed: Option<Spanned<Vec<Spanned<String>>>>,
    /// The longest credential lifetime any policy may grant, e.g. `1h`.
    #[schemars(with = "Option<String>")]
    max_ttl: Option<Spanned<String>>,
    /// Scope globs: the most any policy may grant (the scope ceiling).
    #[schemars(with = "Option<Vec<String>>")]
    scopes_allowed: Option<Spanned<Vec<Spanned<String>>>>,
    /// Rules that win over every policy.
    #[serde(default)]
    #[schemars(with = "Vec<DenyRuleFile>")]
    deny: Vec<Spanned<DenyRuleFile>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenyRuleFile {
    /// Why the rule exists; shown in traces and audit events.
    #[schemars(with = "String")]
    description: Spanned<String>,
    /// Limit the rule to one issuer name.
    #[schemars(with = "Option<String>")]
    issuer: Option<Spanned<String>>,
    /// A matcher for the token's `sub`.
    #[schemars(with = "Option<super::schema::Expected>")]
    subject: Option<Node>,
    /// Claim name -> expected value or matcher, as in a policy.
    #[schemars(with = "Option<super::schema::Claims>")]
    claims: Option<Node>,
    /// Normalised CI claims, as in a policy (e.g. `{ trigger: ... }` on every provider).
    #[schemars(with = "Option<super::schema::Normalized>")]
    normalized: Option<Node>,
    /// Scope globs: the rule applies only to requests for a matching scope.
    #[schemars(with = "Option<Vec<String>>")]
    scopes: Option<Vec<Spanned<String>>>,
}

/// A value with the position it was written at, for traces.
#[derive(Debug, Clone)]
pub(crate) struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

/// One compiled `deny:` rule.
#[derive(Debug, Clone)]
pub(crate) struct DenyRule {
    pub description: String,
    pub pos: Pos,
    pub issuer: Option<IssuerName>,
    /// Every condition must hold for the rule to apply (subject and claims).
    pub conditions: Vec<Condition>,
    /// Empty: any request; else some granted scope must match one of these globs.
    pub scopes: Vec<Pattern>,
}

/// The compiled guardrails; [`Guardrails::default`] (no file) constrains nothing.
#[derive(Debug, Clone)]
pub(crate) struct Guardrails {
    /// Relative to the policy directory; empty when there is no file.
    pub file: PathBuf,
    pub mode: Mode,
    pub issuers_allowed: Option<Located<BTreeSet<IssuerName>>>,
    pub max_ttl: Option<Located<Duration>>,
    pub scopes_allowed: Option<Located<Vec<Pattern>>>,
    pub deny: Vec<DenyRule>,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            file: PathBuf::new(),
            mode: Mode::Enforce,
            issuers_allowed: None,
            max_ttl: None,
            scopes_allowed: None,
            deny: Vec::new(),
        }
    }
}

/// Parses `guardrails.yaml`; `known` are the issuer names of `issuers.yaml`.
pub(crate) fn parse(
    display: &Path,
    text: &str,
    known: &BTreeSet<IssuerName>,
) -> Result<Guardrails, Vec<LoadError>> {
    let f: GuardrailsFile = yaml::parse(display, text).map_err(|e| vec![e])?;
    let mut problems: Vec<Problem> = Vec::new();
    let issuers_allowed = f.issuers_allowed.as_ref().map(|list| Located {
        value: list
            .value
            .iter()
            .filter_map(|s| yaml::known_issuer(s, known, &mut problems))
            .collect(),
        pos: Pos::of(list),
    });
    let max_ttl = f.max_ttl.as_ref().and_then(|s| {
        let at_least_1s = Duration::from_secs(1)..=Duration::MAX;
        yaml::duration_in(s, "max_ttl", at_least_1s, "at least 1s", &mut problems).map(|value| {
            Located {
                value,
                pos: Pos::of(s),
            }
        })
    });
    let scopes_allowed = f.scopes_allowed.as_ref().map(|list| Located {
        value: globs(&list.value, &mut problems),
        pos: Pos::of(list),
    });
    let deny = f
        .deny
        .iter()
        .map(|r| deny_rule(r, known, &mut problems))
        .collect();
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|(pos, m)| LoadError::at(display, pos, m))
            .collect());
    }
    Ok(Guardrails {
        file: PathBuf::from(GUARDRAILS_FILE),
        mode: f.mode.unwrap_or(Mode::Enforce),
        issuers_allowed,
        max_ttl,
        scopes_allowed,
        deny,
    })
}

fn deny_rule(
    r: &Spanned<DenyRuleFile>,
    known: &BTreeSet<IssuerName>,
    problems: &mut Vec<Problem>,
) -> DenyRule {
    let rule = &r.value;
    let mut conditions = Vec::new();
    if let Some(n) = &rule.subject {
        match compile::matcher(n) {
            Ok(matcher) => conditions.push(Condition {
                target: Target::Subject,
                path: "subject".to_string(),
                matcher,
                pos: Pos::of(n),
            }),
            Err(p) => problems.push(p),
        }
    }
    if let Some(n) = &rule.claims {
        compile::claims(n, "claims", &mut conditions, problems);
    }
    if let Some(n) = &rule.normalized {
        super::normalized::conditions(n, "normalized", &mut conditions, problems);
    }
    let scopes = rule
        .scopes
        .as_deref()
        .map(|s| globs(s, problems))
        .unwrap_or_default();
    if rule.issuer.is_none() && conditions.is_empty() && scopes.is_empty() {
        problems.push((
            Pos::of(r),
            "a deny rule needs `issuer`, `subject`, `claims`, `normalized` or `scopes`; a rule with none \
             would deny every request"
                .to_string(),
        ));
    }
    DenyRule {
        description: rule.description.value.clone(),
        pos: Pos::of(r),
        issuer: rule
            .issuer
            .as_ref()
            .and_then(|s| yaml::known_issuer(s, known, problems)),
        conditions,
        scopes,
    }
}

fn globs(list: &[Spanned<String>], problems: &mut Vec<Problem>) -> Vec<Pattern> {
    list.iter()
        .filter_map(|s| {
            compile::glob(Pos::of(s), &s.value)
                .map_err(|p| problems.push(p))
                .ok()
        })
        .collect()
}
