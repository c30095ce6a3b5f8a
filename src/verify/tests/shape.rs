//! Rules 1-3: size, compact shape, strict JSON, issuer selection.

use serde_json::json;

use super::*;

#[tokio::test]
async fn oversized_token_is_refused_before_parsing() {
    let (v, _) = rsa_setup();
    let junk = "a".repeat(16 * 1024 + 1);
    assert_eq!(code(&v, &junk).await, "token_too_large");
    assert_eq!(code(&v, &"a".repeat(16 * 1024)).await, "malformed_token");
}

#[tokio::test]
async fn token_without_exactly_three_parts_is_malformed() {
    let (v, key) = rsa_setup();
    let token = key.token("RS256", &claims());
    for bad in [
        token.splitn(3, '.').take(2).collect::<Vec<_>>().join("."),
        format!("{token}.x"),
        String::new(),
    ] {
        assert_eq!(code(&v, &bad).await, "malformed_token", "{bad}");
    }
}

#[tokio::test]
async fn padded_base64_part_is_refused() {
    let (v, key) = rsa_setup();
    let token = key.token("RS256", &claims());
    let (header, rest) = token.split_once('.').unwrap();
    // The header JSON re-encoded with standard padding, e.g. `...fQ==`.
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap();
    let padded = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, &raw);
    assert_ne!(
        padded, header,
        "test needs a header whose length is not a multiple of 3"
    );
    assert_eq!(
        code(&v, &format!("{padded}.{rest}")).await,
        "malformed_token"
    );
}

#[tokio::test]
async fn non_canonical_trailing_bits_are_refused() {
    let (v, key) = rsa_setup();
    let token = key.token("RS256", &claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert_ne!(sig.len() % 4, 0, "a 256-byte signature leaves unused bits");
    // Flip the lowest (unused) bit of the last character: same bytes for a lax decoder.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = sig.as_bytes()[sig.len() - 1];
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    let tweaked = format!("{}{}", &sig[..sig.len() - 1], alphabet[idx ^ 1] as char);
    assert_eq!(
        code(&v, &format!("{input}.{tweaked}")).await,
        "malformed_token"
    );
}

#[tokio::test]
async fn payload_that_is_not_a_json_object_is_malformed() {
    let (v, key) = rsa_setup();
    let header = r#"{"alg":"RS256","kid":"k1"}"#;
    for payload in ["[1,2]", "\"x\"", "not json", "{\"sub\":\"a\"} trailing"] {
        assert_eq!(
            code(&v, &key.token_from_raw("RS256", header, payload)).await,
            "malformed_token"
        );
    }
    assert_eq!(
        code(
            &v,
            &key.token_from_raw("RS256", "[]", &claims().to_string())
        )
        .await,
        "malformed_token"
    );
}

#[tokio::test]
async fn payload_with_invalid_utf8_is_malformed() {
    let (v, key) = rsa_setup();
    let header = testkit::b64(br#"{"alg":"RS256","kid":"k1"}"#);
    let payload = testkit::b64(b"{\"sub\":\"\xff\xfe\"}");
    let input = format!("{header}.{payload}");
    let token = format!(
        "{input}.{}",
        testkit::b64(&key.sign("RS256", input.as_bytes()))
    );
    assert_eq!(code(&v, &token).await, "malformed_token");
}

#[tokio::test]
async fn duplicate_claims_are_refused_at_top_level_nested_and_in_the_header() {
    let (v, key) = rsa_setup();
    let body = claims().to_string();
    let header = r#"{"alg":"RS256","kid":"k1"}"#;
    let top = body.replacen('{', r#"{"sub":"admin","#, 1);
    assert_eq!(
        code(&v, &key.token_from_raw("RS256", header, &top)).await,
        "duplicate_claim"
    );
    let nested = body.replace(r#""nested":{"a":1}"#, r#""nested":{"a":1,"a":2}"#);
    assert_ne!(nested, body);
    assert_eq!(
        code(&v, &key.token_from_raw("RS256", header, &nested)).await,
        "duplicate_claim"
    );
    let two_algs = r#"{"alg":"RS256","kid":"k1","alg":"none"}"#;
    assert_eq!(
        code(&v, &key.token_from_raw("RS256", two_algs, &body)).await,
        "duplicate_claim"
    );
}

#[tokio::test]
async fn unknown_issuer_is_refused_and_nothing_is_fetched() {
    let key = TestKey::rsa("k1");
    let (v, fetcher) = testkit::verifier(
        spec(&[Algorithm::RS256]),
        vec![key.jwk()],
        FetchSettings::default(),
    );
    let token = key.token(
        "RS256",
        &claims_with(|c| {
            c.insert("iss".into(), json!("https://evil.example"));
        }),
    );
    assert_eq!(code(&v, &token).await, "unknown_issuer");
    assert_eq!(fetcher.calls(), 0);
}

#[tokio::test]
async fn issuer_with_a_trailing_slash_is_a_different_issuer() {
    let (v, key) = rsa_setup();
    let iss = format!("{}/", testkit::ISS);
    let token = key.token(
        "RS256",
        &claims_with(|c| {
            c.insert("iss".into(), json!(iss));
        }),
    );
    assert_eq!(code(&v, &token).await, "unknown_issuer");
}

#[tokio::test]
async fn token_without_iss_is_unknown_issuer_and_non_string_iss_is_invalid() {
    let (v, key) = rsa_setup();
    let token = key.token(
        "RS256",
        &claims_with(|c| {
            c.remove("iss");
        }),
    );
    assert_eq!(code(&v, &token).await, "unknown_issuer");
    let token = key.token(
        "RS256",
        &claims_with(|c| {
            c.insert("iss".into(), json!(["x"]));
        }),
    );
    assert_eq!(code(&v, &token).await, "invalid_claim_type");
}
