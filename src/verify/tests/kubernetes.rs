//! Kubernetes legacy secret-based service-account tokens are refused by name.

use serde_json::json;

use super::*;

/// What a `kubernetes.io/service-account-token` Secret holds: no `exp`, no `aud`, the fixed
/// legacy issuer and the flat `kubernetes.io/serviceaccount/...` claims.
fn legacy_claims() -> Value {
    json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "ci",
        "kubernetes.io/serviceaccount/secret.name": "deployer-token-x7k2p",
        "kubernetes.io/serviceaccount/service-account.name": "deployer",
        "kubernetes.io/serviceaccount/service-account.uid": "5c0f4a2e-8d7b-4f6a-9c3e-1b2a3d4e5f60",
        "sub": "system:serviceaccount:ci:deployer"
    })
}

#[tokio::test]
async fn legacy_service_account_token_is_refused_with_its_own_reason() {
    let (v, key) = rsa_setup();
    assert_eq!(code(&v, &key.token("RS256", &claims())).await, "accepted");
    let token = key.token("RS256", &legacy_claims());
    assert_eq!(code(&v, &token).await, "legacy_service_account_token");
}

#[tokio::test]
async fn legacy_issuer_is_refused_even_with_an_exp() {
    let (v, key) = rsa_setup();
    let mut c = legacy_claims();
    c["exp"] = json!(NOW + 300);
    c["aud"] = json!("https://ferry.test");
    let token = key.token("RS256", &c);
    assert_eq!(code(&v, &token).await, "legacy_service_account_token");
}
