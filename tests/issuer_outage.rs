//! An issuer outage seen from outside: the broker keeps granting with the last good keys, and
//! `/readyz` and `/metrics` name the issuer and the reason of each failed refresh.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn an_issuer_outage_is_counted_by_reason_while_the_last_good_keys_keep_granting() {
    let fixture = Fixture::deploy().settings(|s| s.keys.refresh_cooldown = Duration::ZERO);
    let app = spawn_app(fixture).await;
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "control: {body}");
    app.issuer.set_unavailable(true);
    // A token under a kid the broker has not seen forces a refresh, which gets a 503.
    app.issuer.add_key("rsa-2", Alg::RS256);
    let unseen = app.issuer.sign(&app.claims(), Alg::RS256, Some("rsa-2"));
    let (_, reason) = assert_token_refused(&app, &unseen).await;
    assert_eq!(
        reason, "unknown_key",
        "a denial, not a 503: the old keys still serve"
    );
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "the last good keys keep granting: {body}");

    let (_, ready) = app.get_json("/readyz").await;
    let issuer = ready["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["issuer"] == "local-ci")
        .cloned()
        .unwrap();
    assert_eq!(issuer["ready"], true, "{issuer}");
    assert!(issuer["failures"]["status"].as_u64() >= Some(1), "{issuer}");
    assert!(
        issuer["last_error"].as_str().unwrap().contains("503"),
        "{issuer}"
    );
    let (_, metrics, _) = app.get("/metrics").await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "ferry_issuer_key_fetch_failures_total{issuer=\"local-ci\",reason=\"status\"}",
            )
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!line.ends_with(" 0"), "{line}");

    // Back up: the next refresh picks up the new key.
    app.issuer.set_unavailable(false);
    let (status, body, _) = app.exchange_token(&unseen, None).await;
    assert_eq!(status, 200, "{body}");
}
