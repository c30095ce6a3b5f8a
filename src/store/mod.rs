//! Shared exchange state behind the [`Store`] trait: the `jti` replay set and the credential
//! cache. The in-memory implementation is the embedded default; a Redis implementation shares
//! the same state across replicas.
//!
//! The trait is shaped for round trips, not for convenience: one call claims the `jti` and looks
//! up the cache together, so a networked store can answer both in one pipeline.

mod memory;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{Secret, UnixSeconds};

pub use memory::MemoryStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time: fail closed (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// A subject token's `jti`, to be remembered until the token can no longer be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JtiClaim {
    /// Issuer and jti together: two issuers may mint the same jti.
    pub key: String,
    /// How long to remember it: `exp + leeway + margin - now`, never shorter (a replay record
    /// that expires while the token is still accepted under leeway is a replay bug).
    pub ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// First use (or the token has no jti to claim).
    Fresh,
    /// Seen before and still remembered.
    Replayed,
}

/// Identifies a grant for the credential cache: a digest of policy, policy-set version, subject,
/// audience, scopes and copied claims; never derived from the raw token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(pub String);

/// A minted credential kept for reuse while it is fresh.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedCredential {
    #[serde(with = "secret_string")]
    pub token: Secret,
    pub credential_id: String,
    pub issued_at: UnixSeconds,
    pub expires_at: UnixSeconds,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Claims `claim` (single use) and reads the cache entry for `cache_key`, in one round trip.
    /// A replayed claim still answers the lookup, but callers must not use it.
    async fn claim_and_lookup(
        &self,
        claim: Option<&JtiClaim>,
        cache_key: Option<&CacheKey>,
    ) -> Result<(ClaimOutcome, Option<CachedCredential>), StoreError>;

    /// Stores a credential for reuse, expiring with it.
    async fn cache_put(
        &self,
        key: &CacheKey,
        credential: &CachedCredential,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Serde for a [`Secret`] inside a store record (the store is trusted infrastructure; logs and
/// audit events never see these records).
mod secret_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::Secret;

    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}
