//! Self-tests of the loopback issuer every other test relies on: if these fail, a failing
//! broker test says nothing about the broker.

#[path = "../examples/support/dev_issuer.rs"]
mod dev_issuer;

use dev_issuer::{Alg, Claims, DevIssuer, SignWith};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

async fn get_json(url: &str) -> Value {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn verify(issuer: &DevIssuer, jwks: &Value, token: &str, alg: Algorithm) -> Value {
    let jwks: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_audience(&["https://broker.test"]);
    validation.set_issuer(&[issuer.url()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn discovery_names_the_issuer_url_exactly_and_its_jwks() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    assert!(issuer.url().starts_with("http://127.0.0.1:"));
    assert!(!issuer.url().ends_with('/'));
    let config = get_json(&format!(
        "{}/.well-known/openid-configuration",
        issuer.url()
    ))
    .await;
    assert_eq!(config["issuer"], issuer.url());
    assert_eq!(
        config["jwks_uri"],
        format!("{}/.well-known/jwks", issuer.url())
    );
    assert_eq!(issuer.discovery_fetches(), 1);
}

#[tokio::test]
async fn tokens_of_both_algorithms_verify_against_the_published_jwks() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let jwks = get_json(&format!("{}/.well-known/jwks", issuer.url())).await;
    assert_eq!(issuer.jwks_fetches(), 1);
    let claims = Claims::github(&issuer.url(), "https://broker.test");
    let rs = issuer.sign(&claims, Alg::RS256, None);
    let es = issuer.sign(&claims, Alg::ES256, Some("ec-1"));
    assert_eq!(
        verify(&issuer, &jwks, &rs, Algorithm::RS256)["sub"],
        claims.get("sub").unwrap().clone()
    );
    assert_eq!(
        verify(&issuer, &jwks, &es, Algorithm::ES256)["repository_id"],
        "123456789"
    );
}

#[tokio::test]
async fn the_same_keys_are_served_as_a_spiffe_bundle_of_jwt_svid_keys() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let jwks = get_json(&format!("{}/.well-known/jwks", issuer.url())).await;
    let bundle = get_json(&issuer.bundle_url()).await;
    assert_eq!(issuer.jwks_fetches(), 2, "the bundle counts as a key fetch");
    assert_eq!(bundle["spiffe_sequence"], 1);
    assert_eq!(bundle["spiffe_refresh_hint"], 300);
    let (keys, published) = (
        bundle["keys"].as_array().unwrap(),
        jwks["keys"].as_array().unwrap(),
    );
    assert_eq!(keys.len(), published.len());
    for (key, jwk) in keys.iter().zip(published) {
        assert_eq!(key["use"], "jwt-svid");
        assert!(key.get("alg").is_none(), "SPIRE publishes no alg: {key}");
        assert_eq!((&key["kid"], &key["kty"]), (&jwk["kid"], &jwk["kty"]));
    }
    // A JWT-SVID (no `iss`) verifies with the bundle's key once it is a plain JWK again.
    let svid = serde_json::json!({"sub": "spiffe://agents.example.org/a", "aud": ["https://broker.test"],
        "exp": dev_issuer::now() + 60});
    let token = issuer.sign(&svid, Alg::ES256, None);
    let mut key = keys.iter().find(|k| k["kid"] == "ec-1").unwrap().clone();
    key["use"] = "sig".into();
    let jwks: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [key] })).unwrap();
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["https://broker.test"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "spiffe://agents.example.org/a");
}

#[tokio::test]
async fn rotated_keys_are_published_and_withdrawn() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    issuer.rotate_key("rsa-1", "rsa-2", Alg::RS256);
    let jwks = get_json(&format!("{}/.well-known/jwks", issuer.url())).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["ec-1", "rsa-2"]);
    let token = issuer.sign(
        &Claims::github(&issuer.url(), "https://broker.test"),
        Alg::RS256,
        None,
    );
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
        Some("rsa-2")
    );
    verify(&issuer, &jwks, &token, Algorithm::RS256);
}

#[tokio::test]
async fn an_unavailable_issuer_answers_503_and_still_counts_the_fetch() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    issuer.set_unavailable(true);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .get(format!("{}/.well-known/jwks", issuer.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[test]
fn github_claims_are_strings_as_github_sends_them() {
    let claims = Claims::github("http://127.0.0.1:1", "aud").environment("production");
    for key in [
        "repository_id",
        "repository_owner_id",
        "run_id",
        "run_attempt",
        "ref_protected",
        "actor_id",
    ] {
        assert!(claims.get(key).unwrap().is_string(), "{key}");
    }
    assert_eq!(
        claims.get_str("sub"),
        Some("repo:acme/api:environment:production")
    );
    let exp = claims.get("exp").unwrap().as_i64().unwrap();
    assert_eq!(exp - claims.get("iat").unwrap().as_i64().unwrap(), 300);
    let other = Claims::github("http://127.0.0.1:1", "aud");
    assert_ne!(claims.get("jti"), other.get("jti"));
}

#[test]
fn crafted_tokens_carry_their_raw_header_and_payload() {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let token = issuer.sign_with_header(r#"{"alg":"none"}"#, r#"{"a":1,"a":2}"#, SignWith::Empty);
    assert!(token.ends_with('.'));
    let zero = issuer.sign_with_header(r#"{"alg":"ES256"}"#, "{}", SignWith::Raw(vec![0; 64]));
    assert_eq!(zero.rsplit('.').next().unwrap().len(), 86);
    assert!(issuer
        .public_key_pem("rsa-1")
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));
}
