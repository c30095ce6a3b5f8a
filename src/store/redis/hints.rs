//! Which grants this replica last saw cached in Redis, and until when: a hint, never a fact.
//!
//! Recording a cache hit in the first round trip (`store::HitRecord`) needs the hit's audit
//! event in that round trip's request; serializing it for every exchange would make every miss
//! pay for an event that is thrown away. So the service sends it only when this table says a
//! credential for the grant is probably cached: this replica cached one, or was served one, and
//! it has not expired. A wrong hint costs nothing but speed: the script still checks everything
//! itself (a false "cached" sends an unused event; a missed one takes the two-round-trip path
//! and teaches the table).
//!
//! Fixed size and lock free: each grant digest maps to one slot holding 32 bits of the digest
//! and the expiry (unix seconds, as `u32`), packed into one `AtomicU64`. Colliding grants
//! overwrite each other; no memory grows with the number of grants.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::UnixSeconds;
use crate::store::CacheKey;

const SLOTS: usize = 4096;

pub struct CacheHints {
    slots: Box<[AtomicU64]>,
}

impl Default for CacheHints {
    fn default() -> Self {
        CacheHints {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl CacheHints {
    /// A credential for `key` is in Redis until `expires_at` (as far as this replica knows).
    pub fn cached(&self, key: &CacheKey, expires_at: UnixSeconds) {
        let (slot, tag) = place(key);
        let until = expires_at.clamp(0, u32::MAX as i64) as u64;
        self.slots[slot].store((tag << 32) | until, Ordering::Relaxed);
    }

    /// Whether a credential for `key` is probably cached and alive at `now`.
    pub fn probably_cached(&self, key: &CacheKey, now: UnixSeconds) -> bool {
        let (slot, tag) = place(key);
        let packed = self.slots[slot].load(Ordering::Relaxed);
        packed >> 32 == tag && (packed & u32::MAX as u64) as i64 > now
    }
}

/// Slot and tag from the grant digest (hex): two different 32-bit pieces of it.
fn place(key: &CacheKey) -> (usize, u64) {
    let piece = |range: std::ops::Range<usize>| {
        key.id
            .get(range)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .unwrap_or(0)
    };
    (piece(0..8) as usize % SLOTS, piece(8..16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> CacheKey {
        CacheKey {
            slot: "s".into(),
            id: id.into(),
        }
    }

    #[test]
    fn a_grant_is_probably_cached_only_after_it_was_seen_and_until_it_expires() {
        let hints = CacheHints::default();
        let k = key("0123456789abcdef0123");
        assert!(!hints.probably_cached(&k, 100));
        hints.cached(&k, 200);
        assert!(hints.probably_cached(&k, 100));
        assert!(hints.probably_cached(&k, 199));
        assert!(!hints.probably_cached(&k, 200), "expired");
    }

    #[test]
    fn a_colliding_grant_replaces_the_hint_and_is_told_apart_by_its_tag() {
        let hints = CacheHints::default();
        // Same slot (first 8 hex digits), different tag.
        let (a, b) = (key("00000001aaaaaaaa"), key("00000001bbbbbbbb"));
        hints.cached(&a, 200);
        assert!(!hints.probably_cached(&b, 100));
        hints.cached(&b, 200);
        assert!(hints.probably_cached(&b, 100));
        assert!(
            !hints.probably_cached(&a, 100),
            "overwritten: a costs two round trips"
        );
    }
}
