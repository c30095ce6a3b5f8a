//! Subject-token verification: compact JWS in, [`VerifiedToken`] out (SECURITY.md, "Token
//! verification").
//!
//! Order, cheapest and least trusting first: size, shape (`compact`), forbidden headers, the one
//! unverified peek at `iss`/`alg`/`kid`, issuer by exact `iss`, algorithm allowlist, key from
//! the issuer's cache (`issuer`), signature, then claims (`claims`). No claim is judged before
//! the signature holds. This module never fetches a URL named by a token, and never logs or
//! returns a token, a signature or key material.

mod broker;
mod claims;
mod compact;
mod error;
mod json;
mod setup;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::domain::{Algorithm, IssuerName, UnixSeconds};
use crate::issuer::{IssuerKeyStatus, IssuerKeys, IssuerSpec, KeyLookupError};

pub use broker::BrokerKeys;
pub use error::VerifyError;
pub(crate) use json::parse_strict_json;
pub use setup::KeySetupError;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySettings {
    /// Clock skew tolerated on `exp`, `nbf`, `iat` and the max token age.
    pub leeway: Duration,
    /// Tokens longer than this are refused before any parsing (SECURITY.md rule 1).
    pub max_token_bytes: usize,
}

impl Default for VerifySettings {
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(60),
            max_token_bytes: 16 * 1024,
        }
    }
}

/// One configured issuer and its key cache.
struct IssuerEntry {
    spec: IssuerSpec,
    keys: Arc<IssuerKeys>,
}

/// Verifies subject tokens against the configured issuers. `Send + Sync`; share it behind an
/// `Arc`.
pub struct Verifier {
    settings: VerifySettings,
    /// In `issuers.yaml` order; a handful of entries, so a linear scan beats hashing.
    issuers: Vec<IssuerEntry>,
    /// Kept for [`Verifier::with_broker`], which builds the `ferry` issuers' key caches.
    fetch: crate::issuer::FetchSettings,
}

impl Verifier {
    /// Verifies `token` at time `now`. No network I/O when the issuer's keys are cached and the
    /// token's kid is known.
    pub async fn verify(
        &self,
        token: &str,
        now: UnixSeconds,
    ) -> Result<VerifiedToken, VerifyError> {
        // Security invariant: size before anything else touches the token.
        if token.len() > self.settings.max_token_bytes {
            return Err(VerifyError::TokenTooLarge {
                limit: self.settings.max_token_bytes,
            });
        }
        let jws = compact::decode(token)?;
        compact::check_header(&jws.header)?;
        let peek = compact::peek_unverified(&jws)?;
        let issuer = self.select_issuer(peek.iss)?;
        let alg: Algorithm = peek
            .alg
            .parse()
            .map_err(|_| VerifyError::AlgorithmNotAllowed)?;
        if !issuer.spec.algorithms.contains(&alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let key = issuer.keys.lookup(peek.kid).await.map_err(|e| match e {
            KeyLookupError::MissingKid => VerifyError::MissingKid,
            KeyLookupError::UnknownKid => VerifyError::UnknownKey {
                issuer: issuer.spec.name.clone(),
            },
            KeyLookupError::Unavailable => VerifyError::KeysUnavailable {
                issuer: issuer.spec.name.clone(),
            },
        })?;
        let key_id = peek.kid.map(str::to_string);
        let public_key = key.for_alg(alg).ok_or(VerifyError::KeyAlgorithmMismatch)?;
        public_key
            .verify_sig(jws.signing_input, &jws.signature)
            .map_err(|_| VerifyError::BadSignature)?;

        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let checked = claims::check(&jws.payload, &issuer.spec, leeway, now)?;
        Ok(VerifiedToken {
            issuer: issuer.spec.name.clone(),
            subject: checked.subject,
            audiences: checked.audiences,
            expires_at: checked.expires_at,
            issued_at: checked.issued_at,
            jti: checked.jti,
            claims: jws.payload,
            token_sha256: crate::domain::sha256_hex(token.as_bytes()),
            algorithm: alg,
            key_id,
        })
    }

    /// The configured issuer whose `issuer_url` equals the unverified `iss` byte for byte
    /// (`https://x/` and `https://x` are different issuers). Nothing is fetched for an unknown
    /// issuer.
    ///
    /// Seam: SPIFFE issuers will be selected here by the trust domain of the unverified `sub`.
    fn select_issuer(&self, iss: &str) -> Result<&IssuerEntry, VerifyError> {
        self.issuers
            .iter()
            .find(|e| e.spec.issuer_url.as_bytes() == iss.as_bytes())
            .ok_or(VerifyError::UnknownIssuer)
    }

    /// Fetches every issuer's keys once, concurrently. Failures are logged and counted in
    /// [`Verifier::key_status`]; this never fails.
    pub async fn warm_up(&self) {
        let all = self
            .issuers
            .iter()
            .map(|e| e.keys.refresh_gated(Duration::ZERO));
        futures_util::future::join_all(all).await;
    }

    /// Per-issuer key state for `/readyz` and `/metrics`.
    pub fn key_status(&self) -> Vec<IssuerKeyStatus> {
        self.issuers.iter().map(|e| e.keys.status()).collect()
    }
}
