//! CircleCI: job tokens shaped as CircleCI sends them (namespaced `oidc.circleci.com/...`
//! claims, `sub` = `org/ORG/project/PROJECT/user/USER`), exchanged at a broker whose issuer is of
//! kind `circleci`.

mod common;

use common::dev_issuer::{CIRCLECI_ORG, CIRCLECI_PROJECT};
use common::provider::{exchange_granted, exchange_refused};
use common::{spawn_app, Claims, Fixture, TestApp};

/// Project `f1e2d3c4-...` on `main`, with the production context.
fn policy() -> String {
    format!(
        r#"
issuer: local-ci
subject: {{ glob: "org/{CIRCLECI_ORG}/project/{CIRCLECI_PROJECT}/user/*" }}
claims:
  oidc.circleci.com/project-id: {CIRCLECI_PROJECT}
  oidc.circleci.com/vcs-ref: refs/heads/main
  oidc.circleci.com/context-ids: {{ contains: a74579f1-2e7d-451e-b009-5c082ad2729e }}
  oidc.circleci.com/ssh-rerun: false
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api]
  ttl: 10m
  claims:
    project: normalized.repository_id
    origin: normalized.repository
"#
    )
}

async fn circleci_app() -> TestApp {
    let fixture = Fixture::empty()
        .issuer_kind("circleci", "")
        .policy("circleci-deploy", &policy());
    spawn_app(fixture).await
}

fn claims(app: &TestApp) -> Claims {
    Claims::circleci(&app.issuer.url(), &app.base_url)
}

#[tokio::test]
async fn circleci_token_is_exchanged_without_a_jti() {
    let app = circleci_app().await;
    assert!(claims(&app).get("jti").is_none(), "CircleCI sends no jti");
    let minted = exchange_granted(&app, &claims(&app)).await;
    assert_eq!(minted["project"], CIRCLECI_PROJECT);
    assert_eq!(minted["origin"], "github.com/acme/api");
}

#[tokio::test]
async fn an_ssh_rerun_is_refused() {
    let app = circleci_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let rerun = claims(&app).set("oidc.circleci.com/ssh-rerun", true);
    assert_eq!(exchange_refused(&app, &rerun).await, "claim_mismatch");
}

#[tokio::test]
async fn a_job_without_the_production_context_is_refused() {
    let app = circleci_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let no_context = claims(&app).set("oidc.circleci.com/context-ids", serde_json::json!([]));
    assert_eq!(exchange_refused(&app, &no_context).await, "claim_mismatch");
}

#[tokio::test]
async fn a_token_older_than_the_one_hour_preset_is_refused() {
    let app = circleci_app().await;
    exchange_granted(&app, &claims(&app)).await;
    let old = claims(&app).issued_at(common::now() - 2 * 3600);
    assert_eq!(exchange_refused(&app, &old).await, "token_too_old");
}
