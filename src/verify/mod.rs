//! Subject-token verification: compact JWS in, [`VerifiedToken`] out (SECURITY.md, "Token
//! verification").

use serde_json::{Map, Value};

use crate::domain::{Algorithm, IssuerName, UnixSeconds};

/// A token whose signature, issuer, lifetime and shape have been checked. Only the verifier
/// constructs one; everything downstream (decide, mint, audit) trusts these fields.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The configured issuer that vouched for the token.
    pub issuer: IssuerName,
    /// The `sub` claim (required, non-empty).
    pub subject: String,
    /// `aud` normalised to a list (a string `aud` becomes one element).
    pub audiences: Vec<String>,
    pub expires_at: UnixSeconds,
    pub issued_at: Option<UnixSeconds>,
    pub jti: Option<String>,
    /// The whole verified payload, for policy matching and claim copying.
    pub claims: Map<String, Value>,
    /// Lower-case hex SHA-256 of the raw token: what the audit trail holds instead of the token.
    pub token_sha256: String,
    pub algorithm: Algorithm,
    pub key_id: Option<String>,
}

mod shim;
pub use shim::*;
