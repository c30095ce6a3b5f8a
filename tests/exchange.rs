//! `POST /token`: the RFC 8693 response, the credential it carries, and narrowing.

mod common;

use common::rfc8693::{GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT};
use common::*;

#[tokio::test]
async fn a_valid_token_gets_an_rfc8693_response_that_is_not_cached() {
    let app = spawn_app(Fixture::deploy()).await;
    let got = app.exchange_token(&app.token(), None).await;
    let (status, body, headers) = &got;
    assert_eq!(*status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["issued_token_type"], TOKEN_TYPE_ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_i64().expect("expires_in is a number");
    assert!(
        (1..=900).contains(&expires_in),
        "expires_in {expires_in} within the 15m grant"
    );
    assert_eq!(body["scope"], "deploy:api read:artifacts");
    assert_no_store(headers);
}

#[tokio::test]
async fn the_credential_is_an_rfc9068_jwt_verifiable_with_the_published_jwks() {
    let app = spawn_app(Fixture::deploy()).await;
    let claims = app.claims();
    let (status, body, _) = app
        .exchange_token(&app.sign(&claims), Some("deploy:api"))
        .await;
    assert_eq!(status, 200, "{body}");
    let credential = body["access_token"].as_str().unwrap();

    assert_eq!(jwt_part(credential, 0)["typ"], "at+jwt");
    let minted = app.verify_credential(credential, DEPLOY_AUDIENCE).await;
    assert_eq!(minted["iss"], app.base_url);
    assert_eq!(minted["sub"], claims.get("sub").unwrap().clone());
    assert_eq!(minted["aud"], DEPLOY_AUDIENCE);
    assert_eq!(minted["client_id"], "demo-deploy");
    assert_eq!(minted["scope"], "deploy:api");
    assert!(minted["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(minted["iat"].is_i64() && minted["exp"].is_i64());
    assert_eq!(minted["repository"], "acme/api");
    assert_eq!(minted["run_id"], claims.get("run_id").unwrap().clone());
    assert!(minted["ferry"]["exchange_id"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    assert_eq!(minted["ferry"]["issuer"], "local-ci");
    assert_eq!(minted["ferry"]["policy"], "demo-deploy");
}

#[tokio::test]
async fn requesting_a_jwt_token_type_is_reflected_in_issued_token_type() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let got = app
        .exchange(&deploy_form(
            &token,
            &[("requested_token_type", TOKEN_TYPE_JWT)],
        ))
        .await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["issued_token_type"], TOKEN_TYPE_JWT);
}

#[tokio::test]
async fn two_tokens_for_the_same_grant_share_one_cached_credential() {
    let app = spawn_app(Fixture::deploy()).await;
    let claims = app.claims();
    let first = app.exchange_token(&app.sign(&claims), None).await;
    let second = app
        .exchange_token(&app.sign(&claims.clone().jti("second-jti")), None)
        .await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    assert_eq!(first.1["access_token"], second.1["access_token"]);
}

#[tokio::test]
async fn a_cached_credential_is_not_reused_for_a_request_for_fewer_scopes() {
    let app = spawn_app(Fixture::deploy()).await;
    let claims = app.claims();
    let wide = app.exchange_token(&app.sign(&claims), None).await;
    let narrow = app
        .exchange_token(&app.sign(&claims.clone().jti("narrow")), Some("deploy:api"))
        .await;
    assert_eq!(wide.0, 200, "{}", wide.1);
    assert_eq!(narrow.0, 200, "{}", narrow.1);
    assert_eq!(narrow.1["scope"], "deploy:api");
    let minted = app
        .verify_credential(narrow.1["access_token"].as_str().unwrap(), DEPLOY_AUDIENCE)
        .await;
    assert_eq!(
        minted["scope"], "deploy:api",
        "the credential itself holds only the asked scope"
    );
}

#[tokio::test]
async fn a_cached_credential_never_outlives_a_shorter_requested_lifetime() {
    let app = spawn_app(Fixture::deploy()).await;
    let claims = app.claims();
    let long = app.exchange_token(&app.sign(&claims), None).await;
    assert_eq!(long.0, 200, "{}", long.1);
    let token = app.sign(&claims.clone().jti("short"));
    let short = app
        .exchange(&deploy_form(&token, &[("ttl_seconds", "60")]))
        .await;
    assert_eq!(short.0, 200, "{}", short.1);
    assert!(short.1["expires_in"].as_i64().unwrap() <= 60, "{}", short.1);
    let minted = app
        .verify_credential(short.1["access_token"].as_str().unwrap(), DEPLOY_AUDIENCE)
        .await;
    assert!(
        minted["exp"].as_i64().unwrap() <= now() + 61,
        "credential exp {}",
        minted["exp"]
    );
}

#[tokio::test]
async fn a_scope_subset_is_granted_alone() {
    let app = spawn_app(Fixture::deploy()).await;
    let (status, body, _) = app
        .exchange_token(&app.token(), Some("read:artifacts"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read:artifacts");
}

#[tokio::test]
async fn a_scope_outside_the_grant_is_invalid_scope() {
    let app = spawn_app(Fixture::deploy()).await;
    let got = app
        .exchange_token(&app.token(), Some("deploy:api admin:all"))
        .await;
    assert_oauth_error(&got, 400, "invalid_scope");
}

#[tokio::test]
async fn an_audience_no_policy_serves_is_invalid_target() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let got = app
        .exchange(&[
            ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token", &token),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("audience", "https://payroll.acme.internal"),
        ])
        .await;
    assert_oauth_error(&got, 400, "invalid_target");
}

#[tokio::test]
async fn ttl_seconds_shortens_the_credential() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let (status, body, _) = app
        .exchange(&deploy_form(&token, &[("ttl_seconds", "60")]))
        .await;
    assert_eq!(status, 200, "{body}");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((1..=60).contains(&expires_in), "expires_in {expires_in}");
}
