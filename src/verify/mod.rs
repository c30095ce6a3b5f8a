//! Subject-token verification: compact JWS in, [`VerifiedToken`] out (SECURITY.md, "Token
//! verification").
//!
//! Order, cheapest and least trusting first: size, shape (`compact`), forbidden headers, the one
//! unverified peek at `iss`/`sub`/`alg`/`kid`, legacy Kubernetes tokens refused by name
//! (`legacy`), issuer by exact `iss` or by the trust domain of a SPIFFE ID `sub` (`spiffe`),
//! algorithm allowlist, key from the issuer's cache (`issuer`), signature, then claims (`claims`,
//! and the SPIFFE ID rule for SPIFFE issuers). No claim is judged before the signature holds
//! (the legacy refusal only refuses, on the same unverified `iss` that selects the issuer). This
//! module never fetches a URL named by a token, and never logs or
//! returns a token, a signature or key material.

mod broker;
mod claims;
mod compact;
mod error;
mod json;
mod legacy;
mod setup;
mod spiffe;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::domain::{Algorithm, IssuerName, UnixSeconds};
use crate::issuer::{IssuerKeyStatus, IssuerKeys, IssuerKind, IssuerSpec, KeyLookupError};

pub use broker::BrokerKeys;
pub use error::VerifyError;
pub(crate) use json::parse_strict_json;
pub use setup::KeySetupError;
pub(crate) use spiffe::select_issuer;

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
    /// The normalised claims (`issuer::normalize`), computed once from `claims` by the kind of
    /// the issuer that vouched for the token.
    pub normalized: Map<String, Value>,
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

impl IssuerEntry {
    /// The cached key `kid` names (may refresh, within the cooldowns).
    async fn key(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<crate::issuer::VerifyingKey>, VerifyError> {
        let issuer = || self.spec.name.clone();
        self.keys.lookup(kid).await.map_err(|e| match e {
            KeyLookupError::MissingKid => VerifyError::MissingKid,
            KeyLookupError::UnknownKid => VerifyError::UnknownKey { issuer: issuer() },
            KeyLookupError::Unavailable => VerifyError::KeysUnavailable { issuer: issuer() },
        })
    }
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
        legacy::refuse_legacy_service_account(peek.iss)?;
        let issuer = select_issuer(&self.issuers, |e| &e.spec, peek.iss, peek.sub)?;
        spiffe::check_header(&issuer.spec, &jws.header)?;
        let alg: Algorithm = peek
            .alg
            .parse()
            .map_err(|_| VerifyError::AlgorithmNotAllowed)?;
        if !issuer.spec.algorithms.contains(&alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let key = issuer.key(peek.kid).await?;
        let key_id = peek.kid.map(str::to_string);
        let public_key = key.for_alg(alg).ok_or(VerifyError::KeyAlgorithmMismatch)?;
        public_key
            .verify_sig(jws.signing_input, &jws.signature)
            .map_err(|_| VerifyError::BadSignature)?;

        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let checked = claims::check(&jws.payload, &issuer.spec, leeway, now)?;
        spiffe::check_subject(&issuer.spec, &checked.subject)?;
        Ok(VerifiedToken {
            issuer: issuer.spec.name.clone(),
            subject: checked.subject,
            audiences: checked.audiences,
            expires_at: checked.expires_at,
            issued_at: checked.issued_at,
            jti: checked.jti,
            normalized: crate::issuer::normalize::normalize(issuer.spec.kind, &jws.payload),
            claims: jws.payload,
            token_sha256: crate::domain::sha256_hex(token.as_bytes()),
            algorithm: alg,
            key_id,
        })
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

    /// Refreshes, concurrently, the issuers whose keys are due (their announced freshness, or
    /// `refresh_interval`, has passed) or missing; the others cost nothing. Never fails.
    pub async fn refresh_due(&self) {
        let due = self.issuers.iter().map(|e| e.keys.refresh_if_due());
        futures_util::future::join_all(due).await;
    }

    /// Whether `issuer` is this broker (`kind: ferry`): the tokens it vouched for are Ferry
    /// credentials, which revocations and kill switches apply to when they are presented again.
    pub fn is_broker(&self, issuer: &IssuerName) -> bool {
        self.issuers
            .iter()
            .any(|e| e.spec.kind == IssuerKind::Ferry && &e.spec.name == issuer)
    }

    /// Per-issuer key state for `/readyz` and `/metrics`.
    pub fn key_status(&self) -> Vec<IssuerKeyStatus> {
        self.issuers.iter().map(|e| e.keys.status()).collect()
    }
}
