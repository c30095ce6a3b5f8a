//! Credential lifecycle on one broker (in-memory store): introspection of active, expired,
//! revoked, foreign and malformed credentials, with and without the caller's scope; holder
//! revocation; the admin API's revocations and kill switches; opaque credentials; rate limits.
//! `tests/redis_lifecycle.rs` runs the same rules across two replicas on one Redis.

mod common;

use std::time::Duration;

use common::lifecycle::*;
use common::*;

async fn start() -> (TestApp, Broker) {
    let app = spawn_app(lifecycle_fixture("2/min")).await;
    let broker = Broker::new(&app.base_url);
    (app, broker)
}

#[tokio::test]
async fn an_active_credential_is_introspected_with_its_claims() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let credential = broker
        .credential(
            &app.issuer,
            "repo:acme/api:ref:refs/heads/main",
            DEPLOY_AUDIENCE,
        )
        .await;
    let (status, body, headers) = broker.introspect(Some(&caller), &credential).await;
    assert_eq!(status, 200, "{body}");
    assert_no_store(&headers);
    let claims = jwt_part(&credential, 1);
    assert_eq!(body["active"], true);
    for name in [
        "scope",
        "sub",
        "client_id",
        "aud",
        "iss",
        "exp",
        "iat",
        "jti",
    ] {
        assert_eq!(body[name], claims[name], "{name}");
    }
    assert_eq!(body["client_id"], "demo-deploy");
    assert!(body.get("act").is_none(), "no act claim, no act member");
    let event = app.last_audit_event();
    assert_eq!(event["action"], "introspect");
    assert_eq!(event["reason"], "active");
    assert_eq!(event["credential_id"], claims["jti"]);
    assert_eq!(event["caller"], jwt_part(&caller, 1)["jti"]);
    let trail = std::fs::read_to_string(app.audit_path()).unwrap();
    assert!(!trail.contains(&credential) && !trail.contains(&caller));
    let (_, metrics, _) = app.get("/metrics").await;
    let counted = "ferry_lifecycle_requests_total{action=\"introspect\",decision=\"allow\",reason=\"active\"} 1";
    assert!(metrics.contains(counted), "{metrics}");
}

#[tokio::test]
async fn an_expired_credential_is_inactive() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let token = subject_token(&app.issuer, "repo:acme/api:ref:refs/heads/main");
    let (status, body, _) = app
        .exchange(&deploy_form(&token, &[("ttl_seconds", "1")]))
        .await;
    assert_eq!(status, 200, "{body}");
    let credential = body["access_token"].as_str().unwrap().to_string();
    assert!(broker.is_active(&caller, &credential).await, "control");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, body, _) = broker.introspect(Some(&caller), &credential).await;
    assert_eq!(body, serde_json::json!({ "active": false }));
    assert_eq!(app.last_audit_event()["reason"], "inactive_expired");
}

#[tokio::test]
async fn a_credential_its_holder_revoked_is_inactive_and_never_served_from_the_cache_again() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    // The same grant each time (the same copied run_id), so the cache may serve it.
    let exchange = || async {
        let claims = Claims::github(&app.issuer.url(), BROKER_AUDIENCE).set("run_id", "77");
        let (status, body, _) = app.exchange(&deploy_form(&app.sign(&claims), &[])).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    let credential = exchange().await;
    let cached = exchange().await;
    assert_eq!(
        cached, credential,
        "control: the cache serves the same credential"
    );
    assert!(broker.is_active(&caller, &credential).await);

    assert_eq!(broker.revoke(&credential).await, 200);
    assert!(!broker.is_active(&caller, &credential).await);
    let event = &app.audit_events()[app.audit_events().len() - 2];
    assert_eq!(event["action"], "revoke");
    assert_eq!(event["reason"], "revoked");
    assert_eq!(event["revocation"]["kind"], "credential");
    // Kept past the credential's `exp` for as long as the verifier still accepts it (leeway) and
    // the replay margin, both 60 s by default: a revoked credential presented in that window
    // as a next hop's token is still refused.
    let exp = jwt_part(&credential, 1)["exp"].as_i64().unwrap();
    assert_eq!(event["revocation"]["keep_until"].as_i64(), Some(exp + 120));

    let fresh = exchange().await;
    assert_ne!(
        fresh, credential,
        "a revoked cache entry is replaced, not served"
    );
    assert!(broker.is_active(&caller, &fresh).await);
    assert_eq!(exchange().await, fresh, "and its replacement is cached");
}

#[tokio::test]
async fn revoking_something_that_is_not_a_live_credential_still_answers_200() {
    let (app, broker) = start().await;
    assert_eq!(broker.revoke("not-a-credential").await, 200);
    assert_eq!(app.last_audit_event()["reason"], "not_active_malformed");
    let (status, body, _) = broker
        .post(
            "/revoke",
            "application/x-www-form-urlencoded",
            String::new(),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_credential_signed_by_another_key_is_inactive() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let genuine = broker
        .credential(
            &app.issuer,
            "repo:acme/api:ref:refs/heads/main",
            DEPLOY_AUDIENCE,
        )
        .await;
    assert!(broker.is_active(&caller, &genuine).await, "control");
    // Same header and claims, signed by the dev issuer's EC key instead of the broker's.
    let header = jwt_part(&genuine, 0).to_string();
    let claims = jwt_part(&genuine, 1).to_string();
    let forged = app
        .issuer
        .sign_with_header(&header, &claims, SignWith::Key("ec-1"));
    assert!(!broker.is_active(&caller, &forged).await);
    assert_eq!(app.last_audit_event()["reason"], "inactive_foreign");
}

#[tokio::test]
async fn malformed_credentials_are_inactive() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let opaque = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert!(broker.is_active(&caller, &opaque).await, "control");
    let mut broken_checksum = opaque.clone().into_bytes();
    let last = broken_checksum.len() - 1;
    broken_checksum[last] = if broken_checksum[last] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let broken_checksum = String::from_utf8(broken_checksum).unwrap();
    for token in ["garbage", "a.b.c", "fy_tooshort", broken_checksum.as_str()] {
        assert!(!broker.is_active(&caller, token).await, "{token}");
    }
    let oversized = "x".repeat(20_000);
    assert!(!broker.is_active(&caller, &oversized).await);
}

#[tokio::test]
async fn introspection_requires_a_live_caller_credential_with_the_introspect_scope() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let credential = broker
        .credential(
            &app.issuer,
            "repo:acme/api:ref:refs/heads/main",
            DEPLOY_AUDIENCE,
        )
        .await;
    assert!(broker.is_active(&caller, &credential).await, "control");

    let none = broker.introspect(None, &credential).await;
    assert_oauth_error(&none, 401, "invalid_token");
    assert!(none.2.get("www-authenticate").is_some());
    let garbage = broker.introspect(Some("garbage"), &credential).await;
    assert_oauth_error(&garbage, 401, "invalid_token");
    // A deploy credential is live but addressed elsewhere and has no introspect scope.
    let wrong = broker.introspect(Some(&credential), &credential).await;
    assert_oauth_error(&wrong, 403, "insufficient_scope");
    // The admin scope is not the introspect scope.
    let admin = broker.operator(&app.issuer).await;
    assert_oauth_error(
        &broker.introspect(Some(&admin), &credential).await,
        403,
        "insufficient_scope",
    );
    let event = app.last_audit_event();
    assert_eq!(
        (event["decision"].as_str(), event["reason"].as_str()),
        (Some("deny"), Some("insufficient_scope"))
    );

    assert_eq!(broker.revoke(&caller).await, 200);
    let revoked = broker.introspect(Some(&caller), &credential).await;
    assert_oauth_error(&revoked, 401, "invalid_token");
}

#[tokio::test]
async fn introspection_without_a_token_parameter_is_invalid_request() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let form = "token_type_hint=access_token".to_string();
    let got = broker
        .post(
            "/introspect",
            "application/x-www-form-urlencoded",
            form,
            Some(&caller),
        )
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
    let repeated = "token=a&token=b".to_string();
    let got = broker
        .post(
            "/introspect",
            "application/x-www-form-urlencoded",
            repeated,
            Some(&caller),
        )
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
    assert_eq!(app.last_audit_event()["reason"], "invalid_request");
}

#[tokio::test]
async fn opaque_credentials_introspect_like_jwts_and_never_reach_the_audit_file() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let opaque = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert!(opaque.starts_with("fy_") && opaque.len() == 52, "{opaque}");
    let asked_jwt = app
        .exchange(&deploy_form(
            &subject_token(&app.issuer, OPAQUE_SUBJECT),
            &[("requested_token_type", rfc8693::TOKEN_TYPE_JWT)],
        ))
        .await;
    assert_eq!(asked_jwt.0, 200, "{}", asked_jwt.1);
    assert_eq!(
        asked_jwt.1["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token",
        "an opaque credential is never called a JWT"
    );
    let (_, body, _) = broker.introspect(Some(&caller), &opaque).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], OPAQUE_SUBJECT);
    assert_eq!(body["client_id"], "opaque-deploy");
    assert_eq!(body["aud"], DEPLOY_AUDIENCE);
    assert_eq!(body["scope"], "deploy:api");

    let second = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert_ne!(second, opaque, "opaque credentials are never cached");
    assert_eq!(broker.revoke(&opaque).await, 200);
    assert!(!broker.is_active(&caller, &opaque).await);
    assert!(broker.is_active(&caller, &second).await);

    let trail = std::fs::read_to_string(app.audit_path()).unwrap();
    for token in [&opaque, &second] {
        assert!(
            !trail.contains(token.as_str()),
            "the audit file holds no opaque credential"
        );
        assert!(!trail.contains(&token[3..]), "not even without its prefix");
    }
}

#[tokio::test]
async fn a_rate_limited_subject_gets_429_with_retry_after_and_other_subjects_do_not() {
    let (app, broker) = start().await;
    for _ in 0..2 {
        let (status, body, _) = broker
            .exchange_as(&app.issuer, LIMITED_SUBJECT, DEPLOY_AUDIENCE)
            .await;
        assert_eq!(status, 200, "within the limit: {body}");
    }
    let refused = broker
        .exchange_as(&app.issuer, LIMITED_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert_oauth_error(&refused, 429, "temporarily_unavailable");
    let retry: u64 = refused.2["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (29..=30).contains(&retry),
        "2/min: the next slot is 30 s away, got {retry}"
    );
    let event = app.last_audit_event();
    assert_eq!(
        (event["decision"].as_str(), event["reason"].as_str()),
        (Some("deny"), Some("rate_limited"))
    );

    let other = "repo:acme/limited:ref:refs/heads/dev";
    let (status, body, _) = broker
        .exchange_as(&app.issuer, other, DEPLOY_AUDIENCE)
        .await;
    assert_eq!(status, 200, "another subject has its own budget: {body}");
    let (_, metrics, _) = app.get("/metrics").await;
    assert!(
        metrics.contains("ferry_exchanges_total{decision=\"deny\",reason=\"rate_limited\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_rate_limited_total{policy=\"limited\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_malformed_rate_limit_keeps_the_policy_set_from_loading() {
    let yaml = deploy_policy_with("repo:x:*", "  rate_limit: 60/fortnight\n");
    let error = startup_error(Fixture::empty().policy("bad", &yaml)).await;
    assert!(
        error.contains("invalid `grant.rate_limit` `60/fortnight`"),
        "{error}"
    );
}

/// Re-signs `claims` with the broker's own key file (what only the broker host can do), to
/// build credentials that are correctly signed but break another rule.
fn sign_as_broker(app: &TestApp, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let pem = std::fs::read(app.data_dir.join("signing-key.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = header["kid"].as_str().map(str::to_string);
    h.typ = header["typ"].as_str().map(str::to_string);
    jsonwebtoken::encode(&h, claims, &key).unwrap()
}

#[tokio::test]
async fn a_credential_with_the_brokers_signature_but_another_issuer_or_type_is_inactive() {
    let (app, broker) = start().await;
    let caller = broker.introspector(&app.issuer).await;
    let genuine = broker
        .credential(
            &app.issuer,
            "repo:acme/api:ref:refs/heads/main",
            DEPLOY_AUDIENCE,
        )
        .await;
    let (header, claims) = (jwt_part(&genuine, 0), jwt_part(&genuine, 1));
    let resigned = sign_as_broker(&app, &header, &claims);
    assert!(
        broker.is_active(&caller, &resigned).await,
        "control: re-signing alone is fine"
    );

    let mut other_issuer = claims.clone();
    other_issuer["iss"] = "https://ferry.elsewhere.test".into();
    assert!(
        !broker
            .is_active(&caller, &sign_as_broker(&app, &header, &other_issuer))
            .await
    );
    let mut id_token = header.clone();
    id_token["typ"] = "JWT".into();
    assert!(
        !broker
            .is_active(&caller, &sign_as_broker(&app, &id_token, &claims))
            .await
    );
    let mut no_jti = claims.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    assert!(
        !broker
            .is_active(&caller, &sign_as_broker(&app, &header, &no_jti))
            .await
    );
    let mut future = claims.clone();
    future["nbf"] = (now() + 600).into();
    assert!(
        !broker
            .is_active(&caller, &sign_as_broker(&app, &header, &future))
            .await
    );
}
