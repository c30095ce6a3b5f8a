//! GitHub Actions: tokens as GitHub sends them (every custom claim a string), in the classic and
//! the immutable subject form, exchanged at a broker whose issuer is of kind `github-actions`
//! (as for GitHub Enterprise Server, chosen by `url`).

mod common;

use common::provider::{exchange_granted, exchange_refused};
use common::{spawn_app, Claims, Fixture, TestApp};

/// Main of acme/api in either subject form; ids pinned; normalised claims copied.
const POLICY: &str = r#"
issuer: local-ci
subject:
  any_of:
    - { glob: "repo:acme/api:ref:refs/heads/main" }
    - { glob: "repo:acme@4242/api@123456789:ref:refs/heads/main" }
claims:
  repository_owner_id: "4242"
normalized:
  repository_id: "123456789"
  runner_environment: hosted
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api]
  ttl: 10m
  claims:
    provider: normalized.provider
    workflow: normalized.workflow
"#;

async fn github_app() -> TestApp {
    let fixture = Fixture::empty()
        .issuer_kind("github-actions", "")
        .policy("github-deploy", POLICY);
    spawn_app(fixture).await
}

#[tokio::test]
async fn classic_and_immutable_subjects_are_both_exchanged() {
    let app = github_app().await;
    let classic = Claims::github(&app.issuer.url(), &app.base_url);
    let minted = exchange_granted(&app, &classic).await;
    assert_eq!(minted["provider"], "github-actions");
    assert_eq!(
        minted["workflow"],
        "acme/api/.github/workflows/deploy.yml@refs/heads/main"
    );
    let immutable = Claims::github_immutable(&app.issuer.url(), &app.base_url);
    exchange_granted(&app, &immutable).await;
}

#[tokio::test]
async fn an_immutable_subject_of_another_owner_id_is_refused() {
    let app = github_app().await;
    exchange_granted(
        &app,
        &Claims::github_immutable(&app.issuer.url(), &app.base_url),
    )
    .await;
    let squatter = Claims::github_immutable(&app.issuer.url(), &app.base_url)
        .subject("repo:acme@9999/api@123456789:ref:refs/heads/main");
    assert_eq!(exchange_refused(&app, &squatter).await, "claim_mismatch");
}

#[tokio::test]
async fn a_self_hosted_runner_is_refused() {
    let app = github_app().await;
    exchange_granted(&app, &Claims::github(&app.issuer.url(), &app.base_url)).await;
    let self_hosted =
        Claims::github(&app.issuer.url(), &app.base_url).set("runner_environment", "self-hosted");
    assert_eq!(exchange_refused(&app, &self_hosted).await, "claim_mismatch");
}

#[tokio::test]
async fn the_github_preset_refuses_a_token_older_than_fifteen_minutes() {
    let app = github_app().await;
    exchange_granted(&app, &Claims::github(&app.issuer.url(), &app.base_url)).await;
    let old = Claims::github(&app.issuer.url(), &app.base_url).issued_at(common::now() - 20 * 60);
    assert_eq!(exchange_refused(&app, &old).await, "token_too_old");
}
