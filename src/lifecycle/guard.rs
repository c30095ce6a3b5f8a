//! What the exchange service asks of the lifecycle: the rate-limit key of a grant, whether a
//! cached credential was revoked since it was cached, and turning a minted credential into an
//! opaque one. Kept here so `exchange::service` only gains call sites.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::credential::{opaque, Minted};
use crate::domain::{sha256_hex, UnixSeconds};
use crate::exchange::Grant;
use crate::store::revocation::revoking;
use crate::store::{
    CachedCredential, CredentialFacts, RateLimit, Revocation, RevocationKind, Store,
};

/// The `grant.rate_limit` step of this exchange: one budget per policy and subject, on the
/// exchange's slot.
pub fn rate_limit_for(grant: &Grant, subject: &str, slot: &str) -> Option<RateLimit> {
    let spec = grant.rate_limit?;
    let material = format!("{}\n{subject}", grant.policy);
    Some(RateLimit {
        slot: slot.to_string(),
        key: sha256_hex(material.as_bytes())[..32].to_string(),
        limit: spec.limit,
        period: spec.period,
    })
}

/// Whether a cache hit was revoked after it was cached (by id, by its minting exchange, or by
/// a kill switch on its subject or policy). A revoked hit is not served; the new credential
/// minted instead replaces it in the cache.
pub fn cached_is_revoked(
    list: &[Revocation],
    hit: &CachedCredential,
    subject: &str,
    policy: &str,
    now: UnixSeconds,
) -> bool {
    if list.is_empty() {
        return false;
    }
    // The minting exchange is only in the credential's claims: read them only when an
    // exchange revocation could match.
    let exchange_id = list
        .iter()
        .any(|r| r.kind == RevocationKind::Exchange)
        .then(|| jwt_exchange_id(hit.token.expose()))
        .flatten();
    let facts = CredentialFacts {
        credential_id: hit.credential_id.clone(),
        exchange_id,
        subject: subject.to_string(),
        policy: policy.to_string(),
        issued_at: hit.issued_at,
    };
    revoking(list, &facts, now).is_some()
}

fn jwt_exchange_id(jwt: &str) -> Option<String> {
    let payload = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    Some(claims.pointer("/ferry/exchange_id")?.as_str()?.to_string())
}

/// Replaces a minted JWT by an opaque credential with the same id, lifetime and claims, after
/// storing the opaque credential's record (by digest) for as long as it lives.
pub async fn into_opaque(
    store: &Arc<dyn Store>,
    minted: Minted,
    now: UnixSeconds,
) -> Result<Minted, OpaqueError> {
    let issue = opaque::from_minted(&minted).map_err(OpaqueError::Mint)?;
    let ttl = Duration::from_secs((minted.expires_at - now).max(1) as u64);
    store
        .opaque_put(&issue.digest, &issue.record, ttl)
        .await
        .map_err(|e| OpaqueError::Store(e.to_string()))?;
    Ok(Minted {
        token: issue.token,
        ..minted
    })
}

#[derive(Debug, thiserror::Error)]
pub enum OpaqueError {
    #[error("opaque credential: {0}")]
    Mint(&'static str),
    #[error("opaque credential record: {0}")]
    Store(String),
}
