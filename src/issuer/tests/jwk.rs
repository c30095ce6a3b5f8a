//! JWKS parsing: each key judged alone; unfit keys skipped; ambiguity removed.

use serde_json::{json, Value};

use crate::domain::Algorithm;
use crate::issuer::jwk::{parse_key_set, Selection};
use crate::issuer::testkit::{b64, TestKey};
use crate::issuer::FetchError;

fn parse(algs: &[Algorithm], jwks: Vec<Value>) -> Result<usize, FetchError> {
    parse_key_set(&"test".parse().unwrap(), algs, &jwks).map(|s| s.len())
}

#[test]
fn keys_unfit_for_signatures_are_skipped() {
    let good = TestKey::rsa("good").jwk();
    let mut small_n = vec![0xffu8; 128];
    small_n[127] = 1;
    let mut enc = TestKey::rsa("enc").jwk();
    enc["use"] = json!("enc");
    let mut no_verify = TestKey::rsa("ops").jwk();
    no_verify["key_ops"] = json!(["encrypt"]);
    let mut private = TestKey::rsa("private").jwk();
    private["d"] = json!("AQAB");
    let unfit = [
        json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
        json!({"kty": "RSA", "kid": "rsa1024", "n": b64(&small_n), "e": "AQAB"}),
        json!({"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"}),
        json!({"kty": "EC", "kid": "k256", "crv": "secp256k1", "x": b64(&[1; 32]), "y": b64(&[1; 32])}),
        json!({"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64(&[9; 32])}),
        enc,
        no_verify,
        private,
        json!("not an object"),
    ];
    for key in &unfit {
        assert_eq!(
            parse(&Algorithm::ALL, vec![key.clone()]),
            Err(FetchError::NoUsableKeys),
            "{key}"
        );
    }
    let mut all = unfit.to_vec();
    all.push(good);
    assert_eq!(parse(&Algorithm::ALL, all), Ok(1));
}

#[test]
fn ec_point_off_the_curve_is_skipped() {
    let mut jwk = TestKey::p256("k").jwk();
    jwk["y"] = json!(b64(&[7u8; 32]));
    assert_eq!(
        parse(&[Algorithm::ES256], vec![jwk]),
        Err(FetchError::NoUsableKeys)
    );
}

#[test]
fn duplicate_kids_drop_every_key_sharing_them() {
    let a = TestKey::rsa("dup").jwk();
    let b = TestKey::p256("dup").jwk();
    let c = TestKey::rsa("other").jwk();
    assert_eq!(parse(&Algorithm::ALL, vec![a.clone(), b, c]), Ok(1));
    assert_eq!(
        parse(&Algorithm::ALL, vec![a.clone(), a]),
        Err(FetchError::NoUsableKeys)
    );
}

#[test]
fn keys_without_kid_are_dropped_when_there_are_several() {
    let mut anonymous = TestKey::rsa("x").jwk();
    anonymous.as_object_mut().unwrap().remove("kid");
    let named = TestKey::rsa("named").jwk();
    assert_eq!(
        parse(&Algorithm::ALL, vec![anonymous.clone(), named]),
        Ok(1)
    );
    let set = parse_key_set(&"test".parse().unwrap(), &Algorithm::ALL, &[anonymous]).unwrap();
    assert!(matches!(set.select(None), Selection::Found(_)));
    assert!(matches!(set.select(Some("x")), Selection::UnknownKid));
}

/// Rule 6 counts the keys the issuer published, not the ones left usable: an RS256-only issuer
/// that publishes an RSA and an EC key has two keys, so a token without a `kid` names neither.
#[test]
fn a_token_without_kid_names_no_key_when_the_issuer_published_several() {
    let rsa = TestKey::rsa("k1").jwk();
    let ec = TestKey::p256("k2").jwk();
    let mixed = parse_key_set(
        &"test".parse().unwrap(),
        &[Algorithm::RS256],
        &[rsa.clone(), ec],
    )
    .unwrap();
    assert_eq!(mixed.len(), 1, "the EC key is skipped");
    assert!(matches!(mixed.select(None), Selection::MissingKid));
    assert!(matches!(mixed.select(Some("k1")), Selection::Found(_)));
    let alone = parse_key_set(&"test".parse().unwrap(), &[Algorithm::RS256], &[rsa]).unwrap();
    assert!(matches!(alone.select(None), Selection::Found(_)), "control");
}

#[test]
fn keys_fitting_none_of_the_issuer_algorithms_are_skipped() {
    let ec = TestKey::p256("ec").jwk();
    assert_eq!(
        parse(&[Algorithm::RS256], vec![ec]),
        Err(FetchError::NoUsableKeys)
    );
    let mut rsa = TestKey::rsa("r").jwk();
    rsa["alg"] = json!("RS512");
    assert_eq!(
        parse(&[Algorithm::RS256], vec![rsa]),
        Err(FetchError::NoUsableKeys)
    );
}

#[test]
fn debug_output_of_a_key_holds_no_key_material() {
    let jwk = TestKey::rsa("k1").jwk();
    let set = parse_key_set(
        &"test".parse().unwrap(),
        &[Algorithm::RS256],
        std::slice::from_ref(&jwk),
    )
    .unwrap();
    let printed = format!("{set:?}");
    assert!(printed.contains("k1"));
    assert!(!printed.contains(&jwk["n"].as_str().unwrap()[..16]));
}
