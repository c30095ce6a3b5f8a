//! `RedisStore`'s lifecycle state against a real Redis (single server and Cluster): two store
//! instances stand for two replicas. Revocations, GCRA budgets and opaque records written by
//! one are seen by the other, and `claim_guarded` answers all of it in one call.

mod common;

use std::time::Duration;

use common::redis_server::{
    replicas_at, shared_redis, store_at, unique_prefix, RedisCluster, RedisServer,
};
use ferry::domain::unix_now;
use ferry::domain::Secret;
use ferry::store::{
    CacheKey, CachedCredential, ClaimOutcome, HitRecord, JtiClaim, RateLimit, RedisStore,
    Revocation, RevocationKind, Store,
};

fn revocation(kind: RevocationKind, value: &str, keep_for: i64) -> Revocation {
    let now = unix_now();
    Revocation {
        kind,
        value: value.into(),
        created_at: now,
        block_until: now + keep_for,
        keep_until: now + keep_for,
        issued_through: None,
        reason: None,
        by: Some("test".into()),
    }
}

fn limit(slot: &str) -> RateLimit {
    RateLimit {
        slot: slot.into(),
        key: "policy-subject".into(),
        limit: 2,
        period: Duration::from_secs(60),
    }
}

/// What both backends must do; `a` and `b` share one Redis and prefix.
/// A credential as an exchange caches it: minted now, for a minute, with the revocation epoch
/// its first round trip read.
fn cached(id: &str, exchange: &str, epoch: Option<String>) -> CachedCredential {
    CachedCredential {
        credential_id: id.into(),
        issued_at: unix_now(),
        expires_at: unix_now() + 60,
        token: Secret::new("eyJ.cached.jwt"),
        exchange_id: Some(exchange.into()),
        revocation_epoch: epoch,
    }
}

/// The revocation epoch an exchange's first round trip reads now.
async fn current_epoch(store: &RedisStore) -> Option<String> {
    store
        .claim_guarded(&[], None, None, None, &[])
        .await
        .unwrap()
        .revocation_epoch
}

async fn replicas_share_lifecycle_state(a: &RedisStore, b: &RedisStore) {
    a.put_revocation(&revocation(RevocationKind::Policy, "deploy", 60))
        .await
        .unwrap();
    a.put_revocation(&revocation(RevocationKind::Credential, "gone", -1))
        .await
        .unwrap();
    let seen = b.revocations().await.unwrap();
    assert_eq!(seen.len(), 1, "expired entries are not answered: {seen:?}");
    assert_eq!(seen[0].value, "deploy");

    let claim = JtiClaim {
        slot: "tag-1".into(),
        key: "iss|j1".into(),
        ttl: Duration::from_secs(60),
    };
    let first = a
        .claim_guarded(
            std::slice::from_ref(&claim),
            None,
            Some(&limit("tag-1")),
            None,
            &[],
        )
        .await
        .unwrap();
    assert!(first.rate.allowed);
    assert_eq!(first.claims, [ClaimOutcome::Fresh]);
    assert_eq!(first.revocations.len(), 1, "the list comes with the claim");
    assert!(b.rate_gcra(&limit("tag-1")).await.unwrap().allowed);
    let refused = b
        .claim_guarded(
            std::slice::from_ref(&claim),
            None,
            Some(&limit("tag-1")),
            None,
            &[],
        )
        .await
        .unwrap();
    assert!(!refused.rate.allowed, "one budget for both replicas");
    assert!((29_000..=30_000).contains(&(refused.rate.retry_after.as_millis() as u64)));
    assert_eq!(
        refused.claims,
        [ClaimOutcome::Fresh],
        "a refused step claims nothing"
    );
    let replay = b
        .claim_guarded(std::slice::from_ref(&claim), None, None, None, &[])
        .await
        .unwrap();
    assert_eq!(replay.claims, [ClaimOutcome::Replayed]);

    a.opaque_put("d1", "{\"digest\":\"d1\"}", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        b.opaque_get("d1").await.unwrap().as_deref(),
        Some("{\"digest\":\"d1\"}")
    );
    b.opaque_delete("d1").await.unwrap();
    assert_eq!(a.opaque_get("d1").await.unwrap(), None);

    // A kill switch set again after its entry expired: writing a switch prunes the expired
    // ones, but never the one it is setting.
    let switch = |keep_for| revocation(RevocationKind::Subject, "repo:evil/*", keep_for);
    let switches = || async {
        let mut v: Vec<String> = b
            .revocations_for(&[])
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.value)
            .collect();
        v.sort();
        v
    };
    a.put_revocation(&revocation(RevocationKind::Subject, "repo:old/*", -1))
        .await
        .unwrap();
    a.put_revocation(&switch(-1)).await.unwrap();
    assert_eq!(switches().await, ["deploy"], "both expired");
    b.put_revocation(&switch(60)).await.unwrap();
    assert_eq!(
        switches().await,
        ["deploy", "repo:evil/*"],
        "blocked again, and live"
    );
}

/// Revocations by id are looked up, not listed: an exchange's first round trip and an
/// introspection get the kill switches and the entries they name, however many credentials are
/// revoked. A cached credential revoked (by id or by its exchange) is not served plainly: the
/// revocation moved the epoch on. On a single server (`one_server`) the script that checks a
/// record by its ids returns it with the revocation that names it; a Cluster also deletes the
/// entry.
async fn revocations_by_id_are_looked_up_and_cover_cached_credentials(
    a: &RedisStore,
    b: &RedisStore,
    one_server: bool,
) {
    a.put_revocation(&revocation(RevocationKind::Subject, "repo:evil/*", 60))
        .await
        .unwrap();
    // Concurrently: on a Cluster each revocation waits out the exchanges in flight.
    let many: Vec<Revocation> = (0..300)
        .map(|i| revocation(RevocationKind::Credential, &format!("c{i}"), 60))
        .collect();
    for stored in futures_util::future::join_all(many.iter().map(|r| a.put_revocation(r))).await {
        stored.unwrap();
    }
    a.put_revocation(&revocation(RevocationKind::Exchange, "ex-9", 60))
        .await
        .unwrap();
    assert_eq!(
        b.revocations().await.unwrap().len(),
        302,
        "the listing has all"
    );
    let values = |list: Vec<Revocation>| {
        let mut v: Vec<String> = list.into_iter().map(|r| r.value).collect();
        v.sort();
        v
    };
    assert_eq!(
        values(b.revocations_for(&[]).await.unwrap()),
        ["repo:evil/*"]
    );
    let ids = [
        "credential:c7".to_string(),
        "exchange:ex-9".into(),
        "credential:nope".into(),
    ];
    assert_eq!(
        values(b.revocations_for(&ids).await.unwrap()),
        ["c7", "ex-9", "repo:evil/*"]
    );
    let claim = JtiClaim {
        slot: "tag-2".into(),
        key: "iss|j2".into(),
        ttl: Duration::from_secs(60),
    };
    let guarded = b
        .claim_guarded(std::slice::from_ref(&claim), None, None, None, &ids[..1])
        .await
        .unwrap();
    assert_eq!(values(guarded.revocations), ["c7", "repo:evil/*"]);

    let key = CacheKey {
        slot: "tag-2".into(),
        id: "grant-2".into(),
    };
    // Cached as an exchange caches it: with the revocation epoch its first round trip read
    // (the revocations above set one).
    let epoch = || current_epoch(b);
    assert!(epoch().await.is_some(), "the revocations set an epoch");
    // What an exchange's first round trip answers for this cache entry: a plain one, and one
    // that expects a hit (on one server, the script that checks a record by its ids).
    let lookup = |likely_hit: bool| {
        let key = &key;
        async move {
            let head = HitRecord {
                event_head: r#"{"decision":"allow""#,
                now: unix_now(),
                ttl_seconds: 60,
            };
            let hit = likely_hit.then_some(&head);
            let g = b
                .claim_guarded(&[], Some(key), None, hit, &[])
                .await
                .unwrap();
            (g.cached.map(|c| c.credential_id), values(g.revocations))
        }
    };
    for (id, exchange, revoke) in [
        (
            "cc-1",
            "ex-1",
            revocation(RevocationKind::Credential, "cc-1", 60),
        ),
        (
            "cc-2",
            "ex-2",
            revocation(RevocationKind::Exchange, "ex-2", 60),
        ),
    ] {
        a.cache_put(
            &key,
            &cached(id, exchange, epoch().await),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        let control = (Some(id.to_string()), vec!["repo:evil/*".to_string()]);
        assert_eq!(lookup(false).await, control, "control: cached, not revoked");
        assert_eq!(lookup(true).await, control, "control: cached, not revoked");
        a.put_revocation(&revoke).await.unwrap();
        // The revocation moved the epoch on: the plain round trip does not serve it.
        assert_eq!(lookup(false).await.0, None, "revoked {id}: not served");
        if one_server {
            // Checked by its ids in the script: it comes with the revocation that names it.
            let (cached, revocations) = lookup(true).await;
            assert_eq!(cached.as_deref(), Some(id));
            assert!(revocations.contains(&revoke.value), "{revocations:?}");
        } else {
            assert_eq!(
                lookup(true).await.0,
                None,
                "revoking {id} deleted its entry"
            );
        }
    }
    // A record cached without an epoch, or with an old one, is never served plainly.
    a.cache_put(&key, &cached("cc-3", "ex-3", None), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(lookup(false).await.0, None, "no epoch");
    let old = "0".repeat(32);
    a.cache_put(
        &key,
        &cached("cc-4", "ex-4", Some(old)),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(lookup(false).await.0, None, "another epoch");
    let by_id = lookup(true).await.0;
    if one_server {
        assert_eq!(by_id.as_deref(), Some("cc-4"), "checked by id");
        // A minting exchange's id the script cannot read: it cannot be checked, so the record
        // is not served through the script (Ferry's own ids are UUIDs, which it reads).
        a.cache_put(
            &key,
            &cached("cc-5", "ex.5", Some("0".repeat(32))),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(lookup(true).await.0, None, "an unreadable exchange id");
    } else {
        assert_eq!(by_id, None, "a Cluster has only the epoch to go by");
    }
}

/// The race a Cluster's cache index cannot close: a credential revoked after its exchange read
/// the revocation epoch but before its cache entry was written (the revocation found no index
/// entry to delete). The record carries the epoch read before the revocation, so neither
/// replica serves it, plainly or through the script.
async fn a_credential_revoked_before_it_is_cached_is_not_served(a: &RedisStore, b: &RedisStore) {
    a.put_revocation(&revocation(RevocationKind::Credential, "someone-else", 60))
        .await
        .unwrap();
    let key = CacheKey {
        slot: "tag-r".into(),
        id: "grant-r".into(),
    };
    // The exchange's first round trip: nothing cached yet, and the epoch it stamps with.
    let read = b
        .claim_guarded(&[], Some(&key), None, None, &[])
        .await
        .unwrap();
    assert!(read.cached.is_none());
    let epoch = read.revocation_epoch.expect("an epoch to stamp with");
    let cached = |id: &str| cached(id, &format!("ex-{id}"), Some(epoch.clone()));
    // Control: a record of that epoch, nobody revoked since: served by the other replica.
    a.cache_put(&key, &cached("cr-0"), Duration::from_secs(60))
        .await
        .unwrap();
    let key = &key;
    let served = |likely_hit: bool| async move {
        let head = HitRecord {
            event_head: r#"{"decision":"allow""#,
            now: unix_now(),
            ttl_seconds: 60,
        };
        let g = b
            .claim_guarded(&[], Some(key), None, likely_hit.then_some(&head), &[])
            .await
            .unwrap();
        // What the exchange then refuses: a record that came with a revocation naming it.
        g.cached
            .filter(|c| !g.revocations.iter().any(|r| r.value == c.credential_id))
            .map(|c| c.credential_id)
    };
    assert_eq!(served(false).await.as_deref(), Some("cr-0"), "control");

    // The race: revoked (its stream entry read by whoever revokes it) before its record lands.
    a.put_revocation(&revocation(RevocationKind::Credential, "cr-1", 60))
        .await
        .unwrap();
    a.cache_put(key, &cached("cr-1"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(served(false).await, None, "revoked before it was cached");
    assert_eq!(served(true).await, None, "revoked before it was cached");
}

#[tokio::test]
async fn a_credential_revoked_before_it_is_cached_is_not_served_by_one_server() {
    let (url, _server) = shared_redis();
    let (a, b) = replicas_at(&url);
    a_credential_revoked_before_it_is_cached_is_not_served(&a, &b).await;
}

#[tokio::test]
async fn replicas_share_revocations_rate_budgets_and_opaque_records() {
    let (url, _server) = shared_redis();
    let (a, b) = replicas_at(&url);
    replicas_share_lifecycle_state(&a, &b).await;
}

#[tokio::test]
async fn revocations_by_id_are_looked_up_and_a_revoked_cache_entry_comes_with_its_revocation() {
    let (url, _server) = shared_redis();
    let (a, b) = replicas_at(&url);
    revocations_by_id_are_looked_up_and_cover_cached_credentials(&a, &b, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_lifecycle_state_across_cluster_nodes() {
    let cluster = RedisCluster::start();
    let (a, b) = replicas_at(&cluster.url());
    replicas_share_lifecycle_state(&a, &b).await;
    let (a, b) = replicas_at(&cluster.url());
    revocations_by_id_are_looked_up_and_cover_cached_credentials(&a, &b, false).await;
}

/// On a Cluster the revocation epoch vouches for a cached credential as on one server: the
/// race its cache index leaves open is closed, and a Cluster that has no epoch yet gets one
/// from the next credential cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_serves_a_cached_credential_only_under_the_epoch_it_was_minted_in() {
    let cluster = RedisCluster::start();
    let (a, b) = replicas_at(&cluster.url());
    a_credential_revoked_before_it_is_cached_is_not_served(&a, &b).await;
    let (a, b) = replicas_at(&cluster.url());
    the_next_cached_credential_sets_a_missing_epoch(&a, &b).await;

    // A revocation returns only once the exchanges in flight have ended: here the one that
    // minted the revoked credential caches it during the wait, with the epoch it read before
    // the revocation. By the time the revocation returns, that entry is gone too.
    let prefix = unique_prefix();
    let (a, b) = (
        store_at(&cluster.url(), &prefix),
        store_at(&cluster.url(), &prefix),
    );
    a.put_revocation(&revocation(RevocationKind::Credential, "someone-else", 60))
        .await
        .unwrap();
    let key = CacheKey {
        slot: "tag-w".into(),
        id: "grant-w".into(),
    };
    let epoch = || current_epoch(&b);
    let before = epoch().await.expect("an epoch");
    let minting = async {
        while epoch().await.as_ref() == Some(&before) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let record = cached("cw-1", "ex-cw-1", Some(before.clone()));
        b.cache_put(&key, &record, Duration::from_secs(60))
            .await
            .unwrap();
    };
    let revocation = revocation(RevocationKind::Credential, "cw-1", 60);
    let (revoked, ()) = futures_util::future::join(a.put_revocation(&revocation), minting).await;
    revoked.unwrap();
    let entry = format!("{prefix}{{tag-w}}:cred:grant-w");
    assert_eq!(
        cluster.cli(&["EXISTS", &entry]).as_deref().map(str::trim),
        Some("0"),
        "the entry written during the wait was deleted through its index"
    );
}

/// A Redis that never had a revocation epoch, or lost it (a flush): the first round trip reads
/// none and serves nothing plainly; the next credential cached carries a new epoch that its
/// commit sets, so hits resume; an epoch a revocation set first wins over it.
#[tokio::test]
async fn without_a_revocation_epoch_the_next_cached_credential_sets_one() {
    let (url, _server) = shared_redis();
    let (a, b) = replicas_at(&url);
    the_next_cached_credential_sets_a_missing_epoch(&a, &b).await;
}

async fn the_next_cached_credential_sets_a_missing_epoch(a: &RedisStore, b: &RedisStore) {
    let key = CacheKey {
        slot: "tag-e".into(),
        id: "grant-e".into(),
    };
    // What an exchange that read no epoch caches.
    let cached = |id: &str| cached(id, &format!("ex-{id}"), None);
    let first_trip = || async {
        let g = b
            .claim_guarded(&[], Some(&key), None, None, &[])
            .await
            .unwrap();
        (g.revocation_epoch, g.cached.map(|c| c.credential_id))
    };
    assert_eq!(
        first_trip().await,
        (None, None),
        "no epoch yet, nothing cached"
    );

    a.cache_put(&key, &cached("ce-1"), Duration::from_secs(60))
        .await
        .unwrap();
    let (epoch, served) = first_trip().await;
    assert!(epoch.is_some(), "the commit set the record's epoch");
    assert_eq!(served.as_deref(), Some("ce-1"), "served plainly again");

    a.put_revocation(&revocation(RevocationKind::Credential, "other", 60))
        .await
        .unwrap();
    let (moved, served) = first_trip().await;
    assert!(
        moved.is_some() && moved != epoch,
        "a revocation moves it on"
    );
    assert_eq!(served, None, "a record of the old epoch is not served");

    // An exchange that read no epoch before a revocation set one: its record's new epoch
    // loses to the revocation's, and the record is never served plainly.
    a.cache_put(&key, &cached("ce-2"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(first_trip().await, (moved, None));
}

/// What `claim_guarded` reads as the kill switches in force now.
async fn switches_in_force(store: &RedisStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .claim_guarded(&[], None, None, None, &[])
        .await
        .unwrap()
        .revocations
        .iter()
        .filter(|r| r.kind.is_kill_switch())
        .map(Revocation::id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn kill_switches_an_older_build_kept_with_the_revocations_are_moved_and_enforced() {
    let (url, _server) = shared_redis();
    let prefix = unique_prefix();
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let old_hash = format!("{prefix}{{revocations}}");
    let new_hash = format!("{prefix}{{killswitches}}");
    let live = revocation(RevocationKind::Subject, "repo:acme/*", 600);
    let expired = revocation(RevocationKind::Policy, "old-policy", -5);
    let by_id = revocation(RevocationKind::Credential, "c-1", 600);
    // This build's own entry for the same subject wins over the old one.
    let mut newer = revocation(RevocationKind::Policy, "deploy", 900);
    newer.reason = Some("set by this build".into());
    let mut older = newer.clone();
    older.reason = Some("set by an older build".into());
    for r in [&live, &expired, &by_id, &older] {
        let _: () = redis::cmd("HSET")
            .arg(&old_hash)
            .arg(r.id())
            .arg(serde_json::to_string(r).unwrap())
            .query(&mut raw)
            .unwrap();
    }
    let _: () = redis::cmd("HSET")
        .arg(&new_hash)
        .arg(newer.id())
        .arg(serde_json::to_string(&newer).unwrap())
        .query(&mut raw)
        .unwrap();

    let store = store_at(&url, &prefix);
    assert_eq!(
        switches_in_force(&store).await,
        ["policy:deploy"],
        "control: before the move, the old subject switch is not enforced"
    );
    store.ping().await.unwrap();
    assert_eq!(
        switches_in_force(&store).await,
        ["policy:deploy", "subject:repo:acme/*"]
    );
    let old_fields: Vec<String> = redis::cmd("HKEYS").arg(&old_hash).query(&mut raw).unwrap();
    assert_eq!(
        old_fields,
        ["credential:c-1"],
        "revocations by id stay where they are"
    );
    let kept: String = redis::cmd("HGET")
        .arg(&new_hash)
        .arg("policy:deploy")
        .query(&mut raw)
        .unwrap();
    assert!(kept.contains("set by this build"), "{kept}");
    let expired_copied: bool = redis::cmd("HEXISTS")
        .arg(&new_hash)
        .arg(expired.id())
        .query(&mut raw)
        .unwrap();
    assert!(
        !expired_copied,
        "an expired old switch is dropped, not moved"
    );

    // Lifting the moved switch lifts it for good: a later start finds nothing to move back.
    let _: () = redis::cmd("HDEL")
        .arg(&new_hash)
        .arg(live.id())
        .query(&mut raw)
        .unwrap();
    let restarted = store_at(&url, &prefix);
    restarted.ping().await.unwrap();
    assert_eq!(switches_in_force(&restarted).await, ["policy:deploy"]);
}

#[tokio::test]
async fn a_replica_that_cannot_move_old_kill_switches_is_not_ready() {
    let server = RedisServer::start();
    let acl = server.cli(&[
        "ACL", "SETUSER", "no-scan", "on", ">pw", "~*", "+@all", "-hscan",
    ]);
    assert_eq!(acl.as_deref(), Some("OK\n"));
    let url = server.url().replace("redis://", "redis://no-scan:pw@");
    let store = store_at(&url, &unique_prefix());
    let refused = store.ping().await.unwrap_err().to_string();
    assert!(refused.contains("moving kill switches"), "{refused}");
    assert!(
        !refused.contains("pw"),
        "no password in the reason: {refused}"
    );
    // Control: the same server, a user allowed HSCAN.
    store_at(&server.url(), &unique_prefix())
        .ping()
        .await
        .unwrap();
}
