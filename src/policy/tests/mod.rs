//! Tests for the policy module and `exchange::decide`, with shared helpers for building sets.

mod decide;
mod delegation;
mod explain;
mod github_subjects;
mod guardrails;
mod lints;
mod load;
mod matchers;
mod normalized;
mod presets;
mod provider_lints;
mod spiffe;
mod when;

use std::path::Path;

use super::*;

pub(super) const ISSUERS: &str = "issuers:
  github:
    kind: github-actions
  corp:
    kind: oidc
    url: https://idp.example.com
";

/// Loads in-memory policies against [`ISSUERS`].
pub(super) fn set(policies: &[(&str, &str)]) -> Result<PolicySet, LoadErrors> {
    let owned: Vec<(String, String)> = policies
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    PolicySet::from_sources(ISSUERS, &owned, Path::new("tp"))
}

/// The rendered load errors of one policy file, which must fail to load.
pub(super) fn errors_of(policy: &str) -> Vec<String> {
    match set(&[("p.yaml", policy)]) {
        Ok(_) => panic!("expected load errors for:\n{policy}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// A minimal valid policy for `corp` with the given extra lines (conditions).
pub(super) fn policy_with(extra: &str) -> String {
    format!(
        "issuer: corp\n{extra}grant:\n  audience: https://api.internal\n  scopes: [read]\n  ttl: 15m\n"
    )
}
