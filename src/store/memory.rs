//! `MemoryStore`: the embedded, single-process store.
//!
//! Holds the replay set, the credential cache, revocations and rate-limit windows of one
//! process. Entries carry their own expiry (`tokio::time::Instant`, so tests can pause time). Memory stays
//! bounded by expiry without a background task: a write sweeps its own shard's expired entries,
//! but at most once per `SWEEP_EVERY`, so the sweep's O(shard) cost is paid once a second per
//! shard rather than on every exchange. Reads never return an expired entry either way.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    CacheKey, CachedCredential, ClaimOutcome, JtiClaim, RateDecision, RateLimit, Revocation, Store,
    StoreError,
};

/// Shards keep lock hold times short under concurrent exchanges.
const SHARDS: usize = 16;

/// How often a shard may be swept of expired entries.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Longer than any process lives: where `now + ttl` would overflow `Instant` (a token signed
/// with an absurd `exp`), the entry lives this long instead.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// When an entry inserted `now` with `ttl` expires: at most [`FOREVER`] on, so the sum cannot
/// overflow (an `Instant` counts from boot, in `i64` seconds).
fn expiry(now: Instant, ttl: Duration) -> Instant {
    now + ttl.min(FOREVER)
}

struct Shard<V> {
    entries: HashMap<String, (Instant, V)>,
    next_sweep: Instant,
}

impl<V> Shard<V> {
    /// Drops expired entries if the shard has not been swept for `SWEEP_EVERY`.
    fn maybe_sweep(&mut self, now: Instant) {
        if now >= self.next_sweep {
            self.entries.retain(|_, (expires, _)| *expires > now);
            self.next_sweep = now + SWEEP_EVERY;
        }
    }
}

struct Map<V> {
    shards: Vec<Mutex<Shard<V>>>,
    hasher: RandomState,
}

impl<V: Clone> Map<V> {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        next_sweep: now + SWEEP_EVERY,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard<V>> {
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        // A panic while holding the lock cannot leave a map half-updated in a way that matters
        // here (each operation is one insert or lookup), so a poisoned lock is still usable.
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts unless a live entry exists; returns whether it inserted.
    fn insert_if_absent(&self, key: &str, value: V, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut shard = self.shard(key);
        shard.maybe_sweep(now);
        match shard.entries.get(key) {
            Some((expires, _)) if *expires > now => false,
            _ => {
                shard
                    .entries
                    .insert(key.to_string(), (expiry(now, ttl), value));
                true
            }
        }
    }

    fn remove(&self, key: &str) {
        self.shard(key).entries.remove(key);
    }

    fn insert(&self, key: &str, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut shard = self.shard(key);
        shard.maybe_sweep(now);
        shard
            .entries
            .insert(key.to_string(), (expiry(now, ttl), value));
    }

    /// Adds one to the live counter at `key` (a new one lives `ttl`); returns the count and the
    /// counter's remaining life.
    fn increment(&self, key: &str, ttl: Duration) -> (u64, Duration)
    where
        V: Into<u64> + From<u64>,
    {
        let now = Instant::now();
        let mut shard = self.shard(key);
        shard.maybe_sweep(now);
        let entry = shard
            .entries
            .entry(key.to_string())
            .or_insert((expiry(now, ttl), V::from(0)));
        if entry.0 <= now {
            *entry = (expiry(now, ttl), V::from(0));
        }
        let count = entry.1.clone().into() + 1;
        entry.1 = V::from(count);
        (count, entry.0 - now)
    }

    fn get(&self, key: &str) -> Option<V> {
        let now = Instant::now();
        self.shard(key)
            .entries
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, v)| v.clone())
    }

    fn len(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.entries.values().filter(|(e, _)| *e > now).count()
            })
            .sum()
    }

    /// Entries held, expired or not (what memory use is bounded by).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().entries.len())
            .sum()
    }
}

pub struct MemoryStore {
    jtis: Map<()>,
    cache: Map<CachedCredential>,
    revoked: Map<()>,
    windows: Map<u64>,
    /// Revocations, kill switches, GCRA state and opaque records (`lifecycle`).
    lifecycle: lifecycle::LifecycleState,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            jtis: Map::new(),
            cache: Map::new(),
            revoked: Map::new(),
            windows: Map::new(),
            lifecycle: lifecycle::LifecycleState::new(),
        }
    }

    /// Live replay records (for tests and metrics).
    pub fn remembered_jtis(&self) -> usize {
        self.jtis.len()
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn claim_and_lookup(
        &self,
        claim: Option<&JtiClaim>,
        cache_key: Option<&CacheKey>,
    ) -> Result<(ClaimOutcome, Option<CachedCredential>), StoreError> {
        let outcome = match claim {
            Some(c) if !self.jtis.insert_if_absent(&c.key, (), c.ttl) => ClaimOutcome::Replayed,
            _ => ClaimOutcome::Fresh,
        };
        let cached = cache_key.and_then(|k| self.cache.get(&k.id));
        Ok((outcome, cached))
    }

    async fn claim_all_and_lookup(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
    ) -> Result<(Vec<ClaimOutcome>, Option<CachedCredential>), StoreError> {
        // All or nothing: on a replay, take back the claims this call made.
        let mut outcomes = Vec::with_capacity(claims.len());
        for c in claims {
            match self.jtis.insert_if_absent(&c.key, (), c.ttl) {
                true => outcomes.push(ClaimOutcome::Fresh),
                false => outcomes.push(ClaimOutcome::Replayed),
            }
        }
        if outcomes.contains(&ClaimOutcome::Replayed) {
            for (c, o) in claims.iter().zip(&outcomes) {
                if *o == ClaimOutcome::Fresh {
                    self.jtis.remove(&c.key);
                }
            }
        }
        let cached = cache_key.and_then(|k| self.cache.get(&k.id));
        Ok((outcomes, cached))
    }

    async fn cache_put(
        &self,
        key: &CacheKey,
        credential: &CachedCredential,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.cache.insert(&key.id, credential.clone(), ttl);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn revoke(&self, credential_id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.revoked.insert(credential_id, (), ttl);
        Ok(())
    }

    async fn is_revoked(&self, credential_id: &str) -> Result<bool, StoreError> {
        Ok(self.revoked.get(credential_id).is_some())
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let (count, remaining) = self.windows.increment(key, window);
        Ok(RateDecision::from_count(count, limit, remaining))
    }

    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        Ok(self.lifecycle.revocations())
    }

    async fn revocations_for(&self, ids: &[String]) -> Result<Vec<Revocation>, StoreError> {
        Ok(self.lifecycle.revocations_for(ids))
    }

    async fn put_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        self.lifecycle.put_revocation(revocation);
        Ok(())
    }

    async fn rate_gcra(&self, limit: &RateLimit) -> Result<RateDecision, StoreError> {
        Ok(self.lifecycle.rate_gcra(limit))
    }

    async fn opaque_put(
        &self,
        digest: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.lifecycle
            .opaque
            .insert(digest, record.to_string(), ttl);
        Ok(())
    }

    async fn opaque_get(&self, digest: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lifecycle.opaque.get(digest))
    }

    async fn opaque_delete(&self, digest: &str) -> Result<(), StoreError> {
        self.lifecycle
            .opaque
            .insert(digest, String::new(), Duration::ZERO);
        Ok(())
    }
}

#[path = "memory_lifecycle.rs"]
mod lifecycle;

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
