//! `grant.rate_limit` in the store: GCRA (the generic cell rate algorithm) per subject and
//! policy, and the answer of an exchange's first store round trip ([`Guarded`]).
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT). `limit` events per
//! `period` means one every `period / limit`, with a burst of up to `limit`. An event at `now`
//! passes when `max(TAT, now) + interval - period <= now`, and then moves TAT on by one
//! interval; a refused event changes nothing, and its `Retry-After` is exactly when the next one
//! would pass. No window boundary lets `2 × limit` through (the fixed window of `rate` can).
//! [`gcra_step`] is the arithmetic; the Redis store runs the same steps in Lua.

use std::time::Duration;

use super::revocation::Revocation;
use super::{CachedCredential, ClaimOutcome, RateDecision};

/// One `grant.rate_limit` check of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// The exchange's cluster slot (the counter lives next to its `jti` record).
    pub slot: String,
    /// A digest of policy and subject: each subject has its own budget per policy.
    pub key: String,
    pub limit: u32,
    pub period: Duration,
}

/// What the first round trip of an exchange answers.
#[derive(Debug, Clone)]
pub struct Guarded {
    /// Every live kill switch, and the live revocations of the credentials presented and of the
    /// cached one (a Redis Cluster deletes a revoked entry instead; the service checks them).
    pub revocations: Vec<Revocation>,
    /// Refused by the rate limit: no `jti` was claimed and the cache was not read.
    pub rate: RateDecision,
    /// One outcome per claim, in the order given (all `Fresh` when the rate limit refused).
    pub claims: Vec<ClaimOutcome>,
    pub cached: Option<CachedCredential>,
    /// The store appended the exchange's cache-hit audit event ([`super::HitRecord`]) to its
    /// audit stream in this round trip: `cached` is to be served, and the commit must not
    /// append the event again.
    pub hit_recorded: bool,
    /// The Redis revocation epoch read in this round trip, for the credential minted next
    /// (`CachedCredential::revocation_epoch`); `None` elsewhere.
    pub revocation_epoch: Option<String>,
}

/// One GCRA step at `now_ms` against the stored TAT (`None`: no recent events). Returns the
/// decision and, when allowed, the new TAT to store (it may be forgotten after `tat - now`).
pub fn gcra_step(
    tat_ms: Option<f64>,
    now_ms: f64,
    limit: u32,
    period: Duration,
) -> (RateDecision, Option<f64>) {
    let period_ms = period.as_secs_f64() * 1000.0;
    let interval = period_ms / f64::from(limit.max(1));
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat + interval;
    let allow_at = new_tat - period_ms;
    if now_ms < allow_at {
        let wait = Duration::from_millis((allow_at - now_ms).ceil() as u64);
        return (
            RateDecision {
                allowed: false,
                retry_after: wait.max(Duration::from_millis(1)),
            },
            None,
        );
    }
    (
        RateDecision {
            allowed: true,
            retry_after: Duration::ZERO,
        },
        Some(new_tat),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[f64], limit: u32, period_s: u64) -> Vec<RateDecision> {
        let mut tat = None;
        events
            .iter()
            .map(|&now| {
                let (d, next) = gcra_step(tat, now, limit, Duration::from_secs(period_s));
                if next.is_some() {
                    tat = next;
                }
                d
            })
            .collect()
    }

    #[test]
    fn a_burst_of_the_limit_passes_and_the_next_event_waits_one_interval() {
        let d = run(&[0.0, 0.0, 0.0, 0.0], 3, 60);
        assert!(d[..3].iter().all(|d| d.allowed));
        assert!(!d[3].allowed);
        assert_eq!(d[3].retry_after, Duration::from_secs(20));
    }

    #[test]
    fn refused_events_do_not_use_up_the_budget() {
        let d = run(&[0.0, 1.0, 2.0, 3.0, 1000.0], 1, 1);
        assert!(d[0].allowed && !d[1].allowed && !d[2].allowed && !d[3].allowed);
        assert!(d[4].allowed, "one interval after the first event");
    }

    #[test]
    fn retry_after_is_when_the_next_event_passes() {
        let d = run(&[0.0, 0.0, 400.0], 2, 1);
        assert!(!d[2].allowed);
        assert_eq!(d[2].retry_after, Duration::from_millis(100));
        let later = run(&[0.0, 0.0, 500.0], 2, 1);
        assert!(later[2].allowed);
    }
}
