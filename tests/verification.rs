//! Subject-token verification through HTTP: the shape, header and signature rules (SECURITY.md
//! rules 1, 2, 4, 5, 6 and 10), each with a token built to break exactly that rule.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::*;
use serde_json::json;

/// A token whose header is `header` and whose payload is valid, signed by the real `rsa-1` key.
fn signed_with_header(app: &TestApp, header: serde_json::Value) -> String {
    app.issuer.sign_with_header(
        &header.to_string(),
        &app.claims().to_json(),
        SignWith::Key("rsa-1"),
    )
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "none", "typ": "JWT", "kid": "rsa-1" }).to_string();
    let token = app
        .issuer
        .sign_with_header(&header, &app.claims().to_json(), SignWith::Empty);
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn hs256_keyed_with_the_issuers_public_rsa_key_is_refused() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "rsa-1" }).to_string();
    let pem = app.issuer.public_key_pem("rsa-1");
    let token = app.issuer.sign_with_header(
        &header,
        &app.claims().to_json(),
        SignWith::HmacSha256(pem.as_bytes()),
    );
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn an_embedded_jwk_header_is_never_trusted() {
    let app = spawn_accepting_app().await;
    let attacker = DevIssuer::start("127.0.0.1:0");
    let attacker_jwk = attacker.jwks()["keys"][0].clone();
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-1", "jwk": attacker_jwk });
    let token = attacker.sign_with_header(
        &header.to_string(),
        &app.claims().to_json(),
        SignWith::Key("rsa-1"),
    );
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn a_jku_header_is_refused_and_never_fetched() {
    let app = spawn_accepting_app().await;
    let attacker = DevIssuer::start("127.0.0.1:0");
    let jku = format!("{}/.well-known/jwks", attacker.url());
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-1", "jku": jku });
    let token = attacker.sign_with_header(
        &header.to_string(),
        &app.claims().to_json(),
        SignWith::Key("rsa-1"),
    );
    assert_token_refused(&app, &token).await;
    assert_eq!(
        attacker.jwks_fetches(),
        0,
        "the broker fetched a URL named by a token"
    );
}

#[tokio::test]
async fn a_crit_header_is_refused_even_when_correctly_signed() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-1", "crit": ["http://example.com/x"], "http://example.com/x": true });
    assert_token_refused(&app, &signed_with_header(&app, header)).await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "no-such-key" });
    assert_token_refused(&app, &signed_with_header(&app, header)).await;
}

#[tokio::test]
async fn a_token_without_kid_is_refused_when_the_issuer_has_several_keys() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "RS256", "typ": "JWT" });
    assert_token_refused(&app, &signed_with_header(&app, header)).await;
}

#[tokio::test]
async fn an_es256_header_naming_the_rsa_key_is_refused() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": "rsa-1" }).to_string();
    // A genuine ES256 signature by the issuer's EC key, presented under the RSA key's kid.
    let token =
        app.issuer
            .sign_with_header(&header, &app.claims().to_json(), SignWith::Key("ec-1"));
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn an_ecdsa_signature_with_r_and_s_zero_is_refused() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": "ec-1" }).to_string();
    let token =
        app.issuer
            .sign_with_header(&header, &app.claims().to_json(), SignWith::Raw(vec![0; 64]));
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn a_token_over_16_kib_is_refused() {
    let app = spawn_accepting_app().await;
    let claims = app.claims().set("padding", "x".repeat(17 * 1024));
    let token = app.sign(&claims);
    assert!(token.len() > 16 * 1024);
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn duplicate_keys_in_the_payload_are_refused() {
    let app = spawn_accepting_app().await;
    let claims = app.claims().to_json();
    // The first `sub` would fail the policy; a last-wins parser would see only the second.
    let payload = claims.replacen('{', r#"{"sub":"repo:evil/api:ref:refs/heads/main","#, 1);
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-1" }).to_string();
    let token = app
        .issuer
        .sign_with_header(&header, &payload, SignWith::Key("rsa-1"));
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn duplicate_keys_in_the_header_are_refused() {
    let app = spawn_accepting_app().await;
    let header = r#"{"alg":"RS256","typ":"JWT","kid":"rsa-1","kid":"rsa-1"}"#;
    let token =
        app.issuer
            .sign_with_header(header, &app.claims().to_json(), SignWith::Key("rsa-1"));
    assert_token_refused(&app, &token).await;
}

#[tokio::test]
async fn parts_that_are_not_unpadded_base64url_are_refused() {
    let app = spawn_accepting_app().await;
    for variant in non_base64url_variants(&app.token()) {
        assert_token_refused(&app, &variant).await;
    }
}

/// A valid token re-encoded in ways strict base64url decoding must reject.
fn non_base64url_variants(token: &str) -> Vec<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap();
    vec![
        // Standard alphabet with padding for the signature (RSA-2048: 256 bytes -> `=` padded).
        format!("{}.{}.{}", parts[0], parts[1], STANDARD.encode(&signature)),
        // Padding appended to the header.
        format!("{}==.{}.{}", parts[0], parts[1], parts[2]),
        // Characters outside any base64 alphabet.
        format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
        // Four parts.
        format!("{token}.{}", parts[2]),
    ]
}

#[tokio::test]
async fn every_verification_failure_gets_the_same_description() {
    let app = spawn_accepting_app().await;
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "no-such-key" });
    let tokens = [
        app.sign(&app.claims().expires_in(-3600)),
        app.sign(&app.claims().audience("https://elsewhere.example")),
        signed_with_header(&app, header),
        app.sign(&app.claims().remove("jti")),
        "not-a-jwt".to_string(),
    ];
    let mut descriptions = std::collections::BTreeSet::new();
    for token in &tokens {
        descriptions.insert(assert_token_refused(&app, token).await.0);
    }
    assert_eq!(
        descriptions.len(),
        1,
        "descriptions differ by failed check: {descriptions:?}"
    );
}
