//! Cache behaviour through the public `Verifier`, with the counting in-memory fetcher. Time is
//! paused (the cache reads `tokio::time::Instant`), so cooldowns and delays are exact, not racy.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::domain::Algorithm;
use crate::issuer::testkit::{self, claims, spec, TestKey, NOW};
use crate::issuer::{FetchSettings, MemoryFetcher};

fn settings(cooldown_ms: u64) -> FetchSettings {
    FetchSettings {
        refresh_cooldown: Duration::from_millis(cooldown_ms),
        ..FetchSettings::default()
    }
}

async fn code(v: &crate::verify::Verifier, token: &str) -> &'static str {
    v.verify(token, NOW)
        .await
        .map_or_else(|e| e.code(), |_| "accepted")
}

#[tokio::test(start_paused = true)]
async fn second_unknown_kid_within_cooldown_does_not_fetch() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = testkit::verifier(spec(&[Algorithm::RS256]), vec![key.jwk()], settings(300));
    v.warm_up().await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let stranger = TestKey::rsa("k2").token("RS256", &claims());
    assert_eq!(code(&v, &stranger).await, "unknown_key");
    assert_eq!(
        fetcher.calls(),
        2,
        "first miss after the cooldown refreshes"
    );
    assert_eq!(code(&v, &stranger).await, "unknown_key");
    assert_eq!(
        fetcher.calls(),
        2,
        "second miss within the cooldown does not"
    );
}

#[tokio::test(start_paused = true)]
async fn known_kid_is_served_without_fetching() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = testkit::verifier(spec(&[Algorithm::RS256]), vec![key.jwk()], settings(0));
    v.warm_up().await;
    for _ in 0..5 {
        assert_eq!(code(&v, &key.token("RS256", &claims())).await, "accepted");
    }
    assert_eq!(fetcher.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_unknown_kid_misses_share_one_fetch() {
    let key = TestKey::rsa("k1");
    let fetcher =
        Arc::new(MemoryFetcher::new(vec![key.jwk()]).with_delay(Duration::from_millis(200)));
    let v = testkit::verifier_over(spec(&[Algorithm::RS256]), fetcher.clone(), settings(300));
    v.warm_up().await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let stranger = TestKey::rsa("k2").token("RS256", &claims());
    let results = join_all((0..20).map(|_| code(&v, &stranger))).await;
    assert!(results.iter().all(|c| *c == "unknown_key"), "{results:?}");
    assert_eq!(fetcher.calls(), 2, "warm-up plus one shared refresh");
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_requests_share_one_initial_fetch() {
    let key = TestKey::rsa("k1");
    let fetcher =
        Arc::new(MemoryFetcher::new(vec![key.jwk()]).with_delay(Duration::from_millis(100)));
    let v = testkit::verifier_over(
        spec(&[Algorithm::RS256]),
        fetcher.clone(),
        FetchSettings::default(),
    );
    let token = key.token("RS256", &claims());
    let results = join_all((0..20).map(|_| code(&v, &token))).await;
    assert!(results.iter().all(|c| *c == "accepted"), "{results:?}");
    assert_eq!(fetcher.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn rotated_key_is_accepted_after_refresh() {
    let old = TestKey::rsa("old");
    let new = TestKey::rsa("new");
    let (v, fetcher) = testkit::verifier(spec(&[Algorithm::RS256]), vec![old.jwk()], settings(100));
    v.warm_up().await;
    fetcher.serve(vec![old.jwk(), new.jwk()]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(code(&v, &new.token("RS256", &claims())).await, "accepted");
    assert_eq!(code(&v, &old.token("RS256", &claims())).await, "accepted");
}

#[tokio::test(start_paused = true)]
async fn stale_keys_keep_serving_when_refresh_fails() {
    let key = TestKey::rsa("k1");
    let fetch = FetchSettings {
        refresh_cooldown: Duration::from_millis(10),
        refresh_interval: Duration::from_millis(50),
        min_refresh: Duration::ZERO,
        ..FetchSettings::default()
    };
    let (v, fetcher) = testkit::verifier(spec(&[Algorithm::RS256]), vec![key.jwk()], fetch);
    v.warm_up().await;
    fetcher.fail("issuer down");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(code(&v, &key.token("RS256", &claims())).await, "accepted");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stranger = TestKey::rsa("k2").token("RS256", &claims());
    assert_eq!(
        code(&v, &stranger).await,
        "unknown_key",
        "a denial, not a 503"
    );
    let status = &v.key_status()[0];
    assert!(status.ready && status.keys == 1, "{status:?}");
    assert_eq!(status.fetch_ok, 1);
    assert!(status.fetch_failed >= 1, "{status:?}");
    assert!(status
        .last_error
        .as_deref()
        .unwrap()
        .contains("issuer down"));
    assert!(status.last_refresh_unix.is_some());
}

#[tokio::test(start_paused = true)]
async fn keys_past_max_stale_are_unavailable() {
    let key = TestKey::rsa("k1");
    let fetch = FetchSettings {
        max_stale: Duration::from_millis(100),
        ..FetchSettings::default()
    };
    let (v, fetcher) = testkit::verifier(spec(&[Algorithm::RS256]), vec![key.jwk()], fetch);
    v.warm_up().await;
    fetcher.fail("issuer down");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let err = v
        .verify(&key.token("RS256", &claims()), NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "keys_unavailable");
    assert!(err.is_unavailable());
    assert!(!v.key_status()[0].ready);
}

#[tokio::test(start_paused = true)]
async fn never_loaded_issuer_is_retried_at_most_once_per_second() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) =
        testkit::verifier(spec(&[Algorithm::RS256]), vec![], FetchSettings::default());
    fetcher.fail("not started yet");
    let token = key.token("RS256", &claims());
    for _ in 0..5 {
        assert_eq!(code(&v, &token).await, "keys_unavailable");
    }
    assert_eq!(fetcher.calls(), 1);
    fetcher.serve(vec![key.jwk()]);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(code(&v, &token).await, "accepted");
    assert_eq!(fetcher.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn scheduled_refresh_runs_once_in_the_background() {
    let key = TestKey::rsa("k1");
    let fetch = FetchSettings {
        refresh_cooldown: Duration::from_millis(10),
        refresh_interval: Duration::from_millis(100),
        min_refresh: Duration::ZERO,
        ..FetchSettings::default()
    };
    let (v, fetcher) = testkit::verifier(spec(&[Algorithm::RS256]), vec![key.jwk()], fetch);
    v.warm_up().await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let token = key.token("RS256", &claims());
    let results = join_all((0..10).map(|_| code(&v, &token))).await;
    assert!(results.iter().all(|c| *c == "accepted"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fetcher.calls(), 2);
}
