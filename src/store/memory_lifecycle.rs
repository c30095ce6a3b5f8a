//! The lifecycle state of `MemoryStore`: revocations by id and kill switches (two maps, each
//! pruned on write), GCRA arrival times per rate-limit key, and opaque credential records by digest.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

use super::Map;
use crate::domain::unix_now;
use crate::store::{gcra_step, RateDecision, RateLimit, Revocation};

/// A poisoned lock still holds a whole map (every operation is one insert or scan).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) struct LifecycleState {
    /// Revocations of a credential or an exchange, by [`Revocation::id`].
    points: Mutex<HashMap<String, Revocation>>,
    /// Kill switches, by [`Revocation::id`]: few, and read whole by every exchange.
    switches: Mutex<HashMap<String, Revocation>>,
    /// Theoretical arrival time in ms since `epoch`, per key.
    gcra: Map<f64>,
    /// Serialises GCRA steps so a read-modify-write of one key is atomic.
    gcra_lock: Mutex<()>,
    epoch: Instant,
    pub opaque: Map<String>,
}

impl LifecycleState {
    pub fn new() -> Self {
        Self {
            points: Mutex::new(HashMap::new()),
            switches: Mutex::new(HashMap::new()),
            gcra: Map::new(),
            gcra_lock: Mutex::new(()),
            epoch: Instant::now(),
            opaque: Map::new(),
        }
    }

    pub fn revocations(&self) -> Vec<Revocation> {
        let now = unix_now();
        let points = lock(&self.points);
        let switches = lock(&self.switches);
        let all = points.values().chain(switches.values());
        all.filter(|r| r.is_live(now)).cloned().collect()
    }

    /// Every live kill switch, and the live revocations among `ids`.
    pub fn revocations_for(&self, ids: &[String]) -> Vec<Revocation> {
        let now = unix_now();
        let points = lock(&self.points);
        let named = ids.iter().filter_map(|id| points.get(id));
        let switches = lock(&self.switches);
        let all = switches.values().chain(named);
        all.filter(|r| r.is_live(now)).cloned().collect()
    }

    /// Stores `revocation` in its list (pruned of expired entries first).
    pub fn put_revocation(&self, revocation: &Revocation) {
        let now = unix_now();
        let map = match revocation.kind.is_kill_switch() {
            true => &self.switches,
            false => &self.points,
        };
        let mut list = lock(map);
        list.retain(|_, r| r.is_live(now));
        list.insert(revocation.id(), revocation.clone());
    }

    pub fn rate_gcra(&self, limit: &RateLimit) -> RateDecision {
        let key = format!("{}:{}", limit.slot, limit.key);
        let _serial = self.gcra_lock.lock().unwrap_or_else(|p| p.into_inner());
        let now_ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
        let (decision, next) = gcra_step(self.gcra.get(&key), now_ms, limit.limit, limit.period);
        if let Some(tat) = next {
            let keep = std::time::Duration::from_secs_f64(((tat - now_ms) / 1000.0).max(0.001));
            self.gcra.insert(&key, tat, keep);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::domain::Secret;
    use crate::store::{
        CacheKey, CachedCredential, MemoryStore, RateLimit, Revocation, RevocationKind, Store,
    };

    fn entry(value: &str, keep: i64) -> Revocation {
        let now = crate::domain::unix_now();
        Revocation {
            kind: RevocationKind::Credential,
            value: value.into(),
            created_at: now,
            block_until: now,
            keep_until: now + keep,
            issued_through: None,
            reason: None,
            by: None,
        }
    }

    #[tokio::test]
    async fn expired_revocations_are_neither_answered_nor_kept() {
        let store = MemoryStore::new();
        store.put_revocation(&entry("old", -1)).await.unwrap();
        store.put_revocation(&entry("live", 60)).await.unwrap();
        let live = store.revocations().await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].value, "live");
        let held = store.lifecycle.points.lock().unwrap().len();
        assert_eq!(held, 1, "the write pruned the expired entry");
    }

    #[tokio::test]
    async fn revocations_by_id_are_looked_up_and_a_cache_hit_comes_with_its_own() {
        let store = MemoryStore::new();
        let switch = Revocation {
            kind: RevocationKind::Policy,
            ..entry("deploy", 60)
        };
        store.put_revocation(&switch).await.unwrap();
        for i in 0..300 {
            store
                .put_revocation(&entry(&format!("c{i}"), 60))
                .await
                .unwrap();
        }
        assert_eq!(store.revocations().await.unwrap().len(), 301);
        let values = |list: Vec<Revocation>| {
            let mut v: Vec<String> = list.into_iter().map(|r| r.value).collect();
            v.sort();
            v
        };
        let ids = ["credential:c7".to_string(), "credential:nope".into()];
        let named = store.revocations_for(&ids).await.unwrap();
        assert_eq!(values(named), ["c7", "deploy"]);
        assert_eq!(
            values(store.revocations_for(&[]).await.unwrap()),
            ["deploy"]
        );

        let key = CacheKey {
            slot: "s".into(),
            id: "g".into(),
        };
        let cached = |id: &str| CachedCredential {
            credential_id: id.into(),
            issued_at: 0,
            expires_at: 60,
            token: Secret::new("t"),
            exchange_id: Some(format!("ex-{id}")),
            revocation_epoch: None,
        };
        // What an exchange's first round trip answers for this cache entry.
        let hit = || async {
            let g = store
                .claim_guarded(&[], Some(&key), None, None, &[])
                .await
                .unwrap();
            (g.cached.map(|c| c.credential_id), values(g.revocations))
        };
        let ttl = Duration::from_secs(60);
        store.cache_put(&key, &cached("a"), ttl).await.unwrap();
        let control = (Some("a".to_string()), vec!["deploy".to_string()]);
        assert_eq!(hit().await, control, "control: cached, not revoked");
        store.put_revocation(&entry("a", 60)).await.unwrap();
        let (_, revocations) = hit().await;
        assert_eq!(
            revocations,
            ["a", "deploy"],
            "revoked by id: comes with the hit"
        );
        store.cache_put(&key, &cached("b"), ttl).await.unwrap();
        let by_exchange = Revocation {
            kind: RevocationKind::Exchange,
            ..entry("ex-b", 60)
        };
        store.put_revocation(&by_exchange).await.unwrap();
        let (_, revocations) = hit().await;
        assert_eq!(revocations, ["deploy", "ex-b"], "revoked by its exchange");
    }

    #[tokio::test(start_paused = true)]
    async fn a_gcra_budget_refills_one_interval_at_a_time() {
        let store = MemoryStore::new();
        let limit = RateLimit {
            slot: "s".into(),
            key: "k".into(),
            limit: 2,
            period: Duration::from_secs(10),
        };
        assert!(store.rate_gcra(&limit).await.unwrap().allowed);
        assert!(store.rate_gcra(&limit).await.unwrap().allowed);
        let refused = store.rate_gcra(&limit).await.unwrap();
        assert_eq!(
            (refused.allowed, refused.retry_after),
            (false, Duration::from_secs(5))
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(store.rate_gcra(&limit).await.unwrap().allowed);
        assert!(!store.rate_gcra(&limit).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn a_deleted_opaque_record_is_gone() {
        let store = MemoryStore::new();
        store
            .opaque_put("d", "r", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.opaque_get("d").await.unwrap().as_deref(), Some("r"));
        store.opaque_delete("d").await.unwrap();
        assert_eq!(store.opaque_get("d").await.unwrap(), None);
    }
}
