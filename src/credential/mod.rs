//! Credentials Ferry mints: RFC 9068 JWT access tokens signed with Ferry's own key, and the JWKS
//! that lets any standard JWT library verify them.

mod jwt;
mod keys;
pub mod opaque;

use serde_json::{Map, Value};

use crate::domain::{ScopeSet, Secret, UnixSeconds};

pub use jwt::JwtMinter;
pub use keys::{generate_pkcs8, jws_alg, pkcs8_pem, write_new_key_file, KeyError, SigningKey};

/// Everything a credential says, decided before minting.
#[derive(Debug, Clone)]
pub struct MintRequest<'a> {
    pub subject: &'a str,
    pub audience: &'a str,
    /// The policy that granted it; RFC 9068 `client_id`.
    pub policy: &'a str,
    /// The file that policy came from, relative to the policy directory.
    pub policy_file: &'a str,
    /// The version (content hash) of the policy set that decided.
    pub policy_set: &'a str,
    pub scopes: &'a ScopeSet,
    pub ttl_seconds: u64,
    pub now: UnixSeconds,
    pub exchange_id: &'a str,
    /// The configured name of the subject token's issuer.
    pub source_issuer: &'a str,
    /// Claims copied from the subject token by the policy's `grant.claims`.
    pub claims: &'a Map<String, Value>,
    /// RFC 8693 §4.1 `act` (delegation): the actor, with any earlier chain nested inside.
    pub act: Option<&'a Value>,
    /// `ferry.derived_from`: the revocation ids of the Ferry credentials this one was exchanged
    /// from, and of theirs (`store::revocation::CredentialFacts::derived_from`).
    pub derived_from: &'a [String],
    /// `ferry.derived_policies`: the policies of those credentials, and theirs
    /// (`store::revocation::CredentialFacts::derived_policies`).
    pub derived_policies: &'a [String],
}

#[derive(Debug, Clone)]
pub struct Minted {
    pub token: Secret,
    /// The credential's `jti`: what audit events and revocations refer to.
    pub id: String,
    pub issued_at: UnixSeconds,
    pub expires_at: UnixSeconds,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("could not encode credential claims")]
    Encode,
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Mints credentials. CPU only: no I/O, so the service can call it inline.
pub trait Minter: Send + Sync + 'static {
    fn mint(&self, request: &MintRequest<'_>) -> Result<Minted, MintError>;
    /// The JWKS document published at `/.well-known/jwks.json`.
    fn jwks(&self) -> &Value;
    /// `iss` of minted credentials: Ferry's public URL.
    fn issuer(&self) -> &str;
}
