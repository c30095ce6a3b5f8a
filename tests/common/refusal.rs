//! What every refused subject token must get: 400 `invalid_request` with a description that does
//! not say which check failed (no oracle for an attacker), and an audit event naming the reason.

use serde_json::Value;

use super::{assert_oauth_error, spawn_app, Fixture, TestApp};

/// Words that would tell an anonymous caller which verification rule its token broke.
const TELLTALE_WORDS: &[&str] = &[
    "signature",
    "expired",
    "exp",
    "nbf",
    "iat",
    "aud",
    "audience",
    "kid",
    "alg",
    "algorithm",
    "jti",
    "crit",
    "jku",
    "jwk",
    "x5u",
    "x5c",
    "header",
    "base64",
    "duplicate",
    "size",
    "large",
    "issuer",
    "iss",
    "future",
    "old",
    "replay",
    "replayed",
    "ecdsa",
    "rsa",
    "hmac",
];

/// A broker with the deploy policy that has just granted a valid token: the control that keeps
/// a refusal test from passing because the fixture refuses everything.
pub async fn spawn_accepting_app() -> TestApp {
    let app = spawn_app(Fixture::deploy()).await;
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(
        status, 200,
        "control: a valid token must be granted: {body}"
    );
    app
}

/// Exchanges `token` for the deploy audience and asserts the generic refusal, plus an audit
/// event for it with a denial reason. Returns `(error_description, audit reason)`.
pub async fn assert_token_refused(app: &TestApp, token: &str) -> (String, String) {
    let got = app.exchange_token(token, None).await;
    assert_oauth_error(&got, 400, "invalid_request");
    let description = got.1["error_description"].as_str().unwrap().to_string();
    assert_generic(&description);
    let event = app.last_audit_event();
    let reason = assert_denial_event(&event);
    (description, reason)
}

pub fn assert_generic(description: &str) {
    let lower = description.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let told: Vec<&&str> = TELLTALE_WORDS
        .iter()
        .filter(|w| words.contains(w))
        .collect();
    assert!(
        told.is_empty(),
        "description {description:?} names the failed check ({told:?})"
    );
}

/// Asserts a deny event with a reason code; returns the code.
pub fn assert_denial_event(event: &Value) -> String {
    assert_eq!(event["decision"], "deny", "audit event: {event}");
    let reason = event["reason"].as_str().unwrap_or_default();
    assert!(
        !reason.is_empty() && reason != "granted",
        "audit reason: {event}"
    );
    reason.to_string()
}
