//! `IssuerSpec`: one validated entry of `issuers.yaml`, as pure data.
//!
//! The policy loader (`policy::`) parses the YAML into these; the key cache (`issuer::`) and the
//! verifier (`verify::`) consume them. Nothing here does I/O.

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{Algorithm, IssuerName, TrustDomain};

/// The issuer kinds Ferry knows. A preset kind fills defaults for its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssuerKind {
    /// Any OIDC issuer.
    Oidc,
    /// GitHub Actions (`https://token.actions.githubusercontent.com`, or GHES by `url`).
    GithubActions,
    /// GitLab CI ID tokens (`https://gitlab.com`, or self-managed by `url`).
    Gitlab,
    /// Buildkite agent OIDC tokens (`https://agent.buildkite.com`).
    Buildkite,
    /// CircleCI OIDC tokens (per organisation: `https://oidc.circleci.com/org/ORG_ID`).
    Circleci,
    /// Kubernetes projected service-account tokens (the cluster's issuer URL, required).
    Kubernetes,
    /// SPIFFE JWT-SVIDs: selected by the trust domain of `sub`, keys from a SPIFFE bundle.
    Spiffe,
    /// This broker: its own credentials as subject tokens (delegation chains). URL and keys
    /// are the broker's own public URL and signing keys; nothing is fetched.
    Ferry,
}

impl IssuerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::GithubActions => "github-actions",
            Self::Gitlab => "gitlab",
            Self::Buildkite => "buildkite",
            Self::Circleci => "circleci",
            Self::Kubernetes => "kubernetes",
            Self::Spiffe => "spiffe",
            Self::Ferry => "ferry",
        }
    }
}

/// Where an issuer's verification keys come from, in order of preference (POLICY.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySourceSpec {
    /// Pinned keys from a JWKS file (path resolved against the policy directory).
    JwksFile(PathBuf),
    /// A JWKS document at this URL.
    JwksUrl(url::Url),
    /// OIDC discovery: `{issuer}/.well-known/openid-configuration` -> `jwks_uri`.
    Discovery(url::Url),
    /// A SPIFFE bundle bound to one trust domain: tokens whose `sub` is a SPIFFE ID of that
    /// trust domain select this issuer (their `iss` is not used).
    SpiffeBundle {
        trust_domain: TrustDomain,
        bundle: BundleLocation,
    },
    /// The broker's own signing keys (kind `ferry`), handed over in process: no fetch.
    Broker,
}

/// Where a SPIFFE bundle is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleLocation {
    /// Pinned bundle file (path resolved against the policy directory).
    File(PathBuf),
    /// A bundle endpoint URL (https).
    Url(url::Url),
}

impl IssuerSpec {
    /// The trust domain a SPIFFE issuer is bound to; `None` for every other kind.
    pub fn trust_domain(&self) -> Option<&TrustDomain> {
        match &self.keys {
            KeySourceSpec::SpiffeBundle { trust_domain, .. } => Some(trust_domain),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSpec {
    pub name: IssuerName,
    pub kind: IssuerKind,
    /// The exact `iss` value this issuer's tokens carry (compared byte for byte). For SPIFFE
    /// issuers, `spiffe://<trust domain>`, which identifies them but never selects them by `iss`.
    pub issuer_url: String,
    pub keys: KeySourceSpec,
    /// Allowlist; never empty, never `none` or HMAC (the type cannot hold them).
    pub algorithms: Vec<Algorithm>,
    /// `iat` must be at most this old; when set, `iat` is required.
    pub max_token_age: Option<Duration>,
    pub require_jti: bool,
    /// Plain `http://` key fetching, allowed only for loopback hosts (tests and local demos).
    pub insecure_http: bool,
}
