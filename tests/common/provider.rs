//! Helpers shared by the `provider_*` tests: exchange a provider-shaped token at the test broker
//! and assert the outcome, with its audit event.

use serde_json::Value;

use super::{Claims, TestApp, DEPLOY_AUDIENCE};

/// Signs `claims` with the dev issuer, exchanges them for the deploy audience, asserts 200 and
/// returns the verified credential's claims.
pub async fn exchange_granted(app: &TestApp, claims: &Claims) -> Value {
    let (status, body, _) = app.exchange_token(&app.sign(claims), None).await;
    assert_eq!(status, 200, "expected a grant: {body}");
    let credential = body["access_token"].as_str().expect("access_token");
    let event = app.last_audit_event();
    assert_eq!(event["decision"], "allow", "audit event: {event}");
    app.verify_credential(credential, DEPLOY_AUDIENCE).await
}

/// Exchanges `claims` and asserts the generic refusal (400 `invalid_request`, whether the
/// verifier or a policy refused); returns the audit reason.
pub async fn exchange_refused(app: &TestApp, claims: &Claims) -> String {
    super::assert_token_refused(app, &app.sign(claims)).await.1
}
