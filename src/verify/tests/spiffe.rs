//! SPIFFE JWT-SVIDs: issuer chosen by the trust domain of `sub`, never by `iss`; the SPIFFE ID
//! rules on `sub`; `aud` and `exp` required. Each rule with a token built to break it, next to
//! the same setup accepting a valid one.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{code, verify};
use crate::domain::Algorithm;
use crate::issuer::testkit::{self, TestKey, NOW};
use crate::issuer::{
    BundleLocation, FetchSettings, IssuerKind, IssuerSpec, KeyFetcher, KeySourceSpec, MemoryFetcher,
};
use crate::verify::{Verifier, VerifySettings};

const PROD: &str = "spiffe://prod.example.org/ns/ci/sa/deployer";

fn spiffe_spec(name: &str, trust_domain: &str) -> IssuerSpec {
    let trust_domain: crate::domain::TrustDomain = trust_domain.parse().unwrap();
    IssuerSpec {
        name: name.parse().unwrap(),
        kind: IssuerKind::Spiffe,
        issuer_url: trust_domain.id(),
        keys: KeySourceSpec::SpiffeBundle {
            trust_domain,
            bundle: BundleLocation::Url("https://spire.example/bundle".parse().unwrap()),
        },
        algorithms: vec![Algorithm::ES256, Algorithm::RS256],
        max_token_age: None,
        require_jti: false,
        insecure_http: false,
    }
}

/// An OIDC issuer (`test`, key `k1`) and two SPIFFE trust domains, `prod.example.org` (`mesh`,
/// key `prod-1`) and `staging.example.org` (`staging`, key `staging-1`).
fn setup() -> (Verifier, TestKey, TestKey, TestKey) {
    let (oidc, prod, staging) = (
        TestKey::rsa("k1"),
        TestKey::p256("prod-1"),
        TestKey::p256("staging-1"),
    );
    let fetcher =
        |k: &TestKey| -> Arc<dyn KeyFetcher> { Arc::new(MemoryFetcher::new(vec![k.jwk()])) };
    let issuers = vec![
        (testkit::spec(&[Algorithm::RS256]), fetcher(&oidc)),
        (spiffe_spec("mesh", "prod.example.org"), fetcher(&prod)),
        (
            spiffe_spec("staging", "staging.example.org"),
            fetcher(&staging),
        ),
    ];
    let v = Verifier::with_fetchers(issuers, VerifySettings::default(), FetchSettings::default())
        .unwrap();
    (v, oidc, prod, staging)
}

/// A JWT-SVID as SPIRE issues it: `sub`, `aud`, `exp`, `iat`, no `iss`, no `jti`.
fn svid(sub: &str) -> Value {
    json!({"sub": sub, "aud": ["https://ferry.test"], "exp": NOW + 300, "iat": NOW - 5})
}

fn svid_with(sub: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = svid(sub);
    edit(c.as_object_mut().unwrap());
    c
}

#[tokio::test]
async fn a_jwt_svid_without_iss_is_verified_by_the_bundle_of_its_trust_domain() {
    let (v, _, prod, _) = setup();
    let t = verify(&v, &prod.token("ES256", &svid(PROD))).await.unwrap();
    assert_eq!(t.issuer.as_str(), "mesh");
    assert_eq!(t.subject, PROD);
    assert_eq!(t.jti, None);
}

#[tokio::test]
async fn an_iss_in_a_jwt_svid_does_not_select_its_issuer() {
    let (v, _, prod, _) = setup();
    let with_iss = svid_with(PROD, |c| {
        c.insert("iss".into(), json!("https://spire.prod.example.org"));
    });
    assert_eq!(code(&v, &prod.token("ES256", &with_iss)).await, "accepted");
    // The OIDC issuer's URL as `iss` selects the OIDC issuer (RS256 only, no key prod-1).
    let oidc_iss = svid_with(PROD, |c| {
        c.insert("iss".into(), json!(testkit::ISS));
    });
    assert_eq!(
        code(&v, &prod.token("ES256", &oidc_iss)).await,
        "algorithm_not_allowed"
    );
}

#[tokio::test]
async fn a_spiffe_issuer_is_never_selected_by_iss() {
    let (v, _, prod, _) = setup();
    let claims = json!({"iss": "spiffe://prod.example.org", "sub": "repo:acme/api:ref:refs/heads/main",
                        "aud": "https://ferry.test", "exp": NOW + 300});
    assert_eq!(
        code(&v, &prod.token("ES256", &claims)).await,
        "unknown_issuer"
    );
}

#[tokio::test]
async fn a_sub_naming_another_trust_domain_is_judged_by_that_domains_keys_only() {
    let (v, _, prod, staging) = setup();
    let staging_id = "spiffe://staging.example.org/ns/ci/sa/deployer";
    assert_eq!(
        code(&v, &staging.token("ES256", &svid(staging_id))).await,
        "accepted"
    );
    // Signed by prod's key, naming staging: staging's bundle has no such key.
    assert_eq!(
        code(&v, &prod.token("ES256", &svid(staging_id))).await,
        "unknown_key"
    );
    // Signed by prod's key under staging's kid: the signature does not hold.
    let forged = prod.token_with_header(
        &json!({"alg": "ES256", "kid": "staging-1"}),
        &svid(staging_id),
    );
    assert_eq!(code(&v, &forged).await, "bad_signature");
    let unknown = "spiffe://evil.example.org/ns/ci/sa/deployer";
    assert_eq!(
        code(&v, &prod.token("ES256", &svid(unknown))).await,
        "unknown_issuer"
    );
}

#[tokio::test]
async fn each_invalid_spiffe_id_in_sub_is_refused_before_any_key_is_used() {
    let (v, _, prod, _) = setup();
    for sub in [
        "spiffe://prod.example.org/ns/ci/../admin",
        "spiffe://prod.example.org/ns/%2e%2e/admin",
        "spiffe://Prod.example.org/ns/ci",
        "spiffe://prod.example.org:8443/ns/ci",
        "spiffe://user@prod.example.org/ns/ci",
        "spiffe://prod.example.org/ns/ci?admin=1",
        "spiffe://prod.example.org/ns/ci#x",
        "spiffe://prod.example.org/ns//ci",
        "spiffe://prod.example.org/ns/ci/",
    ] {
        assert_eq!(
            code(&v, &prod.token("ES256", &svid(sub))).await,
            "invalid_spiffe_id",
            "{sub}"
        );
    }
}

#[tokio::test]
async fn a_jwt_svid_needs_aud_and_exp() {
    let (v, _, prod, _) = setup();
    let no_aud = svid_with(PROD, |c| {
        c.remove("aud");
    });
    assert_eq!(
        code(&v, &prod.token("ES256", &no_aud)).await,
        "missing_audience"
    );
    let no_exp = svid_with(PROD, |c| {
        c.remove("exp");
    });
    assert_eq!(code(&v, &prod.token("ES256", &no_exp)).await, "missing_exp");
}

#[tokio::test]
async fn an_oidc_token_whose_sub_looks_like_a_spiffe_id_stays_with_its_iss() {
    let (v, oidc, _, _) = setup();
    let claims =
        json!({"iss": testkit::ISS, "sub": PROD, "aud": "https://ferry.test", "exp": NOW + 300});
    let t = verify(&v, &oidc.token("RS256", &claims)).await.unwrap();
    assert_eq!(t.issuer.as_str(), "test");
}

#[tokio::test]
async fn without_spiffe_issuers_a_spiffe_sub_is_an_unknown_issuer() {
    let key = TestKey::p256("prod-1");
    let (v, fetcher) = testkit::verifier(
        testkit::spec(&[Algorithm::ES256]),
        vec![key.jwk()],
        FetchSettings::default(),
    );
    assert_eq!(
        code(
            &v,
            &key.token("ES256", &svid("spiffe://prod.example.org/../x"))
        )
        .await,
        "unknown_issuer"
    );
    assert_eq!(
        fetcher.calls(),
        0,
        "nothing is fetched for an unknown issuer"
    );
}

#[tokio::test]
async fn a_jwt_svid_typ_header_other_than_jwt_or_jose_is_refused() {
    let (v, _, prod, _) = setup();
    for (typ, expected) in [
        (json!("JWT"), "accepted"),
        (json!("JOSE"), "accepted"),
        (json!("at+jwt"), "invalid_svid_type"),
        (json!(1), "invalid_svid_type"),
    ] {
        let header = json!({"alg": "ES256", "kid": "prod-1", "typ": typ});
        let token = prod.token_with_header(&header, &svid(PROD));
        assert_eq!(code(&v, &token).await, expected, "{typ}");
    }
    let untyped = prod.token_with_header(&json!({"alg": "ES256", "kid": "prod-1"}), &svid(PROD));
    assert_eq!(code(&v, &untyped).await, "accepted");
}

#[test]
fn two_issuers_bound_to_one_trust_domain_are_refused_at_setup() {
    let fetcher = || -> Arc<dyn KeyFetcher> { Arc::new(MemoryFetcher::new(vec![])) };
    let issuers = vec![
        (spiffe_spec("mesh", "prod.example.org"), fetcher()),
        (spiffe_spec("mesh-2", "prod.example.org"), fetcher()),
    ];
    let result =
        Verifier::with_fetchers(issuers, VerifySettings::default(), FetchSettings::default());
    assert!(matches!(
        result,
        Err(crate::verify::KeySetupError::DuplicateIssuerUrl(url)) if url == "spiffe://prod.example.org"
    ));
}
