//! Shared exchange state behind the [`Store`] trait: the `jti` replay set, the credential
//! cache, revocations, rate-limit counters and (for stores that keep one) the audit stream.
//! [`MemoryStore`] is the embedded default; [`RedisStore`] shares the same state across
//! replicas. The backend is chosen once at startup (`startup.rs`), never by branches elsewhere.
//!
//! The trait is shaped for round trips, not for convenience: one call claims the `jti` and looks
//! up the cache together, and one call ([`Store::commit`]) appends the audit stream entry and
//! stores the new credential together, so a networked store answers an exchange in two.

mod limit;
mod memory;
mod rate;
pub mod redis;
pub mod revocation;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{Secret, UnixSeconds};

pub use limit::{gcra_step, Guarded, RateLimit};
pub use memory::MemoryStore;
pub use rate::RateDecision;
pub use redis::{RedisSettings, RedisStore};
pub use revocation::{CredentialFacts, Revocation, RevocationKind};

use crate::audit::EventJson;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time: fail closed (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store settings are unusable (e.g. a malformed Redis URL): a startup error.
    #[error("store configuration: {0}")]
    Config(String),
}

/// A subject token's `jti`, to be remembered until the token can no longer be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JtiClaim {
    /// Cluster affinity of the exchange ([`slot_of`]): the claim and the cache entry of one
    /// exchange carry the same tag, so a Redis Cluster serves both from one slot.
    pub slot: String,
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
pub struct CacheKey {
    /// Same tag as the exchange's [`JtiClaim::slot`].
    pub slot: String,
    /// The grant digest (unique on its own).
    pub id: String,
}

/// The cluster-affinity tag of an exchange: a short digest of issuer and subject, known before
/// the decision and the same for every replay of a token, so the replay record of a token and
/// the credentials cached for its grants share one Redis Cluster slot.
pub fn slot_of(issuer: &str, subject: &str) -> String {
    let mut material = String::with_capacity(issuer.len() + subject.len() + 1);
    material.push_str(issuer);
    material.push('\n');
    material.push_str(subject);
    crate::domain::sha256_hex(material.as_bytes())[..12].to_string()
}

/// A credential to cache, written together with the exchange's audit stream entry.
#[derive(Debug, Clone, Copy)]
pub struct CachePut<'a> {
    pub key: &'a CacheKey,
    pub credential: &'a CachedCredential,
    pub ttl: Duration,
}

/// The record of an opaque credential (`credential::opaque`), stored under the credential's
/// SHA-256 for as long as it lives, written with the exchange's audit stream entry.
#[derive(Debug, Clone)]
pub struct OpaqueRecord {
    pub digest: String,
    /// `{"digest": …, "claims": {…}}`: never the credential itself.
    pub record: String,
    pub ttl: Duration,
}

/// A minted credential kept for reuse while it is fresh.
///
/// Field order is part of the Redis store's record: serialized, it starts
/// `{"credential_id":"…","issued_at":N,"expires_at":N,` so that the store's first script reads
/// the two fields a hit's audit event needs with one anchored match (`redis::lifecycle`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedCredential {
    pub credential_id: String,
    pub issued_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    /// The Redis revocation epoch its minting exchange read in its first round trip
    /// (`redis::plain_trip`): a record still carrying the current one is known not to be
    /// revoked by id. Kept before `token` (the first script reads the leading fields and the
    /// trailing `exchange_id` by pattern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_epoch: Option<String>,
    #[serde(with = "secret_string")]
    pub token: Secret,
    /// The exchange that minted it, so that a revocation of that exchange covers this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_id: Option<String>,
}

impl CachedCredential {
    /// The revocation ids that name this credential (by id, by minting exchange).
    pub fn revocation_ids(&self) -> Vec<String> {
        revocation::revocation_ids(&self.credential_id, self.exchange_id.as_deref())
    }
}

impl CachedCredential {
    /// Reused only if it does not outlive what this request may have (`ttl_seconds`), and
    /// still has at least half of that lifetime left (callers are not handed nearly-dead
    /// tokens). The Redis store's first script applies the same integer test (`redis::lifecycle`).
    pub fn reusable(&self, ttl_seconds: u64, now: UnixSeconds) -> bool {
        let remaining = self.expires_at.saturating_sub(now);
        let allowed = ttl_seconds as i64;
        remaining <= allowed && remaining.saturating_mul(2) >= allowed && remaining >= 1
    }
}

/// Lets a store that keeps the audit stream record a cache hit in an exchange's first round
/// trip, so that a hit costs one round trip instead of two ([`Store::records_hits_first`]).
/// The store appends the event only when the hit is certain to be served: the rate limit
/// allowed, every claim fresh, no revocation or kill switch live at all, and the cached
/// credential [`CachedCredential::reusable`] for `ttl_seconds` at `now`.
#[derive(Debug, Clone, Copy)]
pub struct HitRecord<'a> {
    /// The event exactly as the hit will be recorded, serialized as a JSON object without its
    /// closing brace and without `credential_id` and `credential_expires_at`, which the store
    /// appends from the cached credential.
    pub event_head: &'a str,
    pub now: UnixSeconds,
    pub ttl_seconds: u64,
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

    /// [`Store::claim_and_lookup`] for every token of one exchange (a delegation's subject and
    /// actor), one outcome per claim, in one round trip. All or nothing where the store can
    /// (memory, one Redis server): when any claim was seen before, none is recorded. The
    /// default serves one claim and refuses more (fails closed) rather than add round trips.
    async fn claim_all_and_lookup(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
    ) -> Result<(Vec<ClaimOutcome>, Option<CachedCredential>), StoreError> {
        if claims.len() > 1 {
            return Err(StoreError::Unavailable(
                "this store cannot claim several tokens in one round trip".into(),
            ));
        }
        let (outcome, cached) = self.claim_and_lookup(claims.first(), cache_key).await?;
        Ok((vec![outcome; claims.len()], cached))
    }

    /// Stores a credential for reuse, expiring with it.
    async fn cache_put(
        &self,
        key: &CacheKey,
        credential: &CachedCredential,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// How many times the store was found emptied under this replica (flushed, or restarted
    /// without persistence). Always 0 for a store that lives and dies with the process.
    fn state_losses(&self) -> u64 {
        0
    }

    /// Whether the store was found able to evict its keys under memory pressure (replay
    /// records with them). Always false for a store without such a setting.
    fn may_evict(&self) -> bool {
        false
    }

    /// Whether [`Store::commit`] records audit events (a shared audit stream). When it does, a
    /// failed commit means the event may be unrecorded, and the credential must not leave.
    fn keeps_audit_stream(&self) -> bool {
        false
    }

    /// Whether to give [`Store::claim_guarded`] a [`HitRecord`] for `key`: the store can
    /// record a cache hit's audit event itself (it keeps the audit stream and can append to it
    /// in the same atomic step as the claim: one Redis server, not a Cluster), and a credential
    /// for `key` is probably cached at `now` (so misses do not pay for an unused event).
    fn records_hits_first(&self, key: &CacheKey, now: UnixSeconds) -> bool {
        let _ = (key, now);
        false
    }

    /// After the decision, in one round trip: appends `event` to the audit stream (stores that
    /// keep one) and caches `cache`. The default keeps no stream and only caches.
    async fn commit(
        &self,
        event: &EventJson,
        cache: Option<CachePut<'_>>,
    ) -> Result<(), StoreError> {
        let _ = event;
        match cache {
            Some(put) => self.cache_put(put.key, put.credential, put.ttl).await,
            None => Ok(()),
        }
    }

    /// [`Store::commit`] for an opaque credential, in one round trip too: appends `event`
    /// (stores that keep a stream) and stores the credential's record. The credential is
    /// released only if both succeeded (no record: it could never be introspected). The
    /// default makes the two calls.
    async fn commit_opaque(
        &self,
        event: &EventJson,
        opaque: &OpaqueRecord,
    ) -> Result<(), StoreError> {
        self.opaque_put(&opaque.digest, &opaque.record, opaque.ttl)
            .await?;
        self.commit(event, None).await
    }

    /// Records that credential `credential_id` is revoked, until `ttl` (its remaining life) has
    /// passed; every replica sharing the store sees it at once.
    async fn revoke(&self, credential_id: &str, ttl: Duration) -> Result<(), StoreError>;

    async fn is_revoked(&self, credential_id: &str) -> Result<bool, StoreError>;

    /// Counts one event against `key`: at most `limit` per fixed `window` (shared by replicas).
    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError>;

    /// Every live revocation and kill switch (`revocation` module), shared by every replica:
    /// for the admin listing, which may be long.
    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError>;

    /// What can matter to one credential check: every live kill switch, and the live
    /// revocations among `ids` ([`Revocation::id`], e.g. [`CredentialFacts::revocation_ids`]).
    /// Costs the same however many credentials are revoked.
    async fn revocations_for(&self, ids: &[String]) -> Result<Vec<Revocation>, StoreError>;

    /// Adds a revocation, replacing one of the same kind and value; drops expired entries. From
    /// then on a cache hit of the credential a revocation by id names is not served: the first
    /// round trip answers the revocation with the hit ([`Store::claim_guarded`]), or (a Redis
    /// Cluster, which cannot) the cache entry is deleted through an index by revocation id.
    async fn put_revocation(&self, revocation: &Revocation) -> Result<(), StoreError>;

    /// One GCRA step (`limit` module) for a `grant.rate_limit`.
    async fn rate_gcra(&self, limit: &RateLimit) -> Result<RateDecision, StoreError>;

    /// Stores an opaque credential's record under the SHA-256 of the credential (never the
    /// credential itself), expiring with it.
    async fn opaque_put(&self, digest: &str, record: &str, ttl: Duration)
        -> Result<(), StoreError>;

    async fn opaque_get(&self, digest: &str) -> Result<Option<String>, StoreError>;

    async fn opaque_delete(&self, digest: &str) -> Result<(), StoreError>;

    /// The first round trip of an exchange: reads the revocations that can matter to it
    /// ([`Store::revocations_for`] `revocation_ids`: those of the Ferry credentials it presents,
    /// and the cached credential's own unless the store deletes revoked entries),
    /// takes one step of the rate limit (when the grant has one) and, unless that refused,
    /// claims every token's `jti` (a delegation's subject and actor: all or nothing, as
    /// [`Store::claim_all_and_lookup`]) and reads the cache; with `hit`, a store that
    /// [`Store::records_hits_first`] also appends a sure hit's audit event. A networked store
    /// does it in one round trip; this default makes several calls and records nothing.
    async fn claim_guarded(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
        rate: Option<&RateLimit>,
        hit: Option<&HitRecord<'_>>,
        revocation_ids: &[String],
    ) -> Result<Guarded, StoreError> {
        let _ = hit;
        let rate = match rate {
            Some(limit) => self.rate_gcra(limit).await?,
            None => RateDecision {
                allowed: true,
                retry_after: Duration::ZERO,
            },
        };
        if !rate.allowed {
            return Ok(Guarded {
                revocations: self.revocations_for(revocation_ids).await?,
                rate,
                claims: vec![ClaimOutcome::Fresh; claims.len()],
                cached: None,
                hit_recorded: false,
                revocation_epoch: None,
            });
        }
        let (claims, cached) = self.claim_all_and_lookup(claims, cache_key).await?;
        // The cached credential's own revocations come with it, as on a single Redis server.
        let mut ids = revocation_ids.to_vec();
        ids.extend(cached.iter().flat_map(CachedCredential::revocation_ids));
        Ok(Guarded {
            revocations: self.revocations_for(&ids).await?,
            rate,
            claims,
            cached,
            hit_recorded: false,
            revocation_epoch: None,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_credentials_never_outlive_the_request_and_are_not_nearly_dead() {
        let c = |exp| CachedCredential {
            token: Secret::new("t"),
            exchange_id: None,
            revocation_epoch: None,
            credential_id: "c".into(),
            issued_at: 0,
            expires_at: exp,
        };
        assert!(c(1000 + 900).reusable(900, 1000));
        assert!(c(1000 + 450).reusable(900, 1000));
        assert!(!c(1000 + 449).reusable(900, 1000), "less than half left");
        assert!(!c(1000 + 901).reusable(900, 1000), "outlives the grant");
        assert!(
            !c(1000 + 900).reusable(60, 1000),
            "outlives a shorter request"
        );
        assert!(c(1000 + 1).reusable(1, 1000));
        assert!(!c(1000).reusable(1, 1000), "expired now");
    }

    #[test]
    fn a_cached_record_starts_with_the_fields_the_redis_script_matches() {
        let c = CachedCredential {
            token: Secret::new("t"),
            exchange_id: None,
            revocation_epoch: None,
            credential_id: "01a2-b3".into(),
            issued_at: -5,
            expires_at: 1_796_121_775,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.starts_with(
                r#"{"credential_id":"01a2-b3","issued_at":-5,"expires_at":1796121775,"token":"#
            ),
            "{json}"
        );
    }
}
