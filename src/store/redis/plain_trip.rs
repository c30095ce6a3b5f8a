//! The first round trip of a plain exchange on one server: plain commands pipelined instead of
//! the `GUARDED` script. Claim the `jti` with `SET NX PX`, read the cached credential, read the
//! kill switches, then read the revocation epoch and the revocations of the presented
//! credentials in one `HMGET`. The same commands cost `redis-server` two to three times the
//! instructions in the script and a third more in a `MULTI`/`EXEC` transaction (callgrind,
//! `benches/redis_instructions.sh`), so a plain exchange goes without either.
//!
//! Plain commands cannot read a record and then look up its ids, which is how `GUARDED` checks
//! that a cached credential was not revoked. The **revocation epoch** stands in for that:
//!
//! - `~epoch` is a field of the revocations hash holding a random value. Every revocation by
//!   id replaces it (`REVOKE`), in the same script that stores the revocation.
//! - An exchange reads the epoch in its first round trip, and the credential it mints is cached
//!   with that value ([`CachedCredential::revocation_epoch`]).
//! - A cached record whose epoch is still the current one was minted after the last
//!   revocation by id had been stored, so no revocation names it. Ids are unguessable and a
//!   revocation names a credential or exchange that exists. Such a record is served without
//!   reading its ids.
//! - A record with any other epoch, or none, is not served from this path: the exchange mints
//!   afresh. This costs a signature, not a round trip; after a revocation by id, each cached
//!   grant is minted once more. (Under `hits_in_one_round_trip`, a replica that has seen the
//!   grant cached takes `GUARDED` instead, which checks a record by its ids.)
//! - The epoch is random, not a counter. If the hash is lost (a flush, an eviction), no epoch
//!   is read, nothing is served from this path, and the next credential cached carries a new
//!   value that its commit sets with `HSETNX` (`commit`). A revocation that lands first wins
//!   the field, and then that record is simply never served. Nothing cached before the loss
//!   carries the new value, so nothing is served unchecked.
//! - A Cluster goes by the same epoch (`lifecycle`): its first script cannot read the
//!   revocations hash (another slot), so the epoch is read beside it, and a record is served
//!   only under the epoch it carries.
//!
//! **Why no transaction.** Other clients' commands may run between these. What keeps that
//! safe is the order: the record is read *before* the epoch. A record served was in the cache
//! when it was read and, the epoch being unchanged when read afterwards, no revocation by id
//! was stored between its minting and that later instant. So the exchange takes effect at the
//! `HMGET`, with everything it read still true then except kill switches set in the instant
//! between the `HGETALL` and the `HMGET`. Those are in the same place as a kill switch set
//! while a transaction's answer is on its way back: an exchange already past its reads
//! completes, one that starts after the write is refused. The `jti` claim is a write that
//! needs no snapshot.
//!
//! `GUARDED` stays for what needs a decision inside Redis: several claims that are all or
//! nothing, rate limits (GCRA on the server's clock), and recording a likely hit in one round
//! trip.

use redis::Value;

use super::{decode, millis, RedisStore};
use crate::store::{
    CacheKey, CachedCredential, ClaimOutcome, Guarded, HitRecord, JtiClaim, RateDecision,
    RateLimit, StoreError,
};

/// The revocations hash's field that holds the revocation epoch (the scripts of `lifecycle`
/// spell it out; a test there checks they agree).
pub(super) const EPOCH_FIELD: &str = "~epoch";

/// A new revocation epoch: unique, never reused.
pub(super) fn new_epoch() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Whether an exchange's first round trip can be the plain one: one server, at most one
/// `jti` claim, no rate limit, and no hit to record in the same round trip.
pub(super) fn takes_plain_trip(
    cluster: bool,
    claims: &[JtiClaim],
    rate: Option<&RateLimit>,
    hit: Option<&HitRecord<'_>>,
) -> bool {
    !cluster && claims.len() <= 1 && rate.is_none() && hit.is_none()
}

impl RedisStore {
    /// The plain first round trip (see the module documentation).
    pub(super) async fn plain_first_trip(
        &self,
        claim: Option<&JtiClaim>,
        cache_key: Option<&CacheKey>,
        revocation_ids: &[String],
    ) -> Result<Guarded, StoreError> {
        // Order matters (see the module documentation): the record is read before the epoch
        // that vouches for it, and the kill switches last but one.
        let mut pipe = redis::pipe();
        if let Some(c) = claim {
            pipe.cmd("SET")
                .arg(self.keys.jti(c))
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(millis(c.ttl));
        }
        if let Some(k) = cache_key {
            pipe.cmd("GET").arg(self.keys.credential(k));
        }
        pipe.cmd("HGETALL").arg(self.keys.kill_switches());
        pipe.cmd("HMGET")
            .arg(self.keys.revocations())
            .arg(EPOCH_FIELD)
            .arg(revocation_ids);
        let pipe = &pipe;
        let replies: Vec<Value> = self
            .run("claim", |mut conn| async move {
                pipe.query_async(&mut conn).await
            })
            .await?;
        let expected = 2 + usize::from(claim.is_some()) + usize::from(cache_key.is_some());
        if replies.len() != expected {
            return Err(StoreError::Unavailable(format!(
                "redis claim: {} replies to {expected} commands",
                replies.len()
            )));
        }
        let mut replies = replies.into_iter();
        let mut next = || replies.next().unwrap_or(Value::Nil);
        let unreadable = |e: redis::ParsingError| {
            StoreError::Unavailable(format!("redis claim: unreadable reply: {e}"))
        };
        // A server error in any reply has already failed the query (no `ignore_errors`).
        let claims = match claim {
            None => Vec::new(),
            Some(_) => vec![claim_outcome(next())],
        };
        let record = match cache_key {
            Some(_) => decode(next()),
            None => None,
        };
        let mut flat: Vec<String> = redis::from_redis_value(next()).map_err(unreadable)?;
        let found: Vec<Option<String>> = redis::from_redis_value(next()).map_err(unreadable)?;
        let (epoch, named) = super::lifecycle::epoch_and_pairs(revocation_ids, found)?;
        flat.extend(named);
        let cached = cache_key.zip(record).and_then(|(key, record)| {
            // Seen cached: under `hits_in_one_round_trip`, this replica's next exchange of the
            // grant takes `GUARDED`, which can check a record of another epoch by its ids.
            self.seen_cached(key, record.expires_at);
            serves(&record, epoch.as_deref()).then_some(record)
        });
        Ok(Guarded {
            revocations: super::lifecycle::parse_revocations(flat)?,
            rate: RateDecision {
                allowed: true,
                retry_after: std::time::Duration::ZERO,
            },
            claims,
            cached,
            hit_recorded: false,
            revocation_epoch: epoch,
        })
    }
}

/// `SET NX`'s answer: OK when it set the key, nil when the key was there. Anything else is not an
/// answer to trust, so it counts as replayed (fails closed).
fn claim_outcome(reply: Value) -> ClaimOutcome {
    match reply {
        Value::Okay => ClaimOutcome::Fresh,
        _ => ClaimOutcome::Replayed,
    }
}

/// Whether the plain trip may serve `record`, given the epoch it read after the record: only a
/// record of the current epoch, and never without one.
pub(super) fn serves(record: &CachedCredential, epoch: Option<&str>) -> bool {
    epoch.is_some() && record.revocation_epoch.as_deref() == epoch
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn claim() -> JtiClaim {
        JtiClaim {
            slot: "s".into(),
            key: "k".into(),
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn only_a_plain_exchange_on_one_server_takes_the_plain_trip() {
        let one = [claim()];
        let two = [claim(), claim()];
        assert!(takes_plain_trip(false, &one, None, None));
        assert!(takes_plain_trip(false, &[], None, None));
        assert!(!takes_plain_trip(true, &one, None, None), "a Cluster");
        assert!(!takes_plain_trip(false, &two, None, None), "all or nothing");
        let rate = RateLimit {
            slot: "s".into(),
            key: "r".into(),
            limit: 1,
            period: Duration::from_secs(1),
        };
        assert!(!takes_plain_trip(false, &one, Some(&rate), None), "GCRA");
        let hit = HitRecord {
            event_head: "{",
            now: 0,
            ttl_seconds: 60,
        };
        assert!(
            !takes_plain_trip(false, &one, None, Some(&hit)),
            "a likely hit"
        );
    }

    #[test]
    fn only_a_record_of_the_epoch_read_after_it_is_served() {
        let record = |epoch: Option<&str>| CachedCredential {
            credential_id: "c".into(),
            issued_at: 0,
            expires_at: 60,
            token: crate::domain::Secret::new("t"),
            exchange_id: None,
            revocation_epoch: epoch.map(str::to_string),
        };
        assert!(serves(&record(Some("e1")), Some("e1")));
        assert!(!serves(&record(Some("e0")), Some("e1")), "an old epoch");
        assert!(!serves(&record(None), Some("e1")), "no epoch on the record");
        assert!(!serves(&record(Some("e1")), None), "no epoch read");
        assert!(!serves(&record(None), None), "none on either side");
    }

    #[test]
    fn only_an_ok_from_set_nx_claims_a_jti() {
        assert_eq!(claim_outcome(Value::Okay), ClaimOutcome::Fresh);
        assert_eq!(claim_outcome(Value::Nil), ClaimOutcome::Replayed);
        assert_eq!(claim_outcome(Value::Int(1)), ClaimOutcome::Replayed);
        let text = Value::SimpleString("QUEUED".into());
        assert_eq!(claim_outcome(text), ClaimOutcome::Replayed);
    }

    #[test]
    fn epochs_are_never_reused() {
        let a = new_epoch();
        assert_ne!(a, new_epoch());
        assert!(!a.contains('"') && !a.is_empty());
    }
}
