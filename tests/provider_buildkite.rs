//! Buildkite: agent OIDC tokens shaped as Buildkite sends them (`build_number` a number, the
//! organisation and pipeline as slugs, ids only when requested with `--claim`), exchanged at a
//! broker whose issuer is of kind `buildkite`.

mod common;

use common::provider::{exchange_granted, exchange_refused};
use common::{spawn_app, Claims, Fixture, TestApp};

/// Step `deploy` of pipeline `api` of organisation `acme` (pinned by id) on `main`.
const POLICY: &str = r#"
issuer: local-ci
subject: { glob: "organization:acme:pipeline:api:ref:refs/heads/main:commit:*:step:deploy" }
claims:
  organization_id: 0184990a-5b1e-4c8c-8d0e-3c1e8b9f0a11
  build_number: { exists: true }
normalized:
  ref: refs/heads/main
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api]
  ttl: 10m
  claims:
    build: build_number
    run_url: normalized.run_url
"#;

async fn buildkite_app() -> TestApp {
    let fixture = Fixture::empty()
        .issuer_kind("buildkite", "")
        .policy("buildkite-deploy", POLICY);
    spawn_app(fixture).await
}

fn claims(app: &TestApp) -> Claims {
    Claims::buildkite(&app.issuer.url(), &app.base_url)
}

#[tokio::test]
async fn buildkite_token_is_exchanged_and_keeps_the_number_type() {
    let app = buildkite_app().await;
    let minted = exchange_granted(&app, &claims(&app)).await;
    assert_eq!(
        minted["build"], 1234,
        "copied as the number Buildkite sends"
    );
    assert_eq!(
        minted["run_url"],
        "https://buildkite.com/acme/api/builds/1234"
    );
}

#[tokio::test]
async fn another_organisation_with_the_same_pipeline_slug_is_refused() {
    let app = buildkite_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let other_org = claims(&app).set("organization_id", "0184990a-0000-4000-8000-000000000000");
    assert_eq!(exchange_refused(&app, &other_org).await, "claim_mismatch");
}

#[tokio::test]
async fn another_step_of_the_pipeline_is_refused() {
    let app = buildkite_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let sub = claims(&app)
        .get_str("sub")
        .unwrap()
        .replace(":step:deploy", ":step:test");
    assert_eq!(
        exchange_refused(&app, &claims(&app).subject(&sub)).await,
        "claim_mismatch"
    );
}

#[tokio::test]
async fn a_tag_build_is_not_main() {
    let app = buildkite_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let tag = claims(&app).set("build_tag", "v1.0.0");
    assert_eq!(exchange_refused(&app, &tag).await, "claim_mismatch");
}
