//! What the exchange service asks of the lifecycle: the rate-limit key of a grant, whether a
//! cached credential falls under a kill switch, and turning a minted credential into an opaque
//! one. Kept here so `exchange::service` only gains call sites.

use std::time::Duration;

use crate::credential::{opaque, Minted};
use crate::domain::{sha256_hex, UnixSeconds};
use crate::exchange::Grant;
use crate::store::revocation::revoking;
use crate::store::{CachedCredential, CredentialFacts, OpaqueRecord, RateLimit, Revocation};

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
    let facts = CredentialFacts {
        credential_id: hit.credential_id.clone(),
        exchange_id: hit.exchange_id.clone(),
        subject: subject.to_string(),
        // Never a delegated one, nor one exchanged from a Ferry credential: neither is cached.
        actors: Vec::new(),
        derived_from: Vec::new(),
        derived_policies: Vec::new(),
        policy: policy.to_string(),
        issued_at: hit.issued_at,
    };
    revoking(list, &facts, now).is_some()
}

/// Replaces a minted JWT by an opaque credential with the same id, lifetime and claims, and the
/// record to store (by digest) for as long as it lives. The record is written with the audit
/// stream entry ([`crate::store::Store::commit_opaque`]), before the credential is released.
pub fn into_opaque(
    minted: Minted,
    now: UnixSeconds,
) -> Result<(Minted, OpaqueRecord), &'static str> {
    let issue = opaque::from_minted(&minted)?;
    let record = OpaqueRecord {
        digest: issue.digest,
        record: issue.record,
        ttl: Duration::from_secs(minted.expires_at.saturating_sub(now).max(1) as u64),
    };
    let minted = Minted {
        token: issue.token,
        ..minted
    };
    Ok((minted, record))
}
