//! Verification rules, one token built to break each (SECURITY.md "Token verification").

mod claims;
mod fuzz;
mod header;
mod kubernetes;
mod shape;
mod spiffe;

use serde_json::Value;

use super::{VerifiedToken, Verifier, VerifyError};
use crate::domain::Algorithm;
use crate::issuer::testkit::{self, claims, spec, TestKey, NOW};
use crate::issuer::FetchSettings;

/// A verifier for one RSA (RS256/PS256) key, and that key.
fn rsa_setup() -> (Verifier, TestKey) {
    let key = TestKey::rsa("k1");
    let (v, _) = testkit::verifier(
        spec(&[Algorithm::RS256, Algorithm::PS256]),
        vec![key.jwk()],
        FetchSettings::default(),
    );
    (v, key)
}

async fn verify(v: &Verifier, token: &str) -> Result<VerifiedToken, VerifyError> {
    v.verify(token, NOW).await
}

async fn code(v: &Verifier, token: &str) -> &'static str {
    match verify(v, token).await {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    }
}

/// `claims()` with `edit` applied.
fn claims_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = claims();
    edit(c.as_object_mut().unwrap());
    c
}

#[tokio::test]
async fn valid_rs256_token_is_verified_with_all_fields() {
    let (v, key) = rsa_setup();
    let token = key.token("RS256", &claims());
    let t = verify(&v, &token).await.unwrap();
    assert_eq!(t.issuer.as_str(), "test");
    assert_eq!(t.subject, "repo:acme/api:ref:refs/heads/main");
    assert_eq!(t.audiences, vec!["https://ferry.test".to_string()]);
    assert_eq!((t.expires_at, t.issued_at), (NOW + 300, Some(NOW - 10)));
    assert_eq!(t.jti.as_deref(), Some("id-1"));
    assert_eq!(t.claims["nested"]["a"], 1);
    assert_eq!(
        (t.algorithm, t.key_id.as_deref()),
        (Algorithm::RS256, Some("k1"))
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(t.token_sha256, hex);
}

#[tokio::test]
async fn every_supported_algorithm_verifies_with_its_own_key_type() {
    let cases = [
        (
            TestKey::rsa("r"),
            ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"].as_slice(),
        ),
        (TestKey::p256("p256"), &["ES256"]),
        (TestKey::p384("p384"), &["ES384"]),
        (TestKey::ed25519("ed"), &["EdDSA"]),
    ];
    for (key, algs) in cases {
        let (v, _) = testkit::verifier(
            spec(&Algorithm::ALL),
            vec![key.jwk()],
            FetchSettings::default(),
        );
        for alg in algs {
            assert_eq!(
                code(&v, &key.token(alg, &claims())).await,
                "accepted",
                "{alg}"
            );
        }
    }
}

#[tokio::test]
async fn tampered_payload_fails_the_signature() {
    let (v, key) = rsa_setup();
    let token = key.token("RS256", &claims());
    let other = testkit::b64(
        claims_with(|c| {
            c.insert("sub".into(), "admin".into());
        })
        .to_string()
        .as_bytes(),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{other}.{}", parts[0], parts[2]);
    assert_eq!(code(&v, &forged).await, "bad_signature");
}

#[tokio::test]
async fn token_signed_by_another_key_with_the_same_kid_is_refused() {
    let (v, _) = rsa_setup();
    let impostor = TestKey::rsa("k1");
    assert_eq!(
        code(&v, &impostor.token("RS256", &claims())).await,
        "bad_signature"
    );
}

#[tokio::test]
async fn es256_signature_with_r_and_s_zero_is_refused() {
    // CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
    let key = TestKey::p256("k1");
    let (v, _) = testkit::verifier(
        spec(&[Algorithm::ES256]),
        vec![key.jwk()],
        FetchSettings::default(),
    );
    let token = key.token("ES256", &claims());
    let input = token.rsplit_once('.').unwrap().0;
    let forged = format!("{input}.{}", testkit::b64(&[0u8; 64]));
    assert_eq!(code(&v, &forged).await, "bad_signature");
    // And r = s = n (the group order), which reduces to zero.
    let n = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let order: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&n[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let forged = format!("{input}.{}", testkit::b64(&[order.clone(), order].concat()));
    assert_eq!(code(&v, &forged).await, "bad_signature");
}

#[test]
fn verifier_is_send_and_sync_and_verify_future_is_send() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let (v, _) = rsa_setup();
    send_sync(&v);
    send(v.verify("x", NOW));
}
