//! The lifecycle state of `MemoryStore`: revocations and kill switches (a small map pruned on
//! write), GCRA arrival times per rate-limit key, and opaque credential records by digest.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

use super::Map;
use crate::domain::unix_now;
use crate::store::{gcra_step, RateDecision, RateLimit, Revocation};

pub(super) struct LifecycleState {
    revocations: Mutex<HashMap<String, Revocation>>,
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
            revocations: Mutex::new(HashMap::new()),
            gcra: Map::new(),
            gcra_lock: Mutex::new(()),
            epoch: Instant::now(),
            opaque: Map::new(),
        }
    }

    pub fn revocations(&self) -> Vec<Revocation> {
        let now = unix_now();
        let map = self.revocations.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|r| r.is_live(now)).cloned().collect()
    }

    pub fn put_revocation(&self, revocation: &Revocation) {
        let now = unix_now();
        let mut map = self.revocations.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, r| r.is_live(now));
        map.insert(revocation.id(), revocation.clone());
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

    use crate::store::{MemoryStore, RateLimit, Revocation, RevocationKind, Store};

    fn entry(value: &str, keep: i64) -> Revocation {
        let now = crate::domain::unix_now();
        Revocation {
            kind: RevocationKind::Credential,
            value: value.into(),
            created_at: now,
            block_until: now,
            keep_until: now + keep,
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
        let held = store.lifecycle.revocations.lock().unwrap().len();
        assert_eq!(held, 1, "the write pruned the expired entry");
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
