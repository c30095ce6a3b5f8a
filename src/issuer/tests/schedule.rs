//! The newer key-handling rules through the public `Verifier`, with paused time: the scheduled
//! refresh at the announced freshness (clamped to `min_refresh..=max_refresh`), rotation in two
//! refreshes, the negative cache of unknown kids, SPIFFE sequence rollback, failure reasons.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::domain::Algorithm;
use crate::issuer::testkit::{self, claims, spec, TestKey, NOW};
use crate::issuer::{FetchSettings, KeyDocument, MemoryFetcher};
use crate::verify::Verifier;

fn bounds(min_s: u64, max_s: u64) -> FetchSettings {
    FetchSettings {
        refresh_cooldown: Duration::from_secs(1),
        refresh_interval: Duration::from_secs(3600),
        min_refresh: Duration::from_secs(min_s),
        max_refresh: Duration::from_secs(max_s),
        ..FetchSettings::default()
    }
}

fn doc(keys: &[&TestKey], fresh_for_s: Option<u64>, sequence: Option<u64>) -> KeyDocument {
    KeyDocument {
        keys: keys.iter().map(|k| k.jwk()).collect(),
        fresh_for: fresh_for_s.map(Duration::from_secs),
        sequence,
    }
}

async fn code(v: &Verifier, token: &str) -> &'static str {
    v.verify(token, NOW)
        .await
        .map_or_else(|e| e.code(), |_| "accepted")
}

/// Lets a spawned background refresh run to completion.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn setup(first: KeyDocument, fetch: FetchSettings) -> (Verifier, Arc<MemoryFetcher>) {
    let fetcher = Arc::new(MemoryFetcher::new(vec![]));
    fetcher.serve_document(first);
    let v = testkit::verifier_over(spec(&[Algorithm::RS256]), fetcher.clone(), fetch);
    (v, fetcher)
}

#[tokio::test(start_paused = true)]
async fn an_announced_max_age_schedules_the_next_refresh() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = setup(doc(&[&key], Some(120), None), bounds(60, 3600));
    v.warm_up().await;
    let token = key.token("RS256", &claims());
    tokio::time::sleep(Duration::from_secs(110)).await;
    assert_eq!(code(&v, &token).await, "accepted");
    settle().await;
    assert_eq!(fetcher.calls(), 1, "not due before max-age");
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(code(&v, &token).await, "accepted");
    settle().await;
    assert_eq!(fetcher.calls(), 2, "due after max-age");
}

#[tokio::test(start_paused = true)]
async fn an_announced_max_age_is_clamped_to_the_configured_bounds() {
    let key = TestKey::rsa("k1");
    let token = key.token("RS256", &claims());
    // max-age 0 (or no-cache) would mean a fetch per request: held to min_refresh.
    let (v, fetcher) = setup(doc(&[&key], Some(0), None), bounds(60, 3600));
    v.warm_up().await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(code(&v, &token).await, "accepted");
    settle().await;
    assert_eq!(fetcher.calls(), 1, "min_refresh holds");
    // A week of max-age would keep a retired key for a week: held to max_refresh.
    let (v, fetcher) = setup(doc(&[&key], Some(7 * 86400), None), bounds(60, 3600));
    v.warm_up().await;
    tokio::time::sleep(Duration::from_secs(3601)).await;
    assert_eq!(code(&v, &token).await, "accepted");
    settle().await;
    assert_eq!(fetcher.calls(), 2, "max_refresh holds");
}

#[tokio::test(start_paused = true)]
async fn a_new_key_is_accepted_after_one_refresh_and_a_retired_one_refused_after_the_next() {
    let (old, new) = (TestKey::rsa("old"), TestKey::rsa("new"));
    let (v, fetcher) = setup(doc(&[&old], Some(60), None), bounds(60, 3600));
    v.warm_up().await;
    fetcher.serve_document(doc(&[&old, &new], Some(60), None));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(code(&v, &new.token("RS256", &claims())).await, "accepted");
    assert_eq!(fetcher.calls(), 2, "one refresh, on the unknown kid");
    fetcher.serve_document(doc(&[&new], Some(60), None));
    let retired = old.token("RS256", &claims());
    assert_eq!(
        code(&v, &retired).await,
        "accepted",
        "until the next refresh"
    );
    tokio::time::sleep(Duration::from_secs(61)).await;
    let _ = code(&v, &retired).await; // due: the scheduled refresh starts in the background
    settle().await;
    assert_eq!(fetcher.calls(), 3);
    assert_eq!(code(&v, &retired).await, "unknown_key");
    assert_eq!(code(&v, &new.token("RS256", &claims())).await, "accepted");
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_bogus_kids_costs_no_fetches_once_they_are_known_unknown() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = setup(doc(&[&key], None, None), bounds(60, 3600));
    v.warm_up().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bogus = TestKey::rsa("bogus").token("RS256", &claims());
    assert_eq!(code(&v, &bogus).await, "unknown_key");
    assert_eq!(fetcher.calls(), 2, "the first miss refreshes");
    // Past the cooldown, the same kid is refused from the negative cache: no fetch.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let results = join_all((0..200).map(|_| code(&v, &bogus))).await;
    assert!(results.iter().all(|c| *c == "unknown_key"));
    assert_eq!(fetcher.calls(), 2);
    assert_eq!(code(&v, &key.token("RS256", &claims())).await, "accepted");
}

/// A kid that arrives inside the cooldown after another miss's fetch was never looked for: the
/// issuer may have published it since. It is refused for now (rule 6: one refresh per cooldown)
/// but not remembered as unknown, so the first miss after the cooldown fetches and finds it.
#[tokio::test(start_paused = true)]
async fn a_kid_missed_inside_the_cooldown_is_not_remembered_as_unknown() {
    let (key, rotated) = (TestKey::rsa("k1"), TestKey::rsa("rotated"));
    let (v, fetcher) = setup(doc(&[&key], None, None), bounds(60, 3600));
    v.warm_up().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bogus = TestKey::rsa("bogus").token("RS256", &claims());
    assert_eq!(code(&v, &bogus).await, "unknown_key");
    assert_eq!(fetcher.calls(), 2, "a miss fetches");
    // The issuer rotates right after that fetch; its first token arrives inside the cooldown.
    fetcher.serve_document(doc(&[&key, &rotated], None, None));
    let token = rotated.token("RS256", &claims());
    assert_eq!(
        code(&v, &token).await,
        "unknown_key",
        "no fetch inside the cooldown"
    );
    assert_eq!(fetcher.calls(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        code(&v, &token).await,
        "accepted",
        "fetched once the cooldown is over"
    );
    assert_eq!(fetcher.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_kid_missed_while_the_issuer_is_down_is_not_remembered_as_unknown() {
    let (key, next) = (TestKey::rsa("k1"), TestKey::rsa("next"));
    let (v, fetcher) = setup(doc(&[&key], None, None), bounds(60, 3600));
    v.warm_up().await;
    fetcher.fail("down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let token = next.token("RS256", &claims());
    assert_eq!(code(&v, &token).await, "unknown_key");
    fetcher.serve_document(doc(&[&key, &next], None, None));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        code(&v, &token).await,
        "accepted",
        "refetched once the issuer is back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_known_unknown_kid_is_refused_without_waiting_for_a_slow_refresh() {
    let key = TestKey::rsa("k1");
    let fetcher = Arc::new(MemoryFetcher::new(vec![key.jwk()]).with_delay(Duration::from_secs(4)));
    let v = Arc::new(testkit::verifier_over(
        spec(&[Algorithm::RS256]),
        fetcher.clone(),
        bounds(60, 3600),
    ));
    v.warm_up().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bogus = TestKey::rsa("bogus").token("RS256", &claims());
    assert_eq!(code(&v, &bogus).await, "unknown_key");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Another unknown kid starts a (slow) refresh ...
    let other = TestKey::rsa("other").token("RS256", &claims());
    let v2 = v.clone();
    let slow = tokio::spawn(async move { code(&v2, &other).await });
    tokio::task::yield_now().await;
    // ... and the known-unknown kid is answered before it ends.
    let start = tokio::time::Instant::now();
    assert_eq!(code(&v, &bogus).await, "unknown_key");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(slow.await.unwrap(), "unknown_key");
}

#[tokio::test(start_paused = true)]
async fn a_bundle_with_a_lower_sequence_is_refused_and_the_current_keys_kept() {
    let (current, rolled_back) = (TestKey::rsa("current"), TestKey::rsa("old"));
    let (v, fetcher) = setup(doc(&[&current], None, Some(5)), bounds(60, 3600));
    v.warm_up().await;
    fetcher.serve_document(doc(&[&rolled_back], None, Some(4)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        code(&v, &rolled_back.token("RS256", &claims())).await,
        "unknown_key"
    );
    assert_eq!(
        code(&v, &current.token("RS256", &claims())).await,
        "accepted"
    );
    let status = &v.key_status()[0];
    assert_eq!(status.sequence, Some(5));
    assert_eq!(status.failures, vec![("sequence_rollback", 1)]);
    // The same or a higher sequence is taken.
    let next = TestKey::rsa("next");
    fetcher.serve_document(doc(&[&next], None, Some(5)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(code(&v, &next.token("RS256", &claims())).await, "accepted");
    assert_eq!(v.key_status()[0].sequence, Some(5));
}

#[tokio::test(start_paused = true)]
async fn failed_fetches_are_counted_by_reason() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = setup(doc(&[&key], None, None), bounds(60, 3600));
    v.warm_up().await;
    fetcher.fail("down");
    for kid in ["a", "b"] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = code(&v, &TestKey::rsa(kid).token("RS256", &claims())).await;
    }
    fetcher.serve(vec![]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = code(&v, &TestKey::rsa("c").token("RS256", &claims())).await;
    let status = &v.key_status()[0];
    assert_eq!(status.failures, vec![("no_usable_keys", 1), ("test", 2)]);
    assert_eq!(status.fetch_failed, 3);
    assert!(status.ready, "the last good keys still serve");
}

#[tokio::test(start_paused = true)]
async fn the_ticker_refreshes_due_keys_without_any_request() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = setup(doc(&[&key], Some(120), None), bounds(60, 3600));
    v.warm_up().await;
    v.refresh_due().await;
    assert_eq!(fetcher.calls(), 1, "not due yet");
    tokio::time::sleep(Duration::from_secs(121)).await;
    v.refresh_due().await;
    assert_eq!(fetcher.calls(), 2, "due: fetched with no token in sight");
    v.refresh_due().await;
    assert_eq!(fetcher.calls(), 2, "fresh again");
}
