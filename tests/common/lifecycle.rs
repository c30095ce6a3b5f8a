//! Credential-lifecycle helpers: the policies that give a resource server `ferry:introspect`
//! and an operator `ferry:admin`, an opaque-credential and a rate-limited policy, and a
//! [`Broker`] client for `/token`, `/introspect`, `/revoke` and the admin API that works for an
//! in-process app and for a `ferry serve` replica alike.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{rfc8693, Claims, DevIssuer, Fixture, DEPLOY_AUDIENCE, DEPLOY_POLICY};

/// The broker's own audience in lifecycle tests (`credential.audience`): subject tokens are
/// addressed to it, and callers' credentials must be minted for it.
pub const BROKER_AUDIENCE: &str = "https://ferry.lifecycle.test";
pub const RESOURCE_SERVER: &str = "resource-server:deploy-gateway";
pub const OPERATOR: &str = "operator:oncall";
pub const OPAQUE_SUBJECT: &str = "repo:acme/opaque:ref:refs/heads/main";
pub const LIMITED_SUBJECT: &str = "repo:acme/limited:ref:refs/heads/main";

/// A policy granting `scope` at the broker's own audience to the subject `subject`.
pub fn caller_policy(subject: &str, scope: &str) -> String {
    format!(
        "issuer: local-ci\nsubject: \"{subject}\"\ngrant:\n  audience: {BROKER_AUDIENCE}\n  scopes: [\"{scope}\"]\n  ttl: 10m\n"
    )
}

/// The deploy grant for `subject_glob` with extra `grant:` lines (e.g. `credential: opaque`).
pub fn deploy_policy_with(subject_glob: &str, grant_extra: &str) -> String {
    format!(
        "issuer: local-ci\nsubject: {{ glob: \"{subject_glob}\" }}\ngrant:\n  audience: {DEPLOY_AUDIENCE}\n  scopes: [deploy:api]\n  ttl: 10m\n{grant_extra}"
    )
}

/// Every lifecycle policy; `rate_limit` for the `limited` policy.
pub fn policy_files(rate_limit: &str) -> Vec<(&'static str, String)> {
    vec![
        ("demo-deploy", DEPLOY_POLICY.to_string()),
        (
            "introspector",
            caller_policy(RESOURCE_SERVER, "ferry:introspect"),
        ),
        ("operator", caller_policy(OPERATOR, "ferry:admin")),
        (
            "opaque-deploy",
            deploy_policy_with("repo:acme/opaque:*", "  credential: opaque\n"),
        ),
        (
            "limited",
            deploy_policy_with(
                "repo:acme/limited:*",
                &format!("  rate_limit: {rate_limit}\n"),
            ),
        ),
    ]
}

/// The lifecycle policies and the broker audience, for `spawn_app`.
pub fn lifecycle_fixture(rate_limit: &str) -> Fixture {
    let mut fixture = Fixture::empty();
    for (name, yaml) in policy_files(rate_limit) {
        fixture = fixture.policy(name, &yaml);
    }
    fixture.settings(|s| s.credential.audience = Some(BROKER_AUDIENCE.to_string()))
}

/// A subject token for `subject`, addressed to the broker.
pub fn subject_token(issuer: &DevIssuer, subject: &str) -> String {
    let claims = Claims::github(&issuer.url(), BROKER_AUDIENCE).subject(subject);
    issuer.sign(&claims, super::Alg::RS256, None)
}

pub type Answer = (StatusCode, Value, HeaderMap);

/// A client for one broker (an in-process app or a replica process).
pub struct Broker {
    pub client: reqwest::Client,
    pub base_url: String,
}

impl Broker {
    pub fn new(base_url: &str) -> Broker {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Broker {
            client,
            base_url: base_url.to_string(),
        }
    }

    /// `POST /token` for `audience` with the subject token of `subject`.
    pub async fn exchange_as(&self, issuer: &DevIssuer, subject: &str, audience: &str) -> Answer {
        let token = subject_token(issuer, subject);
        let body = rfc8693::exchange_form(&token, audience, None);
        self.post("/token", rfc8693::FORM_CONTENT_TYPE, body, None)
            .await
    }

    /// A credential for `subject` at `audience`; panics unless it was granted.
    pub async fn credential(&self, issuer: &DevIssuer, subject: &str, audience: &str) -> String {
        let (status, body, _) = self.exchange_as(issuer, subject, audience).await;
        assert_eq!(status, 200, "control: {subject} gets a credential: {body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// The resource server's `ferry:introspect` credential.
    pub async fn introspector(&self, issuer: &DevIssuer) -> String {
        self.credential(issuer, RESOURCE_SERVER, BROKER_AUDIENCE)
            .await
    }

    /// The operator's `ferry:admin` credential.
    pub async fn operator(&self, issuer: &DevIssuer) -> String {
        self.credential(issuer, OPERATOR, BROKER_AUDIENCE).await
    }

    pub async fn introspect(&self, caller: Option<&str>, token: &str) -> Answer {
        let body = rfc8693::encode_form(&[("token", token)]);
        self.post("/introspect", rfc8693::FORM_CONTENT_TYPE, body, caller)
            .await
    }

    /// Introspects with `caller` and returns `active` (asserting a 200).
    pub async fn is_active(&self, caller: &str, token: &str) -> bool {
        let (status, body, _) = self.introspect(Some(caller), token).await;
        assert_eq!(status, 200, "{body}");
        body["active"].as_bool().expect("`active` is a boolean")
    }

    pub async fn revoke(&self, token: &str) -> StatusCode {
        let body = rfc8693::encode_form(&[("token", token)]);
        let (status, _, _) = self
            .post("/revoke", rfc8693::FORM_CONTENT_TYPE, body, None)
            .await;
        status
    }

    /// `POST /admin/revocations` with `{"kind", "value", "for"?}`.
    pub async fn admin_revoke(
        &self,
        caller: &str,
        kind: &str,
        value: &str,
        duration: Option<&str>,
    ) -> Answer {
        let mut request = json!({ "kind": kind, "value": value });
        if let Some(d) = duration {
            request["for"] = d.into();
        }
        self.post(
            "/admin/revocations",
            "application/json",
            request.to_string(),
            Some(caller),
        )
        .await
    }

    pub async fn admin_unblock(&self, caller: &str, kind: &str, value: &str) -> Answer {
        let request = json!({ "kind": kind, "value": value });
        self.post(
            "/admin/unblock",
            "application/json",
            request.to_string(),
            Some(caller),
        )
        .await
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        bearer: Option<&str>,
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the broker answers");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, body, headers)
    }
}
