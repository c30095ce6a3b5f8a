//! The negative cache of one issuer: kids that a refresh did not find, remembered for a while
//! so that tokens naming them are refused at once, without a fetch and without waiting for a
//! refresh in flight (a flood of bogus kids costs no fetches and holds no request up).
//!
//! Bounded: at most [`MAX_ENTRIES`] kids of at most [`MAX_KID_BYTES`]; when full, expired
//! entries go first, then the oldest. A kid that a later refresh does load is found in the
//! key set first, so an entry here never hides a real key.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Security invariant: an attacker choosing kids cannot grow the broker's memory without bound.
pub(crate) const MAX_ENTRIES: usize = 1024;
/// Longer kids are not remembered (they still cost no more than the cooldown allows).
const MAX_KID_BYTES: usize = 256;

#[derive(Debug)]
pub(crate) struct NegativeKids {
    ttl: Duration,
    /// kid -> when it was found unknown.
    seen: HashMap<String, Instant>,
}

impl NegativeKids {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            seen: HashMap::new(),
        }
    }

    /// True when `kid` was found unknown less than the TTL ago.
    pub(crate) fn contains(&self, kid: &str) -> bool {
        self.seen.get(kid).is_some_and(|at| at.elapsed() < self.ttl)
    }

    pub(crate) fn insert(&mut self, kid: &str) {
        if kid.len() > MAX_KID_BYTES || self.ttl.is_zero() {
            return;
        }
        if self.seen.len() >= MAX_ENTRIES && !self.seen.contains_key(kid) {
            let ttl = self.ttl;
            self.seen.retain(|_, at| at.elapsed() < ttl);
            if self.seen.len() >= MAX_ENTRIES {
                let oldest = self.seen.iter().min_by_key(|(_, at)| **at);
                if let Some(oldest) = oldest.map(|(k, _)| k.clone()) {
                    self.seen.remove(&oldest);
                }
            }
        }
        self.seen.insert(kid.to_string(), Instant::now());
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_entry_expires_after_its_ttl() {
        let mut kids = NegativeKids::new(Duration::from_secs(10));
        kids.insert("bogus");
        assert!(kids.contains("bogus"));
        assert!(!kids.contains("other"));
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(!kids.contains("bogus"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_never_holds_more_than_its_bound_and_drops_the_oldest() {
        let mut kids = NegativeKids::new(Duration::from_secs(600));
        kids.insert("first");
        tokio::time::sleep(Duration::from_millis(1)).await;
        for i in 0..MAX_ENTRIES * 3 {
            kids.insert(&format!("kid-{i}"));
        }
        assert_eq!(kids.len(), MAX_ENTRIES);
        assert!(!kids.contains("first"));
        assert!(kids.contains(&format!("kid-{}", MAX_ENTRIES * 3 - 1)));
    }

    #[tokio::test(start_paused = true)]
    async fn overlong_kids_are_not_remembered() {
        let mut kids = NegativeKids::new(Duration::from_secs(600));
        kids.insert(&"k".repeat(MAX_KID_BYTES + 1));
        assert_eq!(kids.len(), 0);
    }
}
