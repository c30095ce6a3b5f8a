//! The audit trail, the operational endpoints, and the broker's signing key on disk.

mod common;

use common::rfc8693::{GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT};
use common::*;

#[tokio::test]
async fn every_token_request_leaves_exactly_one_chained_audit_event() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let expired = app.sign(
        &app.claims()
            .expires_in(-600)
            .issued_at(now() - 900)
            .not_before(now() - 900),
    );
    let mut secrets = vec![token.clone(), expired.clone()];
    let mut statuses = vec![];
    for (token, scope) in [
        (&token, None),
        (&token, None),
        (&expired, None),
        (&app.token(), Some("admin:all")),
    ] {
        let (status, body, _) = app.exchange_token(token, scope).await;
        statuses.push(status.as_u16());
        if let Some(credential) = body["access_token"].as_str() {
            secrets.push(credential.to_string());
        }
    }
    let malformed = app
        .exchange(&[
            ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token_type", TOKEN_TYPE_JWT),
        ])
        .await;
    statuses.push(malformed.0.as_u16());
    let unsupported = app
        .exchange(&[("grant_type", "password"), ("subject_token", &token)])
        .await;
    statuses.push(unsupported.0.as_u16());
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400]);

    let events = app.audit_events();
    assert_eq!(
        events.len(),
        statuses.len(),
        "one event per request: {events:#?}"
    );
    let decisions: Vec<_> = events
        .iter()
        .map(|e| e["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(decisions, ["allow", "deny", "deny", "deny", "deny", "deny"]);
    assert_eq!(events[0]["reason"], "granted");
    let report = ferry::audit::verify_chain(&app.audit_path()).expect("the hash chain verifies");
    assert_eq!(report.events, statuses.len() as u64);

    let text = std::fs::read_to_string(app.audit_path()).unwrap();
    for secret in &secrets {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !text.contains(signature),
            "the audit trail holds a token or credential"
        );
    }
}

#[tokio::test]
async fn an_allowed_exchange_is_audited_with_its_grant() {
    let app = spawn_app(Fixture::deploy()).await;
    let claims = app.claims();
    let (status, body, _) = app
        .exchange_token(&app.sign(&claims), Some("deploy:api"))
        .await;
    assert_eq!(status, 200, "{body}");
    let event = app.last_audit_event();
    assert_eq!(event["decision"], "allow");
    assert_eq!(event["policy"], "demo-deploy");
    assert_eq!(event["issuer"], "local-ci");
    assert_eq!(event["subject"], claims.get("sub").unwrap().clone());
    assert_eq!(event["token_jti"], claims.get("jti").unwrap().clone());
    assert_eq!(event["scopes_granted"], serde_json::json!(["deploy:api"]));
    let credential_jti = app
        .verify_credential(body["access_token"].as_str().unwrap(), DEPLOY_AUDIENCE)
        .await["jti"]
        .clone();
    assert_eq!(event["credential_id"], credential_jti);
    assert_eq!(event["token_sha256"].as_str().map(str::len), Some(64));
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app(Fixture::deploy()).await;
    let (status, _, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn readyz_reports_the_issuer_key_state() {
    let app = spawn_app(Fixture::deploy()).await;
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.to_string().contains("local-ci"),
        "readyz names the issuer: {body}"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_exchange_counts() {
    let app = spawn_app(Fixture::deploy()).await;
    app.exchange_token(&app.token(), None).await;
    let (status, text, headers) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("text/plain"),
        "content-type {content_type}"
    );
    assert!(text.contains("ferry_exchanges_total"), "{text}");
}

#[tokio::test]
async fn openid_configuration_names_the_broker_and_its_jwks() {
    let app = spawn_app(Fixture::deploy()).await;
    let (status, config) = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    assert_eq!(config["issuer"], app.base_url);
    assert_eq!(
        config["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.base_url)
    );
    let (status, jwks) = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(status, 200);
    assert!(
        jwks["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "{jwks}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_signing_key_file_is_private_to_the_broker() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(Fixture::deploy()).await;
    let key_file = app.data_dir.join("signing-key.pem");
    let mode = std::fs::metadata(&key_file)
        .expect("signing key file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
}

#[tokio::test]
async fn a_restarted_broker_reuses_its_signing_key() {
    let first = spawn_app(Fixture::deploy()).await;
    let other_audit = first.data_dir.join("second-audit.jsonl");
    let fixture = Fixture::deploy()
        .data_dir(&first.data_dir)
        .settings(move |s| s.audit.file = Some(other_audit));
    let second = spawn_app(fixture).await;
    let kids = |jwks: serde_json::Value| -> Vec<String> {
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        keys.iter()
            .map(|k| k["kid"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let first_kids = kids(first.get_json("/.well-known/jwks.json").await.1);
    let second_kids = kids(second.get_json("/.well-known/jwks.json").await.1);
    assert!(!first_kids.is_empty());
    assert_eq!(first_kids, second_kids);
}
