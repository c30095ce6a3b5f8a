//! Subject-token verification through HTTP: the registered claims (SECURITY.md rules 3, 7, 8
//! and 9) and the issuer key cache (rule 6: refresh on unknown kid, bounded by a cooldown).

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let app = spawn_accepting_app().await;
    assert_token_refused(&app, &app.sign(&app.claims().remove("exp"))).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_accepting_app().await;
    let claims = app
        .claims()
        .issued_at(now() - 900)
        .not_before(now() - 900)
        .expires_in(-600);
    assert_token_refused(&app, &app.sign(&claims)).await;
}

#[tokio::test]
async fn exp_as_a_string_is_refused() {
    let app = spawn_accepting_app().await;
    let exp = (now() + 300).to_string();
    assert_token_refused(&app, &app.sign(&app.claims().set("exp", exp))).await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let app = spawn_accepting_app().await;
    let claims = app.claims().not_before(now() + 600);
    assert_token_refused(&app, &app.sign(&claims)).await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let app = spawn_accepting_app().await;
    let claims = app.claims().issued_at(now() + 600).not_before(now());
    assert_token_refused(&app, &app.sign(&claims)).await;
}

#[tokio::test]
async fn a_token_older_than_max_token_age_is_refused() {
    let app = spawn_accepting_app().await;
    let claims = app
        .claims()
        .issued_at(now() - 7200)
        .not_before(now() - 7200);
    assert_token_refused(&app, &app.sign(&claims)).await;
}

#[tokio::test]
async fn skew_within_the_leeway_is_tolerated() {
    let app = spawn_app(Fixture::deploy()).await;
    let claims = app.claims().issued_at(now() + 20).not_before(now() + 20);
    let (status, body, _) = app.exchange_token(&app.sign(&claims), None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_is_a_different_issuer() {
    let app = spawn_accepting_app().await;
    let claims = app.claims().set("iss", format!("{}/", app.issuer.url()));
    assert_token_refused(&app, &app.sign(&claims)).await;
}

#[tokio::test]
async fn an_unconfigured_issuer_is_refused_and_nothing_is_fetched() {
    let app = spawn_accepting_app().await;
    let stranger = DevIssuer::start("127.0.0.1:0");
    let claims = Claims::github(&stranger.url(), &app.base_url);
    let token = stranger.sign(&claims, Alg::RS256, None);
    assert_token_refused(&app, &token).await;
    assert_eq!(stranger.discovery_fetches() + stranger.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_token_without_aud_is_refused() {
    let app = spawn_accepting_app().await;
    assert_token_refused(&app, &app.sign(&app.claims().remove("aud"))).await;
}

#[tokio::test]
async fn a_token_for_another_service_is_refused() {
    let app = spawn_accepting_app().await;
    let claims = app.claims().audience("https://sts.amazonaws.com");
    assert_token_refused(&app, &app.sign(&claims)).await;
}

#[tokio::test]
async fn an_aud_array_containing_the_broker_is_accepted() {
    let app = spawn_app(Fixture::deploy()).await;
    let claims = app.claims().audience(vec![
        "https://sts.amazonaws.com".to_string(),
        app.base_url.clone(),
    ]);
    let (status, body, _) = app.exchange_token(&app.sign(&claims), None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_token_without_sub_is_refused() {
    let app = spawn_accepting_app().await;
    assert_token_refused(&app, &app.sign(&app.claims().remove("sub"))).await;
}

#[tokio::test]
async fn a_token_without_jti_is_refused_when_the_issuer_requires_one() {
    let app = spawn_accepting_app().await;
    assert_token_refused(&app, &app.sign(&app.claims().remove("jti"))).await;
}

#[tokio::test]
async fn a_replayed_token_is_refused_and_audited_as_replayed() {
    let app = spawn_accepting_app().await;
    let token = app.token();
    let (status, body, _) = app.exchange_token(&token, None).await;
    assert_eq!(status, 200, "{body}");
    let (_, reason) = assert_token_refused(&app, &token).await;
    assert_eq!(reason, "token_replayed");
}

/// Rule 9 for an issuer that signs an absurd `exp` (one that lets callers pick a token's
/// lifetime): the `jti` is remembered for as long as the store can hold it. Nothing overflows
/// into a short TTL or a panic.
#[tokio::test]
async fn a_token_with_an_absurd_exp_is_still_single_use() {
    let app = spawn_accepting_app().await;
    for exp in [serde_json::json!(i64::MAX), serde_json::json!(1e300)] {
        let token = app.sign(&app.claims().set("exp", exp.clone()));
        let (status, body, _) = app.exchange_token(&token, None).await;
        assert_eq!(status, 200, "exp {exp}: {body}");
        // Past the one second a TTL wrapped around to would have lasted.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_, reason) = assert_token_refused(&app, &token).await;
        assert_eq!(reason, "token_replayed", "exp {exp}");
    }
}

#[tokio::test]
async fn es256_tokens_verify_with_the_issuers_ec_key() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.issuer.sign(&app.claims(), Alg::ES256, None);
    let (status, body, _) = app.exchange_token(&token, None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_rotated_issuer_key_is_picked_up_by_a_refresh() {
    let fixture = Fixture::deploy().settings(|s| s.keys.refresh_cooldown = Duration::ZERO);
    let app = spawn_app(fixture).await;
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "{body}");
    app.issuer.rotate_key("rsa-1", "rsa-2", Alg::RS256);
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "a token under the new kid: {body}");
}

#[tokio::test]
async fn unknown_kids_trigger_at_most_one_refresh_per_cooldown() {
    let app = spawn_accepting_app().await;
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "{body}");
    let fetches_before = app.issuer.jwks_fetches();
    app.issuer.add_key("rsa-9", Alg::RS256);
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": "unknown" });
    for _ in 0..5 {
        let token = app.issuer.sign_with_header(
            &header.to_string(),
            &app.claims().to_json(),
            SignWith::Key("rsa-9"),
        );
        assert_token_refused(&app, &token).await;
    }
    let refreshes = app.issuer.jwks_fetches() - fetches_before;
    assert!(
        refreshes <= 1,
        "{refreshes} JWKS fetches within one cooldown"
    );
}

#[tokio::test]
async fn last_known_good_keys_keep_serving_while_the_issuer_is_down() {
    let fixture = Fixture::deploy().settings(|s| s.keys.refresh_cooldown = Duration::ZERO);
    let app = spawn_app(fixture).await;
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "{body}");
    app.issuer.set_unavailable(true);
    // An unknown kid forces a refresh attempt that fails; known keys must still verify after.
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": "unknown" });
    let bad = app.issuer.sign_with_header(
        &header.to_string(),
        &app.claims().to_json(),
        SignWith::Key("rsa-1"),
    );
    // Refused either as a bad token (400) or as keys unavailable (503); never granted.
    let (status, body, _) = app.exchange_token(&bad, None).await;
    assert!(status == 400 || status == 503, "{status}: {body}");
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "known keys after a failed refresh: {body}");
}
