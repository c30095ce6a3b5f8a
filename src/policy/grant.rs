//! `grant:` of a policy file (POLICY.md "A trust policy") -> [`GrantSpec`]: scopes, lifetime
//! bounds, credential kind, and the claims copied into the credential (never reserved ones).

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::{Audience, Scope, ScopeSet};

use super::compile::Problem;
use super::lifecycle;
use super::model::GrantSpec;
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
pub(super) struct GrantFile {
    /// `aud` of the minted credential.
    #[schemars(with = "String")]
    audience: Audience,
    /// The most a request may get.
    #[schemars(with = "Vec<String>")]
    scopes: Spanned<Vec<Spanned<String>>>,
    /// The longest lifetime, e.g. `15m` (1s..24h).
    #[schemars(with = "String")]
    ttl: Spanned<String>,
    /// `jwt` (default) or `opaque`.
    #[schemars(with = "Option<String>")]
    credential: Option<Spanned<String>>,
    /// At most this many exchanges per subject, e.g. `60/min` (GCRA, shared by replicas).
    #[schemars(with = "Option<String>")]
    rate_limit: Option<Spanned<String>>,
    /// Credential claim name -> source claim name (`normalized.KEY` for a normalised claim).
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    claims: Option<Node>,
    ttl_bound_to_token: Option<bool>,
}

pub(super) fn grant(g: &GrantFile, problems: &mut Vec<Problem>) -> Option<GrantSpec> {
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
    let credential = g
        .credential
        .as_ref()
        .and_then(|c| lifecycle::credential_kind(c, problems))
        .unwrap_or_default();
    let rate_limit = g
        .rate_limit
        .as_ref()
        .and_then(|r| lifecycle::rate_limit(r, problems));
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
        credential,
        rate_limit,
    })
}

fn ttl(s: &Spanned<String>, problems: &mut Vec<Problem>) -> Option<Duration> {
    yaml::duration_in(
        s,
        "grant.ttl",
        MIN_TTL..=MAX_TTL,
        "between 1s and 24h",
        problems,
    )
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
            Yaml::String(src) => {
                super::normalized::check_grant_source(src, Pos::of(value), problems);
                out.push((key.value.clone(), src.clone()));
            }
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
