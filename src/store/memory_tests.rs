//! `MemoryStore` behaviour, with paused time.

use super::*;
use crate::domain::Secret;

fn claim(key: &str, secs: u64) -> JtiClaim {
    JtiClaim {
        slot: "s".into(),
        key: key.into(),
        ttl: Duration::from_secs(secs),
    }
}

#[tokio::test(start_paused = true)]
async fn a_jti_is_single_use_until_its_record_expires() {
    let store = MemoryStore::new();
    let c = claim("iss|abc", 120);
    assert_eq!(
        store.claim_and_lookup(Some(&c), None).await.unwrap().0,
        ClaimOutcome::Fresh
    );
    assert_eq!(
        store.claim_and_lookup(Some(&c), None).await.unwrap().0,
        ClaimOutcome::Replayed
    );
    tokio::time::advance(Duration::from_secs(119)).await;
    assert_eq!(
        store.claim_and_lookup(Some(&c), None).await.unwrap().0,
        ClaimOutcome::Replayed
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        store.claim_and_lookup(Some(&c), None).await.unwrap().0,
        ClaimOutcome::Fresh
    );
}

#[tokio::test(start_paused = true)]
async fn expired_records_are_swept_so_memory_stays_bounded() {
    let store = MemoryStore::new();
    for i in 0..1000 {
        store
            .claim_and_lookup(Some(&claim(&format!("k{i}"), 10)), None)
            .await
            .unwrap();
    }
    assert_eq!(store.jtis.held(), 1000);
    tokio::time::advance(Duration::from_secs(11)).await;
    // Enough writes to touch every shard once the sweep interval has passed.
    for i in 0..(SHARDS * 20) {
        store
            .claim_and_lookup(Some(&claim(&format!("n{i}"), 10)), None)
            .await
            .unwrap();
    }
    let held = store.jtis.held();
    assert!(
        held <= SHARDS * 20,
        "expired records were not swept: {held}"
    );
    assert_eq!(store.remembered_jtis(), SHARDS * 20);
}

#[tokio::test(start_paused = true)]
async fn an_expired_record_is_never_served_even_before_its_shard_is_swept() {
    let store = MemoryStore::new();
    let c = claim("iss|x", 2);
    store.claim_and_lookup(Some(&c), None).await.unwrap();
    tokio::time::advance(Duration::from_millis(2001)).await;
    assert_eq!(
        store.claim_and_lookup(Some(&c), None).await.unwrap().0,
        ClaimOutcome::Fresh
    );
}

#[tokio::test(start_paused = true)]
async fn cached_credentials_expire_with_their_ttl() {
    let store = MemoryStore::new();
    let key = CacheKey {
        slot: "s".into(),
        id: "grant".into(),
    };
    let cred = CachedCredential {
        token: Secret::new("t"),
        exchange_id: None,
        revocation_epoch: None,
        credential_id: "c1".into(),
        issued_at: 0,
        expires_at: 60,
    };
    store
        .cache_put(&key, &cred, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, hit) = store.claim_and_lookup(None, Some(&key)).await.unwrap();
    assert_eq!(hit.unwrap().credential_id, "c1");
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(store
        .claim_and_lookup(None, Some(&key))
        .await
        .unwrap()
        .1
        .is_none());
}

#[tokio::test(start_paused = true)]
async fn a_revocation_lasts_until_its_ttl() {
    let store = MemoryStore::new();
    assert!(!store.is_revoked("c1").await.unwrap());
    store.revoke("c1", Duration::from_secs(30)).await.unwrap();
    assert!(store.is_revoked("c1").await.unwrap());
    assert!(!store.is_revoked("c2").await.unwrap());
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(!store.is_revoked("c1").await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_refuses_past_the_limit_until_the_window_ends() {
    let store = MemoryStore::new();
    let window = Duration::from_secs(10);
    for _ in 0..3 {
        assert!(store.rate_limit("k", 3, window).await.unwrap().allowed);
    }
    let refused = store.rate_limit("k", 3, window).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, window);
    assert!(store.rate_limit("other", 3, window).await.unwrap().allowed);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(store.rate_limit("k", 3, window).await.unwrap().allowed);
}

#[tokio::test]
async fn several_claims_are_all_or_nothing() {
    let store = MemoryStore::new();
    let (subject, actor) = (claim("idp|s1", 60), claim("mesh|a1", 60));
    let (outcomes, _) = store
        .claim_all_and_lookup(&[subject.clone(), actor.clone()], None)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![ClaimOutcome::Fresh, ClaimOutcome::Fresh]);
    let other_subject = claim("idp|s2", 60);
    let (outcomes, _) = store
        .claim_all_and_lookup(&[other_subject.clone(), actor], None)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![ClaimOutcome::Fresh, ClaimOutcome::Replayed]);
    assert_eq!(
        store
            .claim_and_lookup(Some(&other_subject), None)
            .await
            .unwrap()
            .0,
        ClaimOutcome::Fresh,
        "the refused call recorded nothing"
    );
}
