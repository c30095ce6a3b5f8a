//! One policy file (POLICY.md "A trust policy") -> a compiled [`Policy`].
//!
//! Structure (unknown keys, duplicate keys, types) is checked by serde; meaning (issuer names,
//! matchers, scopes, ttl bounds, reserved claims) is checked here, collecting every problem.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::{IssuerName, PolicyName};

use super::compile::{self, Problem};
use super::error::LoadError;
use super::grant::{grant, GrantFile};
use super::model::{AnyOf, Condition, Group, Mode, Policy, Target};
use super::normalized;
use super::when::When;
use super::yaml::{self, Node, Pos, Yaml};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Ferry trust policy")]
pub(crate) struct PolicyFile {
    #[serde(rename = "description")]
    _description: Option<String>,
    /// A name from issuers.yaml.
    #[schemars(with = "String")]
    issuer: Spanned<String>,
    /// The token's `aud` must contain a match (default: the broker's own audience).
    #[schemars(with = "Option<super::schema::Expected>")]
    audience: Option<Node>,
    #[schemars(with = "Option<super::schema::Expected>")]
    subject: Option<Node>,
    #[schemars(with = "Option<super::schema::Claims>")]
    claims: Option<Node>,
    /// Normalised CI claims (`provider`, `repository_id`, `ref`, ...), same matchers as `claims`.
    #[schemars(with = "Option<super::schema::Normalized>")]
    normalized: Option<Node>,
    /// At least one group must hold; each group is AND.
    #[schemars(with = "Option<Vec<GroupFile>>")]
    any_of: Option<Spanned<Vec<Spanned<GroupFile>>>>,
    /// A CEL expression over `claims`, `normalized`, `request`, `issuer`; must be `true`.
    #[schemars(with = "Option<String>")]
    when: Option<Node>,
    grant: GrantFile,
    mode: Option<Mode>,
    /// Who may act for this policy's subjects (RFC 8693 `actor_token`); absent: nobody.
    #[schemars(with = "Option<super::delegation::DelegationFile>")]
    delegation: Option<Spanned<super::delegation::DelegationFile>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    #[schemars(with = "Option<super::schema::Expected>")]
    subject: Option<Node>,
    #[schemars(with = "Option<super::schema::Claims>")]
    claims: Option<Node>,
    #[schemars(with = "Option<super::schema::Normalized>")]
    normalized: Option<Node>,
}

/// Parses and compiles one policy; `issuers` are the names declared in `issuers.yaml`.
pub(crate) fn parse(
    name: PolicyName,
    rel: &Path,
    display: &Path,
    text: &str,
    issuers: &BTreeSet<IssuerName>,
) -> Result<Policy, Vec<LoadError>> {
    let f: PolicyFile = yaml::parse(display, text).map_err(|e| vec![e])?;
    let mut problems: Vec<Problem> = Vec::new();
    let when = f.when.as_ref().and_then(|n| when(n, &mut problems));
    let issuer = yaml::known_issuer(&f.issuer, issuers, &mut problems);
    let subject = f
        .subject
        .as_ref()
        .and_then(|n| top(n, Target::Subject, "subject", &mut problems));
    let audience = f
        .audience
        .as_ref()
        .and_then(|n| top(n, Target::Audience, "audience", &mut problems));
    let mut claims = Vec::new();
    if let Some(node) = &f.claims {
        compile::claims(node, "claims", &mut claims, &mut problems);
    }
    if let Some(node) = &f.normalized {
        normalized::conditions(node, "normalized", &mut claims, &mut problems);
    }
    let any_of = f
        .any_of
        .as_ref()
        .map(|groups| any_of(groups, &mut problems));
    let grant = grant(&f.grant, &mut problems);
    let delegation = f.delegation.as_ref().and_then(|d| {
        let granted = grant.as_ref().map(|g| &g.scopes);
        super::delegation::delegation(d, issuers, granted, &mut problems)
    });
    match (issuer, grant) {
        (Some(issuer), Some(grant)) if problems.is_empty() => Ok(Policy {
            name,
            file: rel.to_path_buf(),
            issuer,
            subject,
            audience,
            claims,
            any_of,
            when,
            grant,
            mode: f.mode.unwrap_or(Mode::Enforce),
            delegation,
        }),
        _ => Err(problems
            .into_iter()
            .map(|(pos, m)| LoadError::at(display, pos, m))
            .collect()),
    }
}

fn when(node: &Node, problems: &mut Vec<Problem>) -> Option<When> {
    let Yaml::String(source) = &node.value else {
        let msg = format!(
            "`when` takes a CEL expression as a string, found {}",
            node.value.kind()
        );
        problems.push((Pos::of(node), msg));
        return None;
    };
    When::compile(source, Pos::of(node))
        .map_err(|m| problems.push((Pos::of(node), m)))
        .ok()
}

fn top(node: &Node, target: Target, path: &str, problems: &mut Vec<Problem>) -> Option<Condition> {
    match compile::matcher(node) {
        Ok(matcher) => Some(Condition {
            target,
            path: path.to_string(),
            matcher,
            pos: Pos::of(node),
        }),
        Err(p) => {
            problems.push(p);
            None
        }
    }
}

fn any_of(groups: &Spanned<Vec<Spanned<GroupFile>>>, problems: &mut Vec<Problem>) -> AnyOf {
    if groups.value.is_empty() {
        problems.push((
            Pos::of(groups),
            "`any_of` needs at least one group".to_string(),
        ));
    }
    let mut out = Vec::new();
    for (i, g) in groups.value.iter().enumerate() {
        let mut conditions = Vec::new();
        if let Some(n) = &g.value.subject {
            let path = format!("any_of[{i}].subject");
            conditions.extend(top(n, Target::Subject, &path, problems));
        }
        if let Some(n) = &g.value.claims {
            compile::claims(n, &format!("any_of[{i}].claims"), &mut conditions, problems);
        }
        if let Some(n) = &g.value.normalized {
            let path = format!("any_of[{i}].normalized");
            normalized::conditions(n, &path, &mut conditions, problems);
        }
        if g.value.subject.is_none() && g.value.claims.is_none() && g.value.normalized.is_none() {
            problems.push((
                Pos::of(g),
                "an `any_of` group needs `claims`, `normalized` or `subject`".to_string(),
            ));
        }
        out.push(Group { conditions });
    }
    AnyOf {
        groups: out,
        pos: Pos::of(groups),
    }
}
