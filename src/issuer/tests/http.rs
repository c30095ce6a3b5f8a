//! HTTP fetching against a loopback server: body cap, redirects, discovery, URL rules.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use url::Url;

use crate::domain::Algorithm;
use crate::issuer::http::{build_client, HttpFetcher, HttpSource};
use crate::issuer::testkit::{self, claims, Reply, TestKey, NOW};
use crate::issuer::{FetchError, FetchSettings, KeyFetcher, KeySourceSpec};
use crate::verify::{KeySetupError, Verifier, VerifySettings};

fn url(addr: SocketAddr, path: &str) -> Url {
    format!("http://{addr}{path}").parse().unwrap()
}

fn fetcher(source: HttpSource) -> HttpFetcher {
    let settings = FetchSettings::default();
    HttpFetcher::new(
        build_client(&settings).unwrap(),
        source,
        true,
        settings.max_body_bytes,
    )
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

fn redirect(path: &str, to: &str) -> Reply {
    Reply {
        path: path.into(),
        status: 302,
        headers: vec![("Location".into(), to.into())],
        body: vec![],
    }
}

#[tokio::test]
async fn jwks_url_on_loopback_http_serves_a_verifier() {
    let key = TestKey::rsa("k1");
    let (addr, _) = testkit::serve(vec![Reply::json("/jwks", &jwks(&[&key]))]).await;
    let mut spec = testkit::spec(&[Algorithm::RS256]);
    spec.keys = KeySourceSpec::JwksUrl(url(addr, "/jwks"));
    spec.insecure_http = true;
    let v = Verifier::new(&[spec], VerifySettings::default(), FetchSettings::default()).unwrap();
    assert!(v.verify(&key.token("RS256", &claims()), NOW).await.is_ok());
    assert_eq!(v.key_status()[0].fetch_ok, 1);
}

#[tokio::test]
async fn oversized_body_is_refused_without_trusting_content_length() {
    let big = json!({"keys": [], "pad": "x".repeat(300 * 1024)});
    let (addr, _) = testkit::serve(vec![Reply::json("/jwks", &big)]).await;
    let err = fetcher(HttpSource::Jwks(url(addr, "/jwks")))
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn redirect_to_another_host_is_refused() {
    let key = TestKey::rsa("k1");
    let (other, other_hits) = testkit::serve(vec![Reply::json("/jwks", &jwks(&[&key]))]).await;
    let elsewhere = format!("http://localhost:{}/jwks", other.port());
    let (addr, _) = testkit::serve(vec![redirect("/jwks", &elsewhere)]).await;
    let err = fetcher(HttpSource::Jwks(url(addr, "/jwks")))
        .fetch()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redirect refused"), "{err}");
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_within_the_same_host_are_followed_up_to_three() {
    let key = TestKey::rsa("k1");
    let body = jwks(&[&key]);
    let (addr, _) = testkit::serve(vec![
        redirect("/a", "/b"),
        redirect("/b", "/c"),
        redirect("/c", "/jwks"),
        redirect("/loop", "/loop"),
        Reply::json("/jwks", &body),
    ])
    .await;
    let keys = fetcher(HttpSource::Jwks(url(addr, "/a")))
        .fetch()
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let err = fetcher(HttpSource::Jwks(url(addr, "/loop")))
        .fetch()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redirect refused"), "{err}");
}

#[tokio::test]
async fn non_200_and_html_answers_are_failures() {
    let html = Reply {
        path: "/html".into(),
        status: 200,
        headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
        body: b"<html>login</html>".to_vec(),
    };
    let (addr, _) = testkit::serve(vec![html]).await;
    let err = fetcher(HttpSource::Jwks(url(addr, "/html")))
        .fetch()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTML"), "{err}");
    let err = fetcher(HttpSource::Jwks(url(addr, "/missing")))
        .fetch()
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 404, .. }),
        "{err}"
    );
}

async fn discover(
    issuer_in_doc: &str,
    jwks_uri: &str,
    key: &TestKey,
) -> Result<Vec<Value>, FetchError> {
    let doc = |addr: SocketAddr| {
        let fill = |s: &str| s.replace("{addr}", &addr.to_string());
        json!({"issuer": fill(issuer_in_doc), "jwks_uri": fill(jwks_uri)})
    };
    // The document names the server's own address: replies are built once it is bound.
    let (addr, _) = testkit::serve_with(|addr| {
        vec![
            Reply::json("/.well-known/openid-configuration", &doc(addr)),
            Reply::json("/keys", &jwks(&[key])),
        ]
    })
    .await;
    let issuer = format!("http://{addr}");
    let source = HttpSource::Discovery {
        config_url: HttpFetcher::discovery_url(&format!("{issuer}/").parse().unwrap()).unwrap(),
        issuer,
    };
    fetcher(source).fetch().await
}

#[tokio::test]
async fn discovery_follows_jwks_uri_of_the_matching_issuer() {
    let key = TestKey::rsa("k1");
    let keys = discover("http://{addr}", "http://{addr}/keys", &key)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
}

#[tokio::test]
async fn discovery_issuer_mismatch_is_refused() {
    let key = TestKey::rsa("k1");
    for wrong in ["http://{addr}/", "https://evil.example", "HTTP://{addr}"] {
        let err = discover(wrong, "http://{addr}/keys", &key)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::IssuerMismatch { .. }),
            "{wrong}: {err}"
        );
    }
}

#[tokio::test]
async fn discovered_jwks_uri_obeys_the_scheme_rule() {
    let key = TestKey::rsa("k1");
    for bad in [
        "http://example.com/keys",
        "file:///etc/passwd",
        "ftp://{addr}/keys",
    ] {
        let err = discover("http://{addr}", bad, &key).await.unwrap_err();
        assert!(matches!(err, FetchError::UrlRefused { .. }), "{bad}: {err}");
    }
}

#[test]
fn plain_http_key_urls_are_refused_at_setup_unless_loopback_and_marked() {
    let cases = [
        ("http://127.0.0.1:9/jwks", false),
        ("http://example.com/jwks", true),
        ("http://10.0.0.1/jwks", true),
    ];
    for (u, insecure) in cases {
        let mut spec = testkit::spec(&[Algorithm::RS256]);
        spec.keys = KeySourceSpec::JwksUrl(u.parse().unwrap());
        spec.insecure_http = insecure;
        let result = Verifier::new(&[spec], VerifySettings::default(), FetchSettings::default());
        assert!(matches!(result, Err(KeySetupError::KeyUrl { .. })), "{u}");
    }
    let mut spec = testkit::spec(&[Algorithm::RS256]);
    spec.keys = KeySourceSpec::Discovery("http://[::1]:9/".parse().unwrap());
    spec.insecure_http = true;
    assert!(Verifier::new(&[spec], VerifySettings::default(), FetchSettings::default()).is_ok());
}

#[tokio::test]
async fn pinned_jwks_file_serves_a_verifier() {
    let key = TestKey::rsa("k1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.jwks.json");
    std::fs::write(&path, jwks(&[&key]).to_string()).unwrap();
    let mut spec = testkit::spec(&[Algorithm::RS256]);
    spec.keys = KeySourceSpec::JwksFile(path);
    let v = Verifier::new(&[spec], VerifySettings::default(), FetchSettings::default()).unwrap();
    assert!(v.verify(&key.token("RS256", &claims()), NOW).await.is_ok());
}

#[test]
fn duplicate_issuer_urls_are_refused_at_setup() {
    let a = testkit::spec(&[Algorithm::RS256]);
    let mut b = a.clone();
    b.name = "other".parse().unwrap();
    let result = Verifier::new(&[a, b], VerifySettings::default(), FetchSettings::default());
    assert!(matches!(result, Err(KeySetupError::DuplicateIssuerUrl(_))));
}

/// SECURITY.md "Key fetching": an issuer that accepts the connection and never answers must not
/// hold a fetch (and so a request) past the fetch timeout.
#[tokio::test]
async fn an_issuer_that_never_answers_fails_at_the_fetch_timeout_instead_of_hanging() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold every connection open without writing a byte.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let settings = FetchSettings {
        timeout: std::time::Duration::from_millis(300),
        ..FetchSettings::default()
    };
    let fetcher = HttpFetcher::new(
        build_client(&settings).unwrap(),
        HttpSource::Jwks(url(addr, "/jwks")),
        true,
        settings.max_body_bytes,
    );
    // Generous outer bound: the point is that the fetch ends by itself, with an error.
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), fetcher.fetch()).await;
    silent.abort();
    let result = outcome.expect("the fetch hung past its own timeout");
    assert!(result.is_err(), "a silent issuer produced keys");
}

fn with_cache_control(path: &str, body: &Value, cache_control: &str) -> Reply {
    let mut reply = Reply::json(path, body);
    reply
        .headers
        .push(("Cache-Control".into(), cache_control.into()));
    reply
}

#[tokio::test]
async fn cache_control_max_age_is_read_as_the_documents_freshness() {
    let key = TestKey::rsa("k1");
    let body = jwks(&[&key]);
    let (addr, _) = testkit::serve(vec![
        with_cache_control("/a", &body, "public, max-age=120, must-revalidate"),
        with_cache_control("/b", &body, "no-cache"),
        with_cache_control("/c", &body, "max-age=banana"),
        Reply::json("/d", &body),
    ])
    .await;
    for (path, expected) in [
        ("/a", Some(120)),
        ("/b", Some(0)),
        ("/c", None),
        ("/d", None),
    ] {
        let doc = fetcher(HttpSource::Jwks(url(addr, path)))
            .fetch_document()
            .await
            .unwrap();
        assert_eq!(
            doc.fresh_for,
            expected.map(std::time::Duration::from_secs),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_bundle_endpoint_yields_jwt_svid_keys_and_its_refresh_hint_beats_the_header() {
    let mut jwt = TestKey::p256("jwt-1").jwk();
    jwt["use"] = json!("jwt-svid");
    let mut x509 = TestKey::p256("ca").jwk();
    x509["use"] = json!("x509-svid");
    let bundle = json!({"keys": [jwt, x509], "spiffe_sequence": 12, "spiffe_refresh_hint": 30});
    let (addr, _) =
        testkit::serve(vec![with_cache_control("/bundle", &bundle, "max-age=600")]).await;
    let doc = fetcher(HttpSource::SpiffeBundle(url(addr, "/bundle")))
        .fetch_document()
        .await
        .unwrap();
    assert_eq!(doc.keys.len(), 1);
    assert_eq!(doc.sequence, Some(12));
    assert_eq!(doc.fresh_for, Some(std::time::Duration::from_secs(30)));
}
