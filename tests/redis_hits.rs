//! Cache hits recorded in the first round trip (`store::HitRecord`) against a real Redis: the
//! script appends a hit's audit event only when the broker is sure to serve that hit, and
//! decides reuse exactly as `CachedCredential::reusable` does.

mod common;

use std::time::Duration;

use common::redis_server::{shared_redis, store_at, store_with, unique_prefix};
use ferry::domain::{unix_now, Secret};
use ferry::store::{
    CacheKey, CachedCredential, HitRecord, JtiClaim, RateLimit, RedisStore, Revocation,
    RevocationKind, Store,
};
use serde_json::Value;

const HEAD: &str =
    r#"{"time":"t","exchange_id":"x","decision":"allow","reason":"granted","cache":"hit""#;

struct Fixture {
    store: RedisStore,
    url: String,
    prefix: String,
    _server: Option<common::redis_server::RedisServer>,
}

fn fixture() -> Fixture {
    let (url, server) = shared_redis();
    let prefix = unique_prefix();
    Fixture {
        store: store_with(&url, &prefix, true),
        url,
        prefix,
        _server: server,
    }
}

fn key(id: &str) -> CacheKey {
    CacheKey {
        slot: "tag".into(),
        id: format!("{id:0>64}"),
    }
}

fn claim(jti: &str) -> JtiClaim {
    JtiClaim {
        slot: "tag".into(),
        key: format!("iss|{jti}"),
        ttl: Duration::from_secs(60),
    }
}

fn credential(id: &str, expires_at: i64) -> CachedCredential {
    CachedCredential {
        token: Secret::new("eyJ.credential.sig"),
        exchange_id: None,
        revocation_epoch: None,
        credential_id: id.into(),
        issued_at: unix_now(),
        expires_at,
    }
}

impl Fixture {
    async fn stream(&self) -> Vec<Value> {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(format!("{}audit", self.prefix))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        entries
            .into_iter()
            .flat_map(|(_, fields)| fields)
            .map(|(_, json)| serde_json::from_str(&json).expect("every entry is JSON"))
            .collect()
    }

    /// Caches `credential` under `key` and asks for it as an exchange with `ttl_seconds` would.
    async fn try_hit(&self, k: &CacheKey, jti: &str, ttl_seconds: u64) -> bool {
        self.try_hit_at(k, jti, ttl_seconds, unix_now()).await
    }

    async fn try_hit_at(&self, k: &CacheKey, jti: &str, ttl_seconds: u64, now: i64) -> bool {
        let hit = HitRecord {
            event_head: HEAD,
            now,
            ttl_seconds,
        };
        let guarded = self
            .store
            .claim_guarded(&[claim(jti)], Some(k), None, Some(&hit), &[])
            .await
            .unwrap();
        guarded.hit_recorded
    }
}

#[tokio::test]
async fn the_script_records_a_hit_exactly_when_the_broker_would_reuse_the_credential() {
    let f = fixture();
    let now = unix_now();
    // Around every boundary of `reusable` for a 900 s grant (and a 1 s one).
    let cases = [
        (900, 900),
        (901, 900),
        (450, 900),
        (449, 900),
        (1, 900),
        (0, 900),
        (1, 1),
        (0, 1),
        (-5, 900),
    ];
    let mut recorded = 0;
    for (i, (remaining, ttl)) in cases.into_iter().enumerate() {
        let k = key(&format!("{i}"));
        let c = credential(&format!("cred-{i}"), now + remaining);
        f.store
            .cache_put(&k, &c, Duration::from_secs(60))
            .await
            .unwrap();
        // The broker sends its `now`: both sides decide on the same second.
        let expected = c.reusable(ttl, now);
        let got = f.try_hit_at(&k, &format!("j{i}"), ttl, now).await;
        assert_eq!(got, expected, "remaining {remaining} s of a {ttl} s grant");
        recorded += usize::from(got);
    }
    assert_eq!(
        recorded, 3,
        "900 and 450 of 900 s, and 1 of 1 s, are the reusable ones"
    );
    let events = f.stream().await;
    assert_eq!(
        events.len(),
        recorded,
        "one event per recorded hit, none otherwise"
    );
    let first = &events[0];
    assert_eq!(first["credential_id"], "cred-0");
    assert_eq!(first["credential_expires_at"], now + 900);
    assert_eq!(first["cache"], "hit");
    assert_eq!(first["decision"], "allow");
}

#[tokio::test]
async fn no_hit_is_recorded_on_a_replay_a_refused_rate_step_or_any_live_revocation() {
    let f = fixture();
    let k = key("r");
    f.store
        .cache_put(
            &k,
            &credential("c1", unix_now() + 900),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(
        f.try_hit(&k, "once", 900).await,
        "the hit itself is recorded"
    );
    assert!(
        !f.try_hit(&k, "once", 900).await,
        "a replayed jti records nothing"
    );

    let limit = RateLimit {
        slot: "tag".into(),
        key: "p-s".into(),
        limit: 1,
        period: Duration::from_secs(60),
    };
    let hit = HitRecord {
        event_head: HEAD,
        now: unix_now(),
        ttl_seconds: 900,
    };
    for (jti, expected_allowed) in [("r1", true), ("r2", false)] {
        let g = f
            .store
            .claim_guarded(&[claim(jti)], Some(&k), Some(&limit), Some(&hit), &[])
            .await
            .unwrap();
        assert_eq!(g.rate.allowed, expected_allowed);
        assert_eq!(g.hit_recorded, expected_allowed, "{jti}");
    }

    // Any live revocation, even one that does not touch this credential, leaves the hit to
    // the broker's own checks (and the commit).
    let now = unix_now();
    f.store
        .put_revocation(&Revocation {
            kind: RevocationKind::Subject,
            value: "someone-else".into(),
            created_at: now,
            block_until: now + 60,
            keep_until: now + 60,
            issued_through: None,
            reason: None,
            by: None,
        })
        .await
        .unwrap();
    assert!(!f.try_hit(&k, "after-revocation", 900).await);
    assert_eq!(
        f.stream().await.len(),
        2,
        "the first hit and the allowed rate step only"
    );
}

#[tokio::test]
async fn a_replica_offers_hits_only_for_grants_it_saw_cached() {
    let f = fixture();
    let other = store_with(&f.url, &f.prefix, true);
    let off = store_at(&f.url, &f.prefix);
    let k = key("h");
    let now = unix_now();
    assert!(!f.store.records_hits_first(&k, now), "never seen");
    f.store
        .cache_put(&k, &credential("c", now + 900), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        !f.store.records_hits_first(&k, now),
        "a bare cache put is not an exchange's commit"
    );
    // Seen through an exchange's lookup: now offered, on that replica only, until it expires.
    f.store
        .claim_guarded(&[claim("seen")], Some(&k), None, None, &[])
        .await
        .unwrap();
    assert!(f.store.records_hits_first(&k, now));
    assert!(!f.store.records_hits_first(&k, now + 900), "expired");
    assert!(
        !other.records_hits_first(&k, now),
        "the other replica has not seen it"
    );
    off.claim_guarded(&[claim("seen-off")], Some(&k), None, None, &[])
        .await
        .unwrap();
    assert!(
        !off.records_hits_first(&k, now),
        "without hits_in_one_round_trip, never"
    );
}
