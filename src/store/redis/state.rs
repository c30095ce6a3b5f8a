//! Noticing that Redis lost its data (`FLUSHALL`, or a restart without persistence).
//!
//! Consequence (documented in the README): the replay records of tokens that are still valid are
//! gone, so such a token can be exchanged once more until it expires; cached credentials and
//! revocations are gone too. Ferry cannot prevent that, but it makes it visible: a marker key
//! is set on first contact, and each check (`/readyz`, and a background check every few seconds)
//! that finds it missing logs an error and counts a loss (`ferry_store_state_lost_total`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::RedisStore;
use crate::store::Store;

#[derive(Default)]
pub struct StateWatch {
    /// Whether this replica has seen the marker (or set it) before.
    seen: AtomicBool,
    losses: AtomicU64,
}

impl StateWatch {
    /// `present`: whether the marker was there before this check (it is there after it).
    pub fn observe(&self, present: bool) {
        let seen_before = self.seen.swap(true, Ordering::Relaxed);
        if seen_before && !present {
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
    fn a_missing_marker_counts_as_a_loss_only_after_it_was_seen() {
        let watch = StateWatch::default();
        watch.observe(false);
        assert_eq!(watch.losses(), 0, "first contact sets the marker");
        watch.observe(true);
        watch.observe(false);
        assert_eq!(watch.losses(), 1);
    }
}
