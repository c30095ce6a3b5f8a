//! Shared integration-test harness: `spawn_app` runs the real broker in-process on port 0 against
//! a fresh loopback issuer and a temporary policy directory, so tests never share state, never
//! depend on order, and never need a fixed port.
//!
//! Each test crate uses a different subset of these helpers; hence the `dead_code` and `unused_imports` allowance.
#![allow(dead_code, unused_imports)]

pub mod agents;
#[path = "../../examples/support/dev_issuer.rs"]
pub mod dev_issuer;
pub mod fixture;
pub mod lifecycle;
pub mod provider;
pub mod redis_server;
pub mod refusal;
pub mod replica;
#[path = "../../examples/support/rfc8693.rs"]
pub mod rfc8693;
pub mod spiffe;

use std::path::{Path, PathBuf};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

pub use dev_issuer::{now, Alg, Claims, DevIssuer, SignWith};
pub use fixture::{policy_with, Fixture, DEPLOY_AUDIENCE, DEPLOY_POLICY, PINNED_JWKS_FILE};
pub use refusal::{assert_denial_event, assert_generic, assert_token_refused, spawn_accepting_app};

/// A running broker and everything a test needs to talk to it.
pub struct TestApp {
    pub issuer: DevIssuer,
    /// `http://127.0.0.1:PORT`: the broker's public URL, credential `iss` and default audience.
    pub base_url: String,
    pub addr: std::net::SocketAddr,
    pub data_dir: PathBuf,
    pub policies_dir: PathBuf,
    pub client: reqwest::Client,
    /// Keep the temporary directories alive as long as the app.
    _temp: Vec<tempfile::TempDir>,
}

/// Starts a dev issuer and a broker configured by `fixture`.
pub async fn spawn_app(fixture: Fixture) -> TestApp {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let policies = tempfile::tempdir().expect("policy dir");
    write_policies(policies.path(), &issuer, &fixture);
    let mut temp = vec![];
    let data_dir = match &fixture.data_dir {
        Some(dir) => dir.clone(),
        None => {
            let dir = tempfile::tempdir().expect("data dir");
            let path = dir.path().to_path_buf();
            temp.push(dir);
            path
        }
    };
    let mut settings = ferry::config::Settings::for_tests(policies.path(), &data_dir);
    for tweak in fixture.tweaks {
        tweak(&mut settings);
    }
    let app = ferry::startup::Application::build(settings)
        .await
        .expect("the test broker builds");
    let (addr, base_url) = (app.local_addr(), app.base_url());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let policies_dir = policies.path().to_path_buf();
    temp.push(policies);
    TestApp {
        issuer,
        base_url,
        addr,
        data_dir,
        policies_dir,
        client,
        _temp: temp,
    }
}

/// Tries to start a broker configured by `fixture` and returns why it refused to start; panics
/// if it started (for sets the loader must refuse as a whole).
pub async fn startup_error(fixture: Fixture) -> String {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let policies = tempfile::tempdir().expect("policy dir");
    write_policies(policies.path(), &issuer, &fixture);
    let data_dir = tempfile::tempdir().expect("data dir");
    let settings = ferry::config::Settings::for_tests(policies.path(), data_dir.path());
    match ferry::startup::Application::build(settings).await {
        Ok(_) => panic!("the broker started with a policy set it must refuse"),
        Err(e) => e.to_string(),
    }
}

fn write_policies(dir: &Path, issuer: &DevIssuer, fixture: &Fixture) {
    let mut issuers = match &fixture.issuer_kind {
        Some((kind, extra)) => fixture::kind_issuers_yaml(&issuer.url(), kind, extra),
        None => fixture::issuers_yaml(&issuer.url()),
    };
    for entry in &fixture.extra_issuers {
        issuers.push_str(entry);
    }
    std::fs::write(dir.join("issuers.yaml"), issuers).unwrap();
    if fixture.pinned_keys {
        let jwks = issuer.jwks().to_string();
        std::fs::write(dir.join(fixture::PINNED_JWKS_FILE), jwks).unwrap();
    }
    for (path, content) in &fixture.files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    if let Some(guardrails) = &fixture.guardrails {
        std::fs::write(dir.join("guardrails.yaml"), guardrails).unwrap();
    }
    for (name, yaml) in &fixture.policies {
        std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
    }
}

impl TestApp {
    /// GitHub-shaped claims from this app's issuer, for this broker's own audience.
    pub fn claims(&self) -> Claims {
        Claims::github(&self.issuer.url(), &self.base_url)
    }

    /// Signs with the issuer's RSA key (`rsa-1`).
    pub fn sign(&self, claims: &Claims) -> String {
        self.issuer.sign(claims, Alg::RS256, None)
    }

    /// A fresh valid token (new `jti` each call).
    pub fn token(&self) -> String {
        self.sign(&self.claims())
    }

    /// `POST /token` with the given form fields, in order.
    pub async fn exchange(&self, form: &[(&str, &str)]) -> (StatusCode, Value, HeaderMap) {
        let body = rfc8693::encode_form(form);
        self.post_token(body, rfc8693::FORM_CONTENT_TYPE).await
    }

    /// The standard exchange of `token` for the deploy audience, optionally narrowed.
    pub async fn exchange_token(
        &self,
        token: &str,
        scope: Option<&str>,
    ) -> (StatusCode, Value, HeaderMap) {
        let body = rfc8693::exchange_form(token, DEPLOY_AUDIENCE, scope);
        self.post_token(body, rfc8693::FORM_CONTENT_TYPE).await
    }

    /// `POST /token` with an arbitrary body and content type.
    pub async fn post_token(
        &self,
        body: String,
        content_type: &str,
    ) -> (StatusCode, Value, HeaderMap) {
        let response = self
            .client
            .post(format!("{}/token", self.base_url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST /token");
        read_json(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String, HeaderMap) {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, response.text().await.unwrap(), headers)
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let (status, text, _) = self.get(path).await;
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{status}: body is not JSON: {text}"));
        (status, body)
    }

    /// Waits (20 s at most) until `/readyz` reports `policies` loaded, after a change to the
    /// policy directory that a hot reload picks up; panics with the last report if it never
    /// does.
    pub async fn wait_for_loaded_policies(&self, policies: u64) {
        for _ in 0..400 {
            let (_, ready) = self.get_json("/readyz").await;
            if ready["policies"]["loaded"] == policies {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (_, ready) = self.get_json("/readyz").await;
        panic!("{policies} policies never loaded: {ready}");
    }

    pub fn audit_path(&self) -> PathBuf {
        self.data_dir.join("audit.jsonl")
    }

    /// Every audit event written so far, in order (empty when there is no file yet).
    pub fn audit_events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        let lines = text.lines().filter(|l| !l.trim().is_empty());
        lines
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// The most recent audit event; panics when there is none.
    pub fn last_audit_event(&self) -> Value {
        self.audit_events()
            .pop()
            .expect("an audit event was written")
    }

    /// Verifies a minted credential against the broker's published JWKS, as a resource server
    /// would (ES256, `iss` = the broker, `aud` = `audience`), returning its claims.
    pub async fn verify_credential(&self, credential: &str, audience: &str) -> Value {
        let (status, jwks) = self.get_json("/.well-known/jwks.json").await;
        assert_eq!(status, 200, "JWKS is served");
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).expect("a JWK set");
        let kid = jsonwebtoken::decode_header(credential)
            .unwrap()
            .kid
            .expect("kid");
        let jwk = jwks.find(&kid).expect("the credential's kid is published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.base_url]);
        jsonwebtoken::decode::<Value>(credential, &key, &validation)
            .expect("the credential verifies")
            .claims
    }
}

async fn read_json(response: reqwest::Response) -> (StatusCode, Value, HeaderMap) {
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.bytes().await.expect("response body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{status}: body is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body, headers)
}

/// Decodes a compact JWS part (0 header, 1 payload) without verifying: for assertions only.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("compact JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Asserts an RFC 6749 §5.2 error: the status, the `error` code, a string description, no other
/// fields but `error_uri`, and `Cache-Control: no-store`.
pub fn assert_oauth_error(got: &(StatusCode, Value, HeaderMap), status: u16, error: &str) {
    let (got_status, body, headers) = got;
    assert_eq!(got_status.as_u16(), status, "status; body: {body}");
    assert_eq!(body["error"], error, "error code; body: {body}");
    assert!(
        body["error_description"].is_string(),
        "error_description; body: {body}"
    );
    let fields = body.as_object().expect("error body is an object");
    let unexpected: Vec<_> = fields
        .keys()
        .filter(|k| !["error", "error_description", "error_uri"].contains(&k.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected fields {unexpected:?}; body: {body}"
    );
    assert_no_store(headers);
}

pub fn assert_no_store(headers: &HeaderMap) {
    let cache_control = headers
        .get("cache-control")
        .map(|v| v.to_str().unwrap_or(""));
    assert!(
        cache_control.is_some_and(|v| v.contains("no-store")),
        "Cache-Control: no-store, got {cache_control:?}"
    );
}

/// The standard deploy exchange form plus `extra` fields.
pub fn deploy_form<'a>(token: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
        ("subject_token", token),
        ("subject_token_type", rfc8693::TOKEN_TYPE_JWT),
        ("audience", DEPLOY_AUDIENCE),
    ];
    form.extend_from_slice(extra);
    form
}
