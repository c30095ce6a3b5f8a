//! SPIFFE JWT-SVIDs through the real server: a loopback SPIRE-like bundle endpoint, SVIDs
//! shaped as SPIRE issues them, and each SPIFFE rule with a token built to break it, after the
//! same setup has granted a valid one.

mod common;

use std::time::Duration;

use common::spiffe::{svid_claims, Alg, SpireServer, CI_WORKLOAD};
use common::*;
use serde_json::{json, Value};

const MESH_POLICY: &str = r#"
description: CI workloads of the prod trust domain may deploy
issuer: mesh
subject: { glob: "spiffe://prod.example.org/ns/ci/*" }
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api]
  ttl: 5m
"#;

/// A broker trusting `spire` as issuer `mesh`, with a refresh on every unknown kid.
async fn spawn_mesh(spire: &SpireServer) -> TestApp {
    let fixture = Fixture::empty()
        .issuer(&spire.issuer_entry("mesh"))
        .policy("mesh-deploy", MESH_POLICY)
        .settings(|s| s.keys.refresh_cooldown = Duration::ZERO);
    spawn_app(fixture).await
}

/// A broker for `spire` that has just granted a valid SVID (the control for refusals).
async fn spawn_accepting_mesh(spire: &SpireServer) -> TestApp {
    let app = spawn_mesh(spire).await;
    let (status, body, _) = app.exchange_token(&ci_svid(&app, spire), None).await;
    assert_eq!(status, 200, "control: a valid SVID must be granted: {body}");
    app
}

fn ci_svid(app: &TestApp, spire: &SpireServer) -> String {
    spire.svid("jwt-1", &svid_claims(CI_WORKLOAD, &app.base_url))
}

fn issuer_state(readyz: &Value, name: &str) -> Value {
    let issuers = readyz["issuers"].as_array().expect("issuers in /readyz");
    let found = issuers.iter().find(|i| i["issuer"] == name);
    found.cloned().expect("the issuer is reported")
}

#[tokio::test]
async fn a_jwt_svid_without_iss_is_exchanged_for_a_credential_naming_its_spiffe_id() {
    let spire = SpireServer::start();
    let app = spawn_mesh(&spire).await;
    let (status, body, _) = app.exchange_token(&ci_svid(&app, &spire), None).await;
    assert_eq!(status, 200, "{body}");
    let credential = body["access_token"].as_str().unwrap();
    let claims = app
        .verify_credential(credential, "https://deploy.acme.internal")
        .await;
    assert_eq!(claims["sub"], CI_WORKLOAD);
    assert_eq!(claims["ferry"]["issuer"], "mesh");
    let event = app.last_audit_event();
    assert_eq!(event["decision"], "allow", "{event}");
    let (_, ready) = app.get_json("/readyz").await;
    let mesh = issuer_state(&ready, "mesh");
    assert_eq!(mesh["ready"], true, "{mesh}");
    assert_eq!(mesh["spiffe_sequence"], 1, "{mesh}");
}

#[tokio::test]
async fn an_iss_in_a_jwt_svid_is_accepted_but_not_used_to_select_the_issuer() {
    let spire = SpireServer::start();
    let app = spawn_accepting_mesh(&spire).await;
    let mut claims = svid_claims(CI_WORKLOAD, &app.base_url);
    claims["iss"] = json!("https://oidc-discovery.prod.example.org");
    let (status, body, _) = app
        .exchange_token(&spire.svid("jwt-1", &claims), None)
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn each_spiffe_id_rule_refuses_the_svid_built_to_break_it() {
    let spire = SpireServer::start();
    let app = spawn_accepting_mesh(&spire).await;
    for sub in [
        "spiffe://prod.example.org/ns/ci/../admin",
        "spiffe://prod.example.org/ns/ci/%2e%2e/admin",
        "spiffe://PROD.example.org/ns/ci/sa/deployer",
        "spiffe://prod.example.org:443/ns/ci/sa/deployer",
        "spiffe://ci@prod.example.org/ns/ci/sa/deployer",
        "spiffe://prod.example.org/ns/ci/sa/deployer?admin=true",
        "spiffe://prod.example.org/ns/ci/sa/deployer#admin",
        "spiffe://prod.example.org/ns/ci//deployer",
        "spiffe://prod.example.org/ns/ci/sa/deployer/",
        "spiffe://prod.example.org/ns/ci/sa/de ployer",
    ] {
        let token = spire.svid("jwt-1", &svid_claims(sub, &app.base_url));
        let (_, reason) = assert_token_refused(&app, &token).await;
        assert_eq!(reason, "invalid_spiffe_id", "{sub}");
    }
}

#[tokio::test]
async fn a_jwt_svid_needs_aud_and_exp() {
    let spire = SpireServer::start();
    let app = spawn_accepting_mesh(&spire).await;
    for (claim, expected) in [("aud", "missing_audience"), ("exp", "missing_exp")] {
        let mut claims = svid_claims(CI_WORKLOAD, &app.base_url);
        claims.as_object_mut().unwrap().remove(claim);
        let (_, reason) = assert_token_refused(&app, &spire.svid("jwt-1", &claims)).await;
        assert_eq!(reason, expected);
    }
}

#[tokio::test]
async fn a_workload_outside_the_policy_path_is_denied() {
    let spire = SpireServer::start();
    let app = spawn_accepting_mesh(&spire).await;
    let other = "spiffe://prod.example.org/ns/payments/sa/deployer";
    let token = spire.svid("jwt-1", &svid_claims(other, &app.base_url));
    let (_, reason) = assert_token_refused(&app, &token).await;
    assert_eq!(reason, "claim_mismatch");
}

#[tokio::test]
async fn a_key_whose_use_is_x509_svid_never_verifies_a_jwt_svid() {
    let spire = SpireServer::start();
    spire.add_key("x509-1", Alg::ES256, "x509-svid");
    let app = spawn_accepting_mesh(&spire).await;
    let token = spire.svid("x509-1", &svid_claims(CI_WORKLOAD, &app.base_url));
    let (_, reason) = assert_token_refused(&app, &token).await;
    assert_eq!(reason, "unknown_key");
}

#[tokio::test]
async fn an_svid_whose_sub_names_another_trust_domain_is_refused() {
    let prod = SpireServer::start();
    let staging = SpireServer::for_trust_domain("staging.example.org");
    let fixture = Fixture::empty()
        .issuer(&prod.issuer_entry("mesh"))
        .issuer(&staging.issuer_entry("staging"))
        .policy("mesh-deploy", MESH_POLICY)
        .policy(
            "staging-any",
            &MESH_POLICY
                .replace("issuer: mesh", "issuer: staging")
                .replace("prod.example.org", "staging.example.org"),
        );
    let app = spawn_app(fixture).await;
    let (status, body, _) = app.exchange_token(&ci_svid(&app, &prod), None).await;
    assert_eq!(status, 200, "control: {body}");
    // Prod's key (kid jwt-1) signs a staging ID: staging's bundle decides, and its jwt-1
    // is another key.
    let staging_id = "spiffe://staging.example.org/ns/ci/sa/deployer";
    let token = prod.svid("jwt-1", &svid_claims(staging_id, &app.base_url));
    let (_, reason) = assert_token_refused(&app, &token).await;
    assert_eq!(reason, "bad_signature");
    // A trust domain no issuer is bound to: nothing is fetched.
    let fetches = (prod.fetches(), staging.fetches());
    let evil = "spiffe://evil.example.org/ns/ci/sa/deployer";
    let token = prod.svid("jwt-1", &svid_claims(evil, &app.base_url));
    let (_, reason) = assert_token_refused(&app, &token).await;
    assert_eq!(reason, "unknown_issuer");
    assert_eq!((prod.fetches(), staging.fetches()), fetches);
}

#[tokio::test]
async fn a_bundle_whose_sequence_goes_backwards_is_ignored_and_the_current_keys_serve() {
    let spire = SpireServer::start();
    spire.set_sequence(5);
    let app = spawn_accepting_mesh(&spire).await;
    // A rolled-back bundle (sequence 3) that drops jwt-1 and brings jwt-old.
    spire.add_key("jwt-old", Alg::ES256, "jwt-svid");
    let old_token = spire.svid("jwt-old", &svid_claims(CI_WORKLOAD, &app.base_url));
    let current_token = ci_svid(&app, &spire);
    spire.remove_key("jwt-1");
    spire.set_sequence(3);
    let fetches = spire.fetches();
    let (_, reason) = assert_token_refused(&app, &old_token).await;
    assert_eq!(reason, "unknown_key");
    assert!(
        spire.fetches() > fetches,
        "the unknown kid triggered a refresh"
    );
    // The current keys (sequence 5, jwt-1) keep serving.
    let (status, body, _) = app.exchange_token(&current_token, None).await;
    assert_eq!(status, 200, "{body}");
    let (_, ready) = app.get_json("/readyz").await;
    let mesh = issuer_state(&ready, "mesh");
    assert_eq!(mesh["spiffe_sequence"], 5, "{mesh}");
    assert!(
        mesh["failures"]["sequence_rollback"].as_u64() >= Some(1),
        "{mesh}"
    );
    assert!(
        mesh["last_error"]
            .as_str()
            .unwrap()
            .contains("lower than the current 5"),
        "{mesh}"
    );
    let (_, metrics, _) = app.get("/metrics").await;
    assert!(
        metrics.contains(
            "ferry_issuer_key_fetch_failures_total{issuer=\"mesh\",reason=\"sequence_rollback\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_pinned_bundle_file_needs_no_network() {
    let spire = SpireServer::start();
    let entry = "  mesh:\n    kind: spiffe\n    trust_domain: prod.example.org\n    bundle_file: keys/prod.example.org.bundle.json\n";
    let fixture = Fixture::empty()
        .issuer(entry)
        .file(
            "keys/prod.example.org.bundle.json",
            &spire.bundle().to_string(),
        )
        .policy("mesh-deploy", MESH_POLICY);
    let app = spawn_app(fixture).await;
    let (status, body, _) = app.exchange_token(&ci_svid(&app, &spire), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(spire.fetches(), 0);
}

#[tokio::test]
async fn the_bundle_is_refreshed_at_its_refresh_hint_so_a_retired_key_stops_working() {
    let spire = SpireServer::start();
    spire.set_refresh_hint(Some(1));
    let fixture = Fixture::empty()
        .issuer(&spire.issuer_entry("mesh"))
        .policy("mesh-deploy", MESH_POLICY)
        .settings(|s| {
            s.keys.refresh_cooldown = Duration::ZERO;
            s.keys.min_refresh = Duration::ZERO;
        });
    let app = spawn_app(fixture).await;
    let retired = ci_svid(&app, &spire);
    let (status, body, _) = app.exchange_token(&retired, None).await;
    assert_eq!(status, 200, "control: {body}");
    // SPIRE rotates: jwt-2 in, jwt-1 out, a new sequence. No token names an unknown kid, so
    // only the scheduled refresh (at the 1 s hint, not the 1 h refresh_interval) can notice.
    spire.add_key("jwt-2", Alg::ES256, "jwt-svid");
    spire.remove_key("jwt-1");
    spire.set_sequence(2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, _) = app.exchange_token(&retired, None).await;
        if status == 400 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retired key still works"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.last_audit_event()["reason"], "unknown_key");
    let (status, body, _) = app
        .exchange_token(&ci_svid_with(&app, &spire, "jwt-2"), None)
        .await;
    assert_eq!(status, 200, "{body}");
}

fn ci_svid_with(app: &TestApp, spire: &SpireServer, kid: &str) -> String {
    spire.svid(kid, &svid_claims(CI_WORKLOAD, &app.base_url))
}
