//! GitLab CI: ID tokens shaped exactly as GitLab sends them (ids and booleans as strings, the
//! short `ref`), exchanged at a broker whose issuer is of kind `gitlab`.

mod common;

use common::provider::{exchange_granted, exchange_refused};
use common::{spawn_app, Claims, Fixture, TestApp};

/// Protected `main` of project 20, by id, deploying to production; copies normalised claims.
const POLICY: &str = r#"
issuer: local-ci
subject: "project_path:acme/api:ref_type:branch:ref:main"
claims:
  project_id: "20"
  ref_protected: "true"
  environment: production
  pipeline_source: { one_of: [push, web] }
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api]
  ttl: 10m
  claims:
    repository_id: normalized.repository_id
    git_ref: normalized.ref
    run_url: normalized.run_url
"#;

async fn gitlab_app() -> TestApp {
    let fixture = Fixture::empty()
        .issuer_kind("gitlab", "")
        .policy("gitlab-deploy", POLICY);
    spawn_app(fixture).await
}

fn claims(app: &TestApp) -> Claims {
    Claims::gitlab(&app.issuer.url(), &app.base_url)
}

#[tokio::test]
async fn gitlab_id_token_is_exchanged_and_carries_normalised_claims() {
    let app = gitlab_app().await;
    let minted = exchange_granted(&app, &claims(&app)).await;
    assert_eq!(minted["repository_id"], "20");
    assert_eq!(minted["git_ref"], "refs/heads/main");
    let run_url = format!("{}/acme/api/-/pipelines/574", app.issuer.url());
    assert_eq!(minted["run_url"], run_url.as_str());
}

#[tokio::test]
async fn an_unprotected_ref_is_refused() {
    let app = gitlab_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let unprotected = claims(&app).set("ref_protected", "false");
    assert_eq!(exchange_refused(&app, &unprotected).await, "claim_mismatch");
}

#[tokio::test]
async fn a_boolean_ref_protected_is_not_the_string_gitlab_sends() {
    let app = gitlab_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let boolean = claims(&app).set("ref_protected", true);
    assert_eq!(exchange_refused(&app, &boolean).await, "claim_mismatch");
}

#[tokio::test]
async fn a_renamed_project_at_the_same_path_is_refused_by_its_id() {
    let app = gitlab_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let squatter = claims(&app).set("project_id", "9999");
    assert_eq!(exchange_refused(&app, &squatter).await, "claim_mismatch");
}

#[tokio::test]
async fn the_gitlab_preset_requires_a_jti() {
    let app = gitlab_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let no_jti = claims(&app).remove("jti");
    assert_eq!(exchange_refused(&app, &no_jti).await, "missing_jti");
}
