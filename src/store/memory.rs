//! `MemoryStore`: the embedded, single-process store.
//!
//! Entries carry their own expiry (`tokio::time::Instant`, so tests can pause time). Memory stays
//! bounded by expiry: every write sweeps one shard's expired entries, round robin, so a shard is
//! swept at least once every `SHARDS` writes without a background task.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{CacheKey, CachedCredential, ClaimOutcome, JtiClaim, Store, StoreError};

/// Shards keep lock hold times short under concurrent exchanges.
const SHARDS: usize = 16;

struct Map<V> {
    shards: Vec<Mutex<HashMap<String, (Instant, V)>>>,
    hasher: RandomState,
    next_sweep: AtomicUsize,
}

impl<V: Clone> Map<V> {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            next_sweep: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, (Instant, V)>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Inserts unless a live entry exists; returns whether it inserted.
    fn insert_if_absent(&self, key: &str, value: V, ttl: Duration) -> bool {
        self.sweep_one();
        let now = Instant::now();
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        match shard.get(key) {
            Some((expires, _)) if *expires > now => false,
            _ => {
                shard.insert(key.to_string(), (now + ttl, value));
                true
            }
        }
    }

    fn insert(&self, key: &str, value: V, ttl: Duration) {
        self.sweep_one();
        let expires = Instant::now() + ttl;
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        shard.insert(key.to_string(), (expires, value));
    }

    fn get(&self, key: &str) -> Option<V> {
        let shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        shard
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, v)| v.clone())
    }

    fn sweep_one(&self) {
        let i = self.next_sweep.fetch_add(1, Ordering::Relaxed) % SHARDS;
        let now = Instant::now();
        let mut shard = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
        shard.retain(|_, (expires, _)| *expires > now);
    }

    fn len(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.values().filter(|(e, _)| *e > now).count()
            })
            .sum()
    }
}

pub struct MemoryStore {
    jtis: Map<()>,
    cache: Map<CachedCredential>,
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
        let cached = cache_key.and_then(|k| self.cache.get(&k.0));
        Ok((outcome, cached))
    }

    async fn cache_put(
        &self,
        key: &CacheKey,
        credential: &CachedCredential,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.cache.insert(&key.0, credential.clone(), ttl);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

    fn claim(key: &str, secs: u64) -> JtiClaim {
        JtiClaim {
            key: key.into(),
            ttl: Duration::from_secs(secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_jti_is_single_use_until_its_record_expires() {
        let store = MemoryStore::new();
        let c = claim("iss|abc", 120);
        assert_eq!(
            store.claim_and_lookup(Some(&c), None).await.unwrap().0,
            ClaimOutcome::Fresh
        );
        assert_eq!(
            store.claim_and_lookup(Some(&c), None).await.unwrap().0,
            ClaimOutcome::Replayed
        );
        tokio::time::advance(Duration::from_secs(119)).await;
        assert_eq!(
            store.claim_and_lookup(Some(&c), None).await.unwrap().0,
            ClaimOutcome::Replayed
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            store.claim_and_lookup(Some(&c), None).await.unwrap().0,
            ClaimOutcome::Fresh
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expired_records_are_swept_so_memory_stays_bounded() {
        let store = MemoryStore::new();
        for i in 0..1000 {
            store
                .claim_and_lookup(Some(&claim(&format!("k{i}"), 10)), None)
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        for i in 0..(SHARDS * 2) {
            store
                .claim_and_lookup(Some(&claim(&format!("n{i}"), 10)), None)
                .await
                .unwrap();
        }
        let stored: usize = store
            .jtis
            .shards
            .iter()
            .map(|s| s.lock().unwrap().len())
            .sum();
        assert!(
            stored <= SHARDS * 2,
            "expired records were not swept: {stored}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cached_credentials_expire_with_their_ttl() {
        let store = MemoryStore::new();
        let key = CacheKey("grant".into());
        let cred = CachedCredential {
            token: Secret::new("t"),
            credential_id: "c1".into(),
            issued_at: 0,
            expires_at: 60,
        };
        store
            .cache_put(&key, &cred, Duration::from_secs(60))
            .await
            .unwrap();
        let (_, hit) = store.claim_and_lookup(None, Some(&key)).await.unwrap();
        assert_eq!(hit.unwrap().credential_id, "c1");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(store
            .claim_and_lookup(None, Some(&key))
            .await
            .unwrap()
            .1
            .is_none());
    }
}
