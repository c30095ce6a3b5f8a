//! `IssuerSpec`: one validated entry of `issuers.yaml`, as pure data.
//!
//! The policy loader (`policy::`) parses the YAML into these; the key cache (`issuer::`) and the
//! verifier (`verify::`) consume them. Nothing here does I/O.

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{Algorithm, IssuerName};

/// The issuer kinds Ferry knows. A preset kind fills defaults for its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssuerKind {
    /// Any OIDC issuer.
    Oidc,
    /// GitHub Actions (`https://token.actions.githubusercontent.com`, or GHES by `url`).
    GithubActions,
    /// This broker: its own credentials as subject tokens (delegation chains). URL and keys
    /// are the broker's own public URL and signing keys; nothing is fetched.
    Ferry,
}

impl IssuerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::GithubActions => "github-actions",
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
    /// The broker's own signing keys (kind `ferry`), handed over in process: no fetch.
    Broker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSpec {
    pub name: IssuerName,
    pub kind: IssuerKind,
    /// The exact `iss` value this issuer's tokens carry (compared byte for byte).
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
