//! One policy file (POLICY.md "A trust policy") -> a compiled [`Policy`].
//!
//! Structure (unknown keys, duplicate keys, types) is checked by serde; meaning (issuer names,
//! matchers, scopes, ttl bounds, reserved claims) is checked here, collecting every problem.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::{Audience, IssuerName, PolicyName, Scope, ScopeSet};

use super::compile::{self, Problem};
use super::error::LoadError;
use super::model::{AnyOf, Condition, GrantSpec, Group, Mode, Policy, Target};
use super::when::When;
use super::yaml::{self, Node, Pos, Yaml};

/// Claims Ferry sets itself in a credential; `grant.claims` may not overwrite them.
const RESERVED_CLAIMS: [&str; 16] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "client_id",
    "act",
    "may_act",
    "cnf",
    "ferry",
    "typ",
    "azp",
    "auth_time",
];
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

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
    /// At least one group must hold; each group is AND.
    #[schemars(with = "Option<Vec<GroupFile>>")]
    any_of: Option<Spanned<Vec<Spanned<GroupFile>>>>,
    /// A CEL expression over `claims`, `normalized`, `request`, `issuer`; must be `true`.
    #[schemars(with = "Option<String>")]
    when: Option<Node>,
    grant: GrantFile,
    mode: Option<Mode>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    #[schemars(with = "Option<super::schema::Expected>")]
    subject: Option<Node>,
    #[schemars(with = "Option<super::schema::Claims>")]
    claims: Option<Node>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct GrantFile {
    /// `aud` of the minted credential.
    #[schemars(with = "String")]
    audience: Audience,
    /// The most a request may get.
    #[schemars(with = "Vec<String>")]
    scopes: Spanned<Vec<Spanned<String>>>,
    /// The longest lifetime, e.g. `15m` (1s..24h).
    #[schemars(with = "String")]
    ttl: Spanned<String>,
    /// `jwt` (default).
    #[schemars(with = "Option<String>")]
    credential: Option<Spanned<String>>,
    /// Credential claim name -> source claim name.
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    claims: Option<Node>,
    ttl_bound_to_token: Option<bool>,
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
    let issuer = issuer(&f.issuer, issuers, &mut problems);
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
    let any_of = f
        .any_of
        .as_ref()
        .map(|groups| any_of(groups, &mut problems));
    let grant = grant(&f.grant, &mut problems);
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

fn issuer(
    s: &Spanned<String>,
    known: &BTreeSet<IssuerName>,
    problems: &mut Vec<Problem>,
) -> Option<IssuerName> {
    match s.value.parse::<IssuerName>() {
        Ok(name) if known.contains(&name) => Some(name),
        _ => {
            let names: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
            let msg = format!(
                "unknown issuer `{}`, expected one of the names in issuers.yaml: {}",
                s.value,
                if names.is_empty() {
                    "(none declared)".to_string()
                } else {
                    names.join(", ")
                }
            );
            problems.push((Pos::of(s), msg));
            None
        }
    }
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
        if g.value.subject.is_none() && g.value.claims.is_none() {
            problems.push((
                Pos::of(g),
                "an `any_of` group needs `claims` or `subject`".to_string(),
            ));
        }
        out.push(Group { conditions });
    }
    AnyOf {
        groups: out,
        pos: Pos::of(groups),
    }
}

fn grant(g: &GrantFile, problems: &mut Vec<Problem>) -> Option<GrantSpec> {
    let before = problems.len();
    let mut scopes = ScopeSet::new();
    if g.scopes.value.is_empty() {
        problems.push((
            Pos::of(&g.scopes),
            "`grant.scopes` must list at least one scope".to_string(),
        ));
    }
    for s in &g.scopes.value {
        match s.value.parse::<Scope>() {
            Ok(scope) => scopes.insert(scope),
            Err(e) => problems.push((Pos::of(s), format!("invalid scope `{}`: {e}", s.value))),
        }
    }
    let ttl = ttl(&g.ttl, problems);
    if let Some(c) = &g.credential {
        match c.value.as_str() {
            "jwt" => {}
            "opaque" => problems.push((
                Pos::of(c),
                "`credential: opaque` is not supported yet (only `jwt`)".to_string(),
            )),
            other => problems.push((
                Pos::of(c),
                format!("unknown credential `{other}`, expected `jwt` or `opaque`"),
            )),
        }
    }
    let claims = g
        .claims
        .as_ref()
        .map(|n| grant_claims(n, problems))
        .unwrap_or_default();
    (problems.len() == before).then(|| GrantSpec {
        audience: g.audience.clone(),
        scopes,
        ttl: ttl.unwrap_or(MIN_TTL),
        ttl_pos: Pos::of(&g.ttl),
        claims,
        ttl_bound_to_token: g.ttl_bound_to_token.unwrap_or(false),
    })
}

fn ttl(s: &Spanned<String>, problems: &mut Vec<Problem>) -> Option<Duration> {
    match humantime::parse_duration(&s.value) {
        Ok(d) if (MIN_TTL..=MAX_TTL).contains(&d) => Some(d),
        Ok(_) => {
            problems.push((
                Pos::of(s),
                format!(
                    "`grant.ttl` must be between 1s and 24h, found `{}`",
                    s.value
                ),
            ));
            None
        }
        Err(e) => {
            problems.push((
                Pos::of(s),
                format!("invalid duration `{}`: {e} (write e.g. `15m`)", s.value),
            ));
            None
        }
    }
}

fn grant_claims(node: &Node, problems: &mut Vec<Problem>) -> Vec<(String, String)> {
    let Yaml::Map(entries) = &node.value else {
        let msg = format!(
            "`grant.claims` maps credential claim names to source claim names, found {}",
            node.value.kind()
        );
        problems.push((Pos::of(node), msg));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in entries {
        if RESERVED_CLAIMS.contains(&key.value.as_str()) {
            let msg = format!(
                "`{}` is a reserved claim that Ferry sets itself; choose another name",
                key.value
            );
            problems.push((Pos::of(key), msg));
            continue;
        }
        match &value.value {
            Yaml::String(src) => out.push((key.value.clone(), src.clone())),
            other => problems.push((
                Pos::of(value),
                format!(
                    "expected the name of a claim in the subject token, found {}",
                    other.kind()
                ),
            )),
        }
    }
    out
}
