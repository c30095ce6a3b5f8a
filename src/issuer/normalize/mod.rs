//! The normalised claims vocabulary: one set of keys shared by every CI provider, so one policy
//! can say "repository 123 on main, any CI" (README "Normalised claims", docs/normalized-claims.md).
//!
//! Pure: a verified payload and the issuer's configured kind in, a map of the vocabulary's keys
//! out. The mapping is chosen by the kind written in `issuers.yaml`, never by anything in the
//! token. Each provider has one small module of the same shape (`github`, `gitlab`, `buildkite`,
//! `circleci`); `kubernetes` and `oidc` give only `provider`. A key the provider does not send is
//! absent (so it fails every matcher but `{ exists: false }`), never an empty string. Every value
//! is a string, as GitHub sends them, so `repository_id: "123"` matches on every provider.

mod buildkite;
mod circleci;
mod github;
mod gitlab;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::IssuerKind;

/// Every key a `normalized:` block may name, in documentation order.
pub const NORMALIZED_KEYS: [&str; 14] = [
    "provider",
    "repository",
    "repository_id",
    "owner",
    "owner_id",
    "ref",
    "ref_type",
    "sha",
    "workflow",
    "environment",
    "trigger",
    "run_id",
    "run_url",
    "runner_environment",
];

/// The keys an issuer of `kind` can ever produce (those its provider sends at least sometimes):
/// a policy condition on any other key can never hold (lint `normalized-unavailable`).
pub fn provided_keys(kind: IssuerKind) -> &'static [&'static str] {
    match kind {
        IssuerKind::GithubActions | IssuerKind::Gitlab => &NORMALIZED_KEYS,
        IssuerKind::Buildkite => &[
            "provider",
            "repository",
            "repository_id",
            "owner",
            "owner_id",
            "ref",
            "ref_type",
            "sha",
            "trigger",
            "run_id",
            "run_url",
            "runner_environment",
        ],
        IssuerKind::Circleci => &[
            "provider",
            "repository",
            "repository_id",
            "owner_id",
            "ref",
            "ref_type",
            "workflow",
            "run_id",
        ],
        IssuerKind::Kubernetes | IssuerKind::Oidc | IssuerKind::Spiffe | IssuerKind::Ferry => {
            &["provider"]
        }
    }
}

/// The normalised claims of a verified payload from an issuer of `kind`.
pub fn normalize(kind: IssuerKind, claims: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Normalized(Map::new());
    out.set("provider", Some(kind.as_str().to_string()));
    let source = Source(claims);
    match kind {
        IssuerKind::GithubActions => github::map(&source, &mut out),
        IssuerKind::Gitlab => gitlab::map(&source, &mut out),
        IssuerKind::Buildkite => buildkite::map(&source, &mut out),
        IssuerKind::Circleci => circleci::map(&source, &mut out),
        IssuerKind::Kubernetes | IssuerKind::Oidc | IssuerKind::Spiffe | IssuerKind::Ferry => {}
    }
    out.0
}

/// Read access to the raw claims, as text.
pub(super) struct Source<'a>(&'a Map<String, Value>);

impl Source<'_> {
    /// A claim as text: a non-empty string as is, an integer in decimal; anything else (absent,
    /// null, boolean, object, empty string) is `None`.
    pub(super) fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        }
    }
}

/// The map being built; only vocabulary keys are ever set.
pub(super) struct Normalized(Map<String, Value>);

impl Normalized {
    pub(super) fn set(&mut self, key: &'static str, value: Option<String>) {
        debug_assert!(
            NORMALIZED_KEYS.contains(&key),
            "`{key}` is not in the vocabulary"
        );
        if let Some(v) = value {
            self.0.insert(key.to_string(), Value::String(v));
        }
    }
}

/// `refs/heads/X` -> `branch`, `refs/tags/X` -> `tag`.
pub(super) fn ref_type_of(git_ref: &str) -> Option<String> {
    if git_ref.starts_with("refs/heads/") {
        Some("branch".to_string())
    } else if git_ref.starts_with("refs/tags/") {
        Some("tag".to_string())
    } else {
        None
    }
}

/// The providers' own runner words -> `hosted` / `self-hosted`; an unknown word is dropped, so a
/// policy asking for `hosted` never matches something it has not seen.
pub(super) fn runner_environment(value: Option<String>, hosted: &str) -> Option<String> {
    match value.as_deref() {
        Some(v) if v == hosted => Some("hosted".to_string()),
        Some("self-hosted") => Some("self-hosted".to_string()),
        _ => None,
    }
}
