//! The answer of a rate-limit check, shared by every store.
//!
//! The limiter is a fixed window per key: the first event of a window starts it, at most `limit`
//! events pass until it ends. Simple enough to be one atomic script in Redis, and its worst case
//! (a burst of `2 × limit` across a window boundary) is documented rather than hidden.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// When refused: how long until the window resets. Zero when allowed.
    pub retry_after: Duration,
}

impl RateDecision {
    /// The decision for the `count`-th event of a window that ends in `remaining`.
    pub fn from_count(count: u64, limit: u32, remaining: Duration) -> RateDecision {
        let allowed = count <= u64::from(limit);
        RateDecision {
            allowed,
            retry_after: if allowed { Duration::ZERO } else { remaining },
        }
    }
}
