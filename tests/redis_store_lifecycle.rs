//! `RedisStore`'s lifecycle state against a real Redis (single server and Cluster): two store
//! instances stand for two replicas. Revocations, GCRA budgets and opaque records written by
//! one are seen by the other, and `claim_guarded` answers all of it in one call.

mod common;

use std::time::Duration;

use common::redis_server::{shared_redis, store_at, unique_prefix, RedisCluster};
use ferry::domain::unix_now;
use ferry::store::{
    ClaimOutcome, JtiClaim, RateLimit, RedisStore, Revocation, RevocationKind, Store,
};

fn revocation(kind: RevocationKind, value: &str, keep_for: i64) -> Revocation {
    let now = unix_now();
    Revocation {
        kind,
        value: value.into(),
        created_at: now,
        block_until: now + keep_for,
        keep_until: now + keep_for,
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
        .claim_guarded(std::slice::from_ref(&claim), None, None, None)
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
}

#[tokio::test]
async fn replicas_share_revocations_rate_budgets_and_opaque_records() {
    let (url, _server) = shared_redis();
    let prefix = unique_prefix();
    replicas_share_lifecycle_state(&store_at(&url, &prefix), &store_at(&url, &prefix)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_lifecycle_state_across_cluster_nodes() {
    let cluster = RedisCluster::start();
    let prefix = unique_prefix();
    let (a, b) = (
        store_at(&cluster.url(), &prefix),
        store_at(&cluster.url(), &prefix),
    );
    replicas_share_lifecycle_state(&a, &b).await;
}
