//! Rules 4-6: algorithm allowlist, key/algorithm binding, forbidden headers, kid selection.

use serde_json::json;

use super::*;

fn unsigned(header: &Value, payload: &Value, signature: &[u8]) -> String {
    let h = testkit::b64(header.to_string().as_bytes());
    let p = testkit::b64(payload.to_string().as_bytes());
    format!("{h}.{p}.{}", testkit::b64(signature))
}

#[tokio::test]
async fn alg_none_is_refused_with_or_without_a_signature() {
    let (v, _) = rsa_setup();
    let header = json!({"alg": "none", "kid": "k1"});
    assert_eq!(
        code(&v, &unsigned(&header, &claims(), b"")).await,
        "malformed_token"
    );
    assert_eq!(
        code(&v, &unsigned(&header, &claims(), b"x")).await,
        "algorithm_not_allowed"
    );
}

#[tokio::test]
async fn hs256_signed_with_rsa_public_key_is_refused() {
    let (v, key) = rsa_setup();
    let header = json!({"alg": "HS256", "kid": "k1"});
    let h = testkit::b64(header.to_string().as_bytes());
    let p = testkit::b64(claims().to_string().as_bytes());
    let input = format!("{h}.{p}");
    let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key.public_bytes());
    let tag = aws_lc_rs::hmac::sign(&mac_key, input.as_bytes());
    let token = format!("{input}.{}", testkit::b64(tag.as_ref()));
    assert_eq!(code(&v, &token).await, "algorithm_not_allowed");
}

#[tokio::test]
async fn algorithm_outside_the_issuer_allowlist_is_refused() {
    let key = TestKey::rsa("k1");
    let (v, _) = testkit::verifier(
        spec(&[Algorithm::PS256]),
        vec![key.jwk()],
        FetchSettings::default(),
    );
    assert_eq!(
        code(&v, &key.token("RS256", &claims())).await,
        "algorithm_not_allowed"
    );
    assert_eq!(
        code(&v, &key.token("es256", &claims())).await,
        "algorithm_not_allowed"
    );
}

#[tokio::test]
async fn rsa_key_never_verifies_es256() {
    let rsa = TestKey::rsa("k1");
    let ec = TestKey::p256("k1");
    let (v, _) = testkit::verifier(
        spec(&[Algorithm::RS256, Algorithm::ES256]),
        vec![rsa.jwk()],
        FetchSettings::default(),
    );
    assert_eq!(
        code(&v, &ec.token("ES256", &claims())).await,
        "key_algorithm_mismatch"
    );
}

#[tokio::test]
async fn p256_key_never_verifies_es384() {
    let p256 = TestKey::p256("k1");
    let p384 = TestKey::p384("k1");
    let (v, _) = testkit::verifier(
        spec(&[Algorithm::ES256, Algorithm::ES384]),
        vec![p256.jwk()],
        FetchSettings::default(),
    );
    assert_eq!(
        code(&v, &p384.token("ES384", &claims())).await,
        "key_algorithm_mismatch"
    );
}

#[tokio::test]
async fn jwk_alg_must_equal_the_header_alg() {
    let key = TestKey::rsa("k1");
    let mut jwk = key.jwk();
    jwk["alg"] = json!("PS256");
    let (v, _) = testkit::verifier(
        spec(&[Algorithm::RS256, Algorithm::PS256]),
        vec![jwk],
        FetchSettings::default(),
    );
    assert_eq!(
        code(&v, &key.token("RS256", &claims())).await,
        "key_algorithm_mismatch"
    );
    assert_eq!(code(&v, &key.token("PS256", &claims())).await, "accepted");
}

#[tokio::test]
async fn key_finding_headers_are_refused() {
    let (v, key) = rsa_setup();
    let embedded = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
    for (name, value) in [
        ("jwk", embedded),
        ("jku", json!("https://evil.example/jwks")),
        ("x5u", json!("https://evil.example/cert")),
        ("x5c", json!(["MIIB"])),
    ] {
        let header = json!({"alg": "RS256", "kid": "k1", name: value});
        let token = key.token_with_header(&header, &claims());
        assert_eq!(code(&v, &token).await, "forbidden_header", "{name}");
    }
}

#[tokio::test]
async fn crit_header_is_refused() {
    let (v, key) = rsa_setup();
    let header = json!({"alg": "RS256", "kid": "k1", "crit": ["b64"], "b64": false});
    assert_eq!(
        code(&v, &key.token_with_header(&header, &claims())).await,
        "forbidden_header"
    );
}

#[tokio::test]
async fn several_keys_and_no_kid_is_refused() {
    let a = TestKey::rsa("a");
    let b = TestKey::rsa("b");
    let (v, _) = testkit::verifier(
        spec(&[Algorithm::RS256]),
        vec![a.jwk(), b.jwk()],
        FetchSettings::default(),
    );
    let token = a.token_with_header(&json!({"alg": "RS256"}), &claims());
    assert_eq!(code(&v, &token).await, "missing_kid");
    assert_eq!(code(&v, &a.token("RS256", &claims())).await, "accepted");
    assert_eq!(code(&v, &b.token("RS256", &claims())).await, "accepted");
}

#[tokio::test]
async fn single_key_is_used_when_the_token_has_no_kid() {
    let (v, key) = rsa_setup();
    let token = key.token_with_header(&json!({"alg": "RS256"}), &claims());
    let t = verify(&v, &token).await.unwrap();
    assert_eq!(t.key_id, None);
}

#[tokio::test]
async fn unknown_kid_is_refused_after_one_refresh() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = testkit::verifier(
        spec(&[Algorithm::RS256]),
        vec![key.jwk()],
        FetchSettings {
            refresh_cooldown: std::time::Duration::ZERO,
            ..FetchSettings::default()
        },
    );
    v.warm_up().await;
    let stranger = TestKey::rsa("k2");
    assert_eq!(
        code(&v, &stranger.token("RS256", &claims())).await,
        "unknown_key"
    );
    assert_eq!(fetcher.calls(), 2);
}

#[tokio::test]
async fn non_string_kid_is_malformed() {
    let (v, key) = rsa_setup();
    let token = key.token_with_header(&json!({"alg": "RS256", "kid": 1}), &claims());
    assert_eq!(code(&v, &token).await, "malformed_token");
}
