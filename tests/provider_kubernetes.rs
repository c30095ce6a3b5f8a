//! Kubernetes: projected service-account tokens shaped as the API server issues them (nested
//! `kubernetes.io` claim, `aud` a list), verified with keys pinned in a `jwks_file` as for an API
//! server the broker cannot reach; legacy secret-based tokens refused by name.

mod common;

use common::provider::{exchange_granted, exchange_refused};
use common::{spawn_app, Claims, Fixture, TestApp};

/// Service account `deployer` in namespace `ci`, in any pod.
const POLICY: &str = r#"
issuer: local-ci
subject: system:serviceaccount:ci:deployer
claims:
  kubernetes.io:
    namespace: ci
    serviceaccount: { name: deployer, uid: 5c0f4a2e-8d7b-4f6a-9c3e-1b2a3d4e5f60 }
    pod: { name: { glob: "deployer-*" } }
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api]
  ttl: 10m
  claims:
    kubernetes.io: kubernetes.io
"#;

/// The cluster's keys pinned in a file; the dev issuer's discovery endpoints are then never
/// used.
async fn cluster_app() -> TestApp {
    let fixture = Fixture::empty()
        .issuer_kind("kubernetes", "    jwks_file: local-ci.jwks.json\n")
        .pinned_keys()
        .policy("k8s-deploy", POLICY);
    spawn_app(fixture).await
}

fn claims(app: &TestApp) -> Claims {
    Claims::kubernetes(&app.issuer.url(), &app.base_url)
}

#[tokio::test]
async fn projected_token_is_verified_with_pinned_keys_and_exchanged() {
    let app = cluster_app().await;
    let minted = exchange_granted(&app, &claims(&app)).await;
    assert_eq!(
        minted["kubernetes.io"]["pod"]["name"],
        "deployer-7c9d8b5f4-x2x9k"
    );
    assert_eq!(
        (app.issuer.discovery_fetches(), app.issuer.jwks_fetches()),
        (0, 0),
        "pinned keys: the API server is never contacted"
    );
}

#[tokio::test]
async fn a_token_of_another_namespace_is_refused() {
    let app = cluster_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let mut other = claims(&app).to_value();
    other["kubernetes.io"]["namespace"] = "prod".into();
    let other = Claims::from_value(other).subject("system:serviceaccount:prod:deployer");
    assert_eq!(exchange_refused(&app, &other).await, "claim_mismatch");
}

#[tokio::test]
async fn a_recreated_service_account_with_the_same_name_is_refused_by_uid() {
    let app = cluster_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let mut recreated = claims(&app).to_value();
    recreated["kubernetes.io"]["serviceaccount"]["uid"] =
        "00000000-0000-4000-8000-000000000000".into();
    assert_eq!(
        exchange_refused(&app, &Claims::from_value(recreated)).await,
        "claim_mismatch"
    );
}

#[tokio::test]
async fn a_legacy_secret_based_token_is_refused_with_its_own_reason() {
    let app = cluster_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let legacy = Claims::kubernetes_legacy_secret();
    assert_eq!(
        exchange_refused(&app, &legacy).await,
        "legacy_service_account_token"
    );
}

#[tokio::test]
async fn a_projected_token_without_exp_is_refused() {
    let app = cluster_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let no_exp = claims(&app).remove("exp");
    assert_eq!(exchange_refused(&app, &no_exp).await, "missing_exp");
}
