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
