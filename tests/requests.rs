//! The shape of `/token` requests: malformed requests get RFC 6749 errors, and Google's
//! `external_account` clients work unmodified.

mod common;

use common::rfc8693::{
    encode_form, GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT,
};
use common::*;

const GCP_AUDIENCE: &str =
    "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov";
const GCP_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_grant_type() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let got = app
        .exchange(&[
            ("grant_type", "client_credentials"),
            ("subject_token", &token),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("audience", DEPLOY_AUDIENCE),
        ])
        .await;
    assert_oauth_error(&got, 400, "unsupported_grant_type");
}

#[tokio::test]
async fn a_repeated_form_parameter_is_invalid_request() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let got = app
        .exchange(&deploy_form(
            &token,
            &[("audience", "https://payroll.acme.internal")],
        ))
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
}

#[tokio::test]
async fn a_missing_subject_token_is_invalid_request() {
    let app = spawn_app(Fixture::deploy()).await;
    let got = app
        .exchange(&[
            ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("audience", DEPLOY_AUDIENCE),
        ])
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
}

#[tokio::test]
async fn an_unknown_subject_token_type_is_invalid_request() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let got = app
        .exchange(&[
            ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token", &token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            ),
            ("audience", DEPLOY_AUDIENCE),
        ])
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
}

#[tokio::test]
async fn an_unknown_requested_token_type_is_invalid_request() {
    let app = spawn_app(Fixture::deploy()).await;
    let token = app.token();
    let got = app
        .exchange(&deploy_form(
            &token,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        ))
        .await;
    assert_oauth_error(&got, 400, "invalid_request");
}

#[tokio::test]
async fn a_json_body_is_invalid_request() {
    let app = spawn_app(Fixture::deploy()).await;
    let body = serde_json::json!({
        "grant_type": GRANT_TYPE_TOKEN_EXCHANGE,
        "subject_token": app.token(),
        "subject_token_type": TOKEN_TYPE_JWT,
        "audience": DEPLOY_AUDIENCE,
    });
    let got = app.post_token(body.to_string(), "application/json").await;
    assert_oauth_error(&got, 400, "invalid_request");
}

#[tokio::test]
async fn a_scope_that_is_not_rfc6749_scope_tokens_is_refused() {
    let app = spawn_app(Fixture::deploy()).await;
    let got = app.exchange_token(&app.token(), Some("deploy:api\"")).await;
    let (status, body, _) = &got;
    assert_eq!(*status, 400, "{body}");
    assert!(
        body["error"] == "invalid_request" || body["error"] == "invalid_scope",
        "{body}"
    );
    assert_oauth_error(&got, 400, body["error"].as_str().unwrap());
}

/// Google's STS clients (`external_account` credentials) send exactly this form.
fn google_sts_form(subject_token: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
        ("audience", GCP_AUDIENCE),
        ("scope", GCP_SCOPE),
        ("requested_token_type", TOKEN_TYPE_ACCESS_TOKEN),
        ("subject_token", subject_token),
        ("subject_token_type", TOKEN_TYPE_JWT),
    ]
}

fn gcp_fixture() -> Fixture {
    Fixture::empty().policy(
        "gcp-wif",
        &format!(
            r#"issuer: local-ci
subject: {{ glob: "repo:acme/api:*" }}
claims:
  repository_id: "123456789"
grant:
  audience: "{GCP_AUDIENCE}"
  scopes: ["{GCP_SCOPE}"]
  ttl: 1h
"#
        ),
    )
}

/// The fields google-auth-library parses from an STS response.
fn assert_google_parsable(
    got: &(
        reqwest::StatusCode,
        serde_json::Value,
        reqwest::header::HeaderMap,
    ),
) {
    let (status, body, headers) = got;
    assert_eq!(*status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["issued_token_type"], TOKEN_TYPE_ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0), "{body}");
    assert_no_store(headers);
}

#[tokio::test]
async fn google_external_account_clients_work_unmodified() {
    let app = spawn_app(gcp_fixture()).await;
    let token = app.token();
    let got = app.exchange(&google_sts_form(&token)).await;
    assert_google_parsable(&got);
}

#[tokio::test]
async fn google_external_account_clients_sending_options_work_unmodified() {
    let app = spawn_app(gcp_fixture()).await;
    let token = app.token();
    let mut form = google_sts_form(&token);
    form.push(("options", r#"{"userProject":"123"}"#));
    let body = encode_form(&form);
    assert!(
        body.contains("options=%7B%22userProject%22%3A%22123%22%7D"),
        "{body}"
    );
    let got = app
        .post_token(body, common::rfc8693::FORM_CONTENT_TYPE)
        .await;
    assert_google_parsable(&got);
}
