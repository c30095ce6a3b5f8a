//! Is a presented credential one Ferry minted, still live, and not revoked? For JWTs: the
//! broker's own public key, `iss`, `typ: at+jwt`, `exp`/`nbf` with no leeway. For opaque
//! credentials: format and checksum, then the store's record (by SHA-256, compared in constant
//! time) and its `exp`. Then the revocations that name it and the kill switches. Anything else
//! is inactive, with a reason for the audit trail only (RFC 7662 §2.2: the caller learns
//! nothing but `active: false`).

use std::str::FromStr;
use std::sync::Arc;

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::credential::{opaque, Minter};
use crate::domain::UnixSeconds;
use crate::store::revocation::revoking;
use crate::store::{CredentialFacts, Store, StoreError};

/// A presented credential is refused unread above this size (like subject tokens).
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Inspected {
    Active {
        claims: Value,
        /// The store digest of an opaque credential (to delete its record on revocation).
        opaque_digest: Option<String>,
    },
    /// `malformed`, `foreign` (not ours or bad signature), `expired`, `unknown` (no record),
    /// or `revoked`.
    Inactive(&'static str),
}

pub struct Inspector {
    key: DecodingKey,
    validation: Validation,
    store: Arc<dyn Store>,
}

impl Inspector {
    /// Verifies with `minter`'s current public key; fails only if that key cannot be read back.
    pub fn new(minter: &dyn Minter, store: Arc<dyn Store>) -> Result<Inspector, String> {
        let jwk = minter.jwks()["keys"][0].clone();
        let alg = jwk["alg"].as_str().unwrap_or_default();
        let alg = Algorithm::from_str(alg).map_err(|_| format!("signing algorithm `{alg}`"))?;
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(jwk).map_err(|e| format!("signing key JWK: {e}"))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("signing key JWK: {e}"))?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[minter.issuer()]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(Inspector {
            key,
            validation,
            store,
        })
    }

    pub async fn inspect(&self, token: &str, now: UnixSeconds) -> Result<Inspected, StoreError> {
        if token.is_empty() || token.len() > MAX_CREDENTIAL_BYTES {
            return Ok(Inspected::Inactive("malformed"));
        }
        let (claims, opaque_digest) = if opaque::looks_opaque(token) {
            let Some(digest) = opaque::digest_of(token) else {
                return Ok(Inspected::Inactive("malformed"));
            };
            let record = self.store.opaque_get(&digest).await?;
            let Some(claims) = record.and_then(|r| opaque::record_claims(&r, &digest)) else {
                return Ok(Inspected::Inactive("unknown"));
            };
            if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
                return Ok(Inspected::Inactive("expired"));
            }
            (claims, Some(digest))
        } else {
            match self.verify_jwt(token) {
                Ok(claims) => (claims, None),
                Err(reason) => return Ok(Inspected::Inactive(reason)),
            }
        };
        let Some(facts) = claims.as_object().and_then(CredentialFacts::from_claims) else {
            return Ok(Inspected::Inactive("malformed"));
        };
        let revocations = self.store.revocations_for(&facts.revocation_ids()).await?;
        if revoking(&revocations, &facts, now).is_some() {
            return Ok(Inspected::Inactive("revoked"));
        }
        Ok(Inspected::Active {
            claims,
            opaque_digest,
        })
    }

    fn verify_jwt(&self, token: &str) -> Result<Value, &'static str> {
        let header = decode_header(token).map_err(|_| "malformed")?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err("foreign");
        }
        decode::<Value>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired",
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => "not_yet_valid",
                _ => "foreign",
            })
    }
}
