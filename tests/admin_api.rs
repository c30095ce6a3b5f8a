//! The admin API on one broker: revocation by credential id, by exchange id, and kill switches
//! on a subject pattern or a policy that refuse new exchanges until they expire or are lifted.
//! Every call is authorised by a `ferry:admin` credential and is an audit event.

mod common;

use std::time::Duration;

use common::lifecycle::*;
use common::*;

const DEPLOY_SUBJECT: &str = "repo:acme/api:ref:refs/heads/main";

async fn start() -> (TestApp, Broker, String, String) {
    let app = spawn_app(lifecycle_fixture("100/min")).await;
    let broker = Broker::new(&app.base_url);
    let admin = broker.operator(&app.issuer).await;
    let introspector = broker.introspector(&app.issuer).await;
    (app, broker, admin, introspector)
}

#[tokio::test]
async fn revoking_a_credential_by_id_makes_it_inactive_and_is_audited() {
    let (app, broker, admin, rs) = start().await;
    let credential = broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    let other = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert!(broker.is_active(&rs, &credential).await, "control");
    let id = jwt_part(&credential, 1)["jti"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, body, _) = broker.admin_revoke(&admin, "credential", &id, None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "credential");
    assert_eq!(body["by"], OPERATOR);
    let event = app.last_audit_event();
    assert_eq!(event["action"], "admin_revoke");
    assert_eq!(event["reason"], "revoked");
    assert_eq!(event["subject"], OPERATOR);
    assert_eq!(event["revocation"]["value"], id.as_str());

    assert!(!broker.is_active(&rs, &credential).await);
    assert!(broker.is_active(&rs, &other).await, "only that credential");
}

#[tokio::test]
async fn revoking_an_exchange_revokes_the_credential_it_minted() {
    let (app, broker, admin, rs) = start().await;
    let credential = broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    let exchange_id = jwt_part(&credential, 1)["ferry"]["exchange_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(broker.is_active(&rs, &credential).await, "control");
    let (status, body, _) = broker
        .admin_revoke(&admin, "exchange", &exchange_id, None)
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(!broker.is_active(&rs, &credential).await);
}

#[tokio::test]
async fn a_subject_kill_switch_refuses_new_exchanges_until_it_expires() {
    let (app, broker, admin, rs) = start().await;
    let before = broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    let bystander = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    // Credentials revoked by a switch are those issued up to its second: step past it.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (status, body, _) = broker
        .admin_revoke(&admin, "subject", "repo:acme/api:*", Some("2s"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        !broker.is_active(&rs, &before).await,
        "earlier credentials are revoked"
    );
    assert!(
        broker.is_active(&rs, &bystander).await,
        "other subjects are not"
    );

    let refused = broker
        .exchange_as(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert_oauth_error(&refused, 400, "invalid_request");
    assert_generic(refused.1["error_description"].as_str().unwrap());
    let event = app.last_audit_event();
    assert_eq!(event["reason"], "kill_switch");
    assert_eq!(event["revocation"]["value"], "repo:acme/api:*");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert!(broker.is_active(&rs, &after).await, "the block expired");
    assert!(
        !broker.is_active(&rs, &before).await,
        "and did not revive earlier credentials"
    );
}

#[tokio::test]
async fn a_policy_kill_switch_holds_until_it_is_unblocked() {
    let (app, broker, admin, rs) = start().await;
    let before = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body, _) = broker
        .admin_revoke(&admin, "policy", "opaque-deploy", Some("1h"))
        .await;
    assert_eq!(status, 201, "{body}");
    let created = body["created_at"].as_i64().unwrap();
    let through = body["issued_through"].as_i64().unwrap();
    // For replicas whose clocks run ahead: the verifier's leeway (60 s) past the moment the
    // switch is visible, which is within a second or two of `created_at`, plus the longest
    // the write could take (2 x 5 s).
    assert!(
        (created + 71..=created + 73).contains(&through),
        "it reaches the leeway past its creation and write: {body}"
    );
    assert_eq!(body["keep_until"].as_i64(), Some(through + 86_400 + 120));
    assert!(!broker.is_active(&rs, &before).await);
    let refused = broker
        .exchange_as(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert_oauth_error(&refused, 400, "invalid_request");
    broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body, _) = broker
        .admin_unblock(&admin, "policy", "opaque-deploy")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.last_audit_event()["reason"], "unblocked");
    let lifted = body["block_until"].as_i64().unwrap();
    assert!(
        body["issued_through"].as_i64().unwrap() < lifted,
        "its reach ends before the block does: {body}"
    );
    let after = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert!(
        broker.is_active(&rs, &after).await,
        "a credential issued once the block is lifted is not revoked by it"
    );
    assert!(
        !broker.is_active(&rs, &before).await,
        "unblocking revives nothing"
    );

    let again = broker
        .admin_unblock(&admin, "policy", "opaque-deploy")
        .await;
    assert_eq!(again.0, 404, "nothing left to unblock: {}", again.1);
}

#[tokio::test]
async fn the_revocation_list_shows_every_live_entry() {
    let (_app, broker, admin, _) = start().await;
    broker.admin_revoke(&admin, "credential", "c-1", None).await;
    broker
        .admin_revoke(&admin, "policy", "limited", Some("10m"))
        .await;
    let response = broker
        .client
        .get(format!("{}/admin/revocations", broker.base_url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let kinds: Vec<_> = body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("credential".into(), "c-1".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("policy".into(), "limited".into())),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn only_a_caller_with_the_admin_scope_may_revoke() {
    let (app, broker, admin, rs) = start().await;
    assert_eq!(
        broker
            .admin_revoke(&admin, "credential", "c-0", None)
            .await
            .0,
        201,
        "control"
    );
    let deploy = broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    for caller in [rs.as_str(), deploy.as_str()] {
        let got = broker
            .admin_revoke(caller, "policy", "demo-deploy", None)
            .await;
        assert_oauth_error(&got, 403, "insufficient_scope");
    }
    let got = broker
        .admin_revoke("garbage", "policy", "demo-deploy", None)
        .await;
    assert_oauth_error(&got, 401, "invalid_token");
    let event = app.last_audit_event();
    assert_eq!(
        (event["action"].as_str(), event["decision"].as_str()),
        (Some("admin_revoke"), Some("deny"))
    );
    // Nothing was blocked by the refused calls.
    broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
}

#[tokio::test]
async fn malformed_admin_requests_are_refused_and_change_nothing() {
    let (app, broker, admin, _) = start().await;
    for (kind, value, duration) in [
        ("subject", "repo:acme/*", Some("forever")),
        ("policy", "demo-deploy", Some("90d")),
        ("credential", "c-1", Some("1h")),
        ("policy", "", None),
    ] {
        let got = broker.admin_revoke(&admin, kind, value, duration).await;
        assert_oauth_error(&got, 400, "invalid_request");
    }
    let unknown_kind = broker.admin_revoke(&admin, "everything", "x", None).await;
    assert_oauth_error(&unknown_kind, 400, "invalid_request");
    let not_json = broker
        .post(
            "/admin/revocations",
            "text/plain",
            "kind=policy".into(),
            Some(&admin),
        )
        .await;
    assert_oauth_error(&not_json, 400, "invalid_request");
    assert_eq!(app.last_audit_event()["reason"], "invalid_request");
    broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
}

#[tokio::test]
async fn the_audit_chain_stays_intact_with_lifecycle_events() {
    let (app, broker, admin, rs) = start().await;
    let credential = broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    broker.is_active(&rs, &credential).await;
    broker
        .admin_revoke(&admin, "policy", "limited", Some("1m"))
        .await;
    broker.admin_unblock(&admin, "policy", "limited").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["audit", "verify"])
        .arg(app.audit_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
}
