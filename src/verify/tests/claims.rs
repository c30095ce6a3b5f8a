//! Rules 7-9: lifetime with leeway, max token age, `aud`, `sub`, `jti`.

use std::time::Duration;

use serde_json::json;

use super::*;

async fn code_for(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> &'static str {
    let (v, key) = rsa_setup();
    code(&v, &key.token("RS256", &claims_with(edit))).await
}

fn set(name: &'static str, value: Value) -> impl FnOnce(&mut serde_json::Map<String, Value>) {
    move |c| {
        c.insert(name.into(), value);
    }
}

fn remove(name: &'static str) -> impl FnOnce(&mut serde_json::Map<String, Value>) {
    move |c| {
        c.remove(name);
    }
}

#[tokio::test]
async fn exp_is_required_and_must_be_a_number() {
    assert_eq!(code_for(remove("exp")).await, "missing_exp");
    assert_eq!(
        code_for(set("exp", json!((NOW + 300).to_string()))).await,
        "invalid_claim_type"
    );
    assert_eq!(
        code_for(set("exp", Value::Null)).await,
        "invalid_claim_type"
    );
}

#[tokio::test]
async fn expired_token_is_refused_beyond_the_leeway_only() {
    assert_eq!(code_for(set("exp", json!(NOW - 60))).await, "token_expired");
    assert_eq!(code_for(set("exp", json!(NOW - 59))).await, "accepted");
    assert_eq!(code_for(set("exp", json!(i64::MIN))).await, "token_expired");
    assert_eq!(
        code_for(set("exp", json!((NOW - 60) as f64 + 0.9))).await,
        "token_expired"
    );
}

#[tokio::test]
async fn nbf_in_the_future_beyond_the_leeway_is_refused() {
    assert_eq!(code_for(set("nbf", json!(NOW + 61))).await, "not_yet_valid");
    assert_eq!(code_for(set("nbf", json!(NOW + 60))).await, "accepted");
    assert_eq!(code_for(set("nbf", json!("0"))).await, "invalid_claim_type");
}

#[tokio::test]
async fn iat_in_the_future_beyond_the_leeway_is_refused() {
    assert_eq!(
        code_for(set("iat", json!(NOW + 61))).await,
        "issued_in_future"
    );
    assert_eq!(
        code_for(set("iat", json!(true))).await,
        "invalid_claim_type"
    );
}

async fn code_with_max_age(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> &'static str {
    let key = TestKey::rsa("k1");
    let mut s = spec(&[Algorithm::RS256]);
    s.max_token_age = Some(Duration::from_secs(600));
    let (v, _) = testkit::verifier(s, vec![key.jwk()], FetchSettings::default());
    code(&v, &key.token("RS256", &claims_with(edit))).await
}

#[tokio::test]
async fn token_older_than_max_token_age_is_refused() {
    assert_eq!(
        code_with_max_age(set("iat", json!(NOW - 661))).await,
        "token_too_old"
    );
    assert_eq!(
        code_with_max_age(set("iat", json!(NOW - 660))).await,
        "accepted"
    );
}

#[tokio::test]
async fn iat_is_required_when_the_issuer_limits_token_age() {
    assert_eq!(code_with_max_age(remove("iat")).await, "missing_iat");
    assert_eq!(code_for(remove("iat")).await, "accepted");
}

#[tokio::test]
async fn aud_is_required_as_a_string_or_non_empty_string_array() {
    assert_eq!(code_for(remove("aud")).await, "missing_audience");
    assert_eq!(code_for(set("aud", json!([]))).await, "missing_audience");
    assert_eq!(code_for(set("aud", json!(""))).await, "missing_audience");
    assert_eq!(
        code_for(set("aud", json!(["a", 1]))).await,
        "invalid_claim_type"
    );
    assert_eq!(
        code_for(set("aud", json!({"a": 1}))).await,
        "invalid_claim_type"
    );
    let (v, key) = rsa_setup();
    let token = key.token("RS256", &claims_with(set("aud", json!(["a", "b"]))));
    assert_eq!(verify(&v, &token).await.unwrap().audiences, vec!["a", "b"]);
}

#[tokio::test]
async fn sub_is_required_as_a_non_empty_string() {
    assert_eq!(code_for(remove("sub")).await, "missing_subject");
    assert_eq!(code_for(set("sub", json!(""))).await, "missing_subject");
    assert_eq!(code_for(set("sub", json!(42))).await, "invalid_claim_type");
}

#[tokio::test]
async fn jti_is_required_when_the_issuer_says_so() {
    let key = TestKey::rsa("k1");
    let mut s = spec(&[Algorithm::RS256]);
    s.require_jti = true;
    let (v, _) = testkit::verifier(s, vec![key.jwk()], FetchSettings::default());
    for (edit, want) in [
        (claims_with(remove("jti")), "missing_jti"),
        (claims_with(set("jti", json!(""))), "missing_jti"),
        (claims_with(set("jti", json!(7))), "invalid_claim_type"),
        (claims(), "accepted"),
    ] {
        assert_eq!(code(&v, &key.token("RS256", &edit)).await, want);
    }
    assert_eq!(code_for(remove("jti")).await, "accepted");
}
