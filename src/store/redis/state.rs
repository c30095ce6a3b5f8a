//! Noticing that Redis lost its data (`FLUSHALL`, or a restart without persistence).
//!
//! Consequence (documented in the README): the replay records of tokens that are still valid are
//! gone, so such a token can be exchanged once more until it expires; cached credentials and
//! revocations are gone too. Ferry cannot prevent that, but it makes it visible: a marker key
//! holds a random generation, set (`SET NX`) by whichever replica finds it missing first; each
//! check (`/readyz`, and a background check every few seconds) reads it, and a replica that
//! finds another generation than the one it saw before logs an error and counts a loss
//! (`ferry_store_state_lost_total`). Every replica notices, not only the first to look: the
//! others find the generation that one set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::RedisStore;
use crate::store::Store;

#[derive(Default)]
pub struct StateWatch {
    /// The generation this replica saw last (none before its first check).
    generation: Mutex<Option<String>>,
    losses: AtomicU64,
}

impl StateWatch {
    /// `current`: the marker's generation after this check (it sets one when there is none).
    pub fn observe(&self, current: &str) {
        let mut seen = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let lost = seen.as_deref().is_some_and(|before| before != current);
        if seen.as_deref() != Some(current) {
            *seen = Some(current.to_owned());
        }
        drop(seen);
        if lost {
            self.losses.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "redis lost its data (flushed, or restarted without persistence): replay records \
                 of still-valid tokens, cached credentials and revocations are gone"
            );
        }
    }

    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::Relaxed)
    }
}

/// The texts in a reply: one server's `INFO`, or the map of every Cluster node's.
pub fn texts(reply: redis::Value) -> Vec<String> {
    use redis::Value;
    match reply {
        Value::BulkString(bytes) => vec![String::from_utf8_lossy(&bytes).into_owned()],
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => vec![text],
        Value::Array(items) => items.into_iter().flat_map(texts).collect(),
        Value::Map(pairs) => pairs.into_iter().flat_map(|(_, v)| texts(v)).collect(),
        _ => Vec::new(),
    }
}

/// What Redis's `INFO memory` says about evictions that could drop Ferry's records: with a
/// memory limit and any policy but `noeviction`, Redis deletes keys under memory pressure (the
/// `volatile-*` policies pick among keys with a TTL: every replay record has one), and a token
/// whose replay record was evicted can be exchanged again. `None` when nothing can be evicted.
pub fn eviction_risk(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim_end().strip_prefix(name)?.strip_prefix(':'))
    };
    let limit: u64 = field("maxmemory")?.parse().ok()?;
    let policy = field("maxmemory_policy")?;
    (limit > 0 && policy != "noeviction").then(|| {
        format!(
            "redis may evict keys under memory pressure (maxmemory {limit}, maxmemory-policy \
             {policy}): an evicted replay record lets its token be exchanged again; set \
             maxmemory-policy noeviction"
        )
    })
}

impl RedisStore {
    /// Checks the marker every `every` until the store is dropped; never, if `every` is zero
    /// (`/readyz` still checks it).
    pub fn watch_state(self: &Arc<Self>, every: Duration) {
        if every.is_zero() {
            return;
        }
        let store: Weak<RedisStore> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                // Failures surface on /readyz and on exchanges; here only the marker matters.
                let _ = store.ping().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_zero_interval_turns_the_periodic_check_off() {
        let settings = super::super::RedisSettings {
            url: Some("redis://127.0.0.1:1".into()),
            ..Default::default()
        };
        let store = Arc::new(RedisStore::new(&settings).unwrap());
        store.watch_state(Duration::ZERO);
        assert_eq!(Arc::weak_count(&store), 0, "no task watches the store");
        store.watch_state(Duration::from_secs(3600));
        assert_eq!(Arc::weak_count(&store), 1, "control: a task watches it");
    }

    #[test]
    fn only_a_memory_limit_with_an_evicting_policy_is_a_risk() {
        let info = |limit: &str, policy: &str| {
            format!("# Memory\r\nused_memory:1000\r\nmaxmemory:{limit}\r\nmaxmemory_human:1M\r\nmaxmemory_policy:{policy}\r\n")
        };
        assert!(
            eviction_risk(&info("0", "volatile-lru")).is_none(),
            "no limit"
        );
        assert!(eviction_risk(&info("1048576", "noeviction")).is_none());
        let risk = eviction_risk(&info("1048576", "volatile-lru")).unwrap();
        assert!(
            risk.contains("volatile-lru") && risk.contains("noeviction"),
            "{risk}"
        );
        assert!(eviction_risk(&info("1048576", "allkeys-lru")).is_some());
        assert!(eviction_risk("# Memory\r\n").is_none(), "fields missing");
    }

    #[test]
    fn another_generation_counts_as_a_loss_only_after_one_was_seen() {
        let watch = StateWatch::default();
        watch.observe("g1");
        assert_eq!(watch.losses(), 0, "first contact");
        watch.observe("g1");
        assert_eq!(watch.losses(), 0, "the same data");
        watch.observe("g2");
        assert_eq!(watch.losses(), 1, "set anew, by this replica or another");
        watch.observe("g2");
        assert_eq!(watch.losses(), 1, "counted once");
    }
}
