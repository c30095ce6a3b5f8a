//! Every provider kind, end to end: each CI platform (and a Kubernetes cluster) trades its token
//! for a deploy credential at a running broker.
//!
//! Start the broker with the example policies first (`cargo run --release -- serve`), then run
//! `cargo run --release --example providers`. For each of GitHub Actions, GitLab CI, Buildkite,
//! CircleCI and Kubernetes it starts a loopback issuer on the port its `local-*` entry in
//! `trust-policies/issuers.yaml` names (8091..8095), signs a token shaped exactly as that provider
//! sends it (`examples/support/provider_claims.rs`), exchanges it as the workload would (the one
//! HTTP call of `examples/providers/README.md`), prints the normalised claims the credential
//! carries, and shows one refusal that provider's policy exists for. It exits non-zero when a
//! step does not behave as expected.

#[path = "support/dev_issuer.rs"]
mod dev_issuer;
#[path = "support/rfc8693.rs"]
mod rfc8693;
#[path = "support/show.rs"]
mod show;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::Value;

use dev_issuer::{Alg, Claims, DevIssuer};

/// What every `trust-policies/providers-*.yaml` grants.
const DEPLOY_AUDIENCE: &str = "https://deploy.acme.internal";

/// The label column of this example's output.
const LABEL: usize = 12;

#[derive(Parser)]
#[command(about = "Exchange each CI provider's token for a deploy credential at a running broker")]
struct Args {
    /// The broker's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    broker: String,
    /// The `aud` of the provider tokens: the `audience:` the example policies pin.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    token_audience: String,
    /// Where the loopback issuers keep their keys between runs (the broker caches them by kid).
    #[arg(long, default_value = ".ferry/provider-issuers")]
    issuer_keys: std::path::PathBuf,
}

/// One provider: its issuer port, how its tokens look, and a token its policy must refuse.
struct Provider {
    name: &'static str,
    port: u16,
    claims: fn(&str, &str) -> Claims,
    refused: (&'static str, fn(Claims) -> Claims),
}

const PROVIDERS: [Provider; 5] = [
    Provider {
        name: "github-actions",
        port: 8091,
        claims: Claims::github_immutable,
        refused: ("a self-hosted runner", |c| {
            c.set("runner_environment", "self-hosted")
        }),
    },
    Provider {
        name: "gitlab",
        port: 8092,
        claims: Claims::gitlab,
        refused: ("an unprotected ref", |c| c.set("ref_protected", "false")),
    },
    Provider {
        name: "buildkite",
        port: 8093,
        claims: Claims::buildkite,
        refused: ("another organisation's `api` pipeline", |c| {
            c.set("organization_id", "0184990a-0000-4000-8000-000000000000")
        }),
    },
    Provider {
        name: "circleci",
        port: 8094,
        claims: Claims::circleci,
        refused: ("an SSH re-run", |c| {
            c.set("oidc.circleci.com/ssh-rerun", true)
        }),
    },
    Provider {
        name: "kubernetes",
        port: 8095,
        claims: Claims::kubernetes,
        refused: ("the legacy secret-based token of the same account", |_| {
            Claims::kubernetes_legacy_secret()
        }),
    },
];

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let broker = args.broker.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder().no_proxy().build()?;
    check_broker(&http, &broker).await?;
    for p in &PROVIDERS {
        show::heading(&format!(
            "{} (loopback issuer on 127.0.0.1:{})",
            p.name, p.port
        ));
        let issuer = DevIssuer::start_with_key_dir(
            &format!("127.0.0.1:{}", p.port),
            &args.issuer_keys.join(p.name),
        )
        .with_context(|| format!("issuer keys of {}", p.name))?;
        let claims = (p.claims)(&issuer.url(), &args.token_audience);
        show::field_w(LABEL, "sub", claims.get_str("sub").unwrap_or_default());
        let (status, body) =
            exchange(&http, &broker, &issuer.sign(&claims, Alg::RS256, None)).await?;
        ensure!(
            status == 200,
            "{}: expected 200, got {status}: {body}",
            p.name
        );
        let credential = body["access_token"].as_str().context("no access_token")?;
        show::print_json_w(
            LABEL,
            "credential",
            &carried(&show::jwt_part(credential, 1)?),
        );
        let (label, edit) = p.refused;
        let refused = edit((p.claims)(&issuer.url(), &args.token_audience));
        let (status, body) =
            exchange(&http, &broker, &issuer.sign(&refused, Alg::RS256, None)).await?;
        show::field_w(
            LABEL,
            "refused",
            format!("{label}: {status} {}", body["error"]),
        );
        ensure!(
            status == 400,
            "{}: expected 400, got {status}: {body}",
            p.name
        );
    }
    show::heading("Done");
    println!("every provider behaved as expected");
    Ok(())
}

/// The one HTTP call a workload makes: RFC 8693 token exchange at `POST /token`.
async fn exchange(http: &reqwest::Client, broker: &str, token: &str) -> Result<(u16, Value)> {
    // 503 `temporarily_unavailable` (e.g. the broker has not reached this issuer's keys yet:
    // it was down when the broker started) means retry after `Retry-After`, as a client would.
    for _ in 0..3 {
        let (status, retry_after, body) = post_token(http, broker, token).await?;
        match retry_after {
            Some(secs) if status == 503 => tokio::time::sleep(Duration::from_secs(secs)).await,
            _ => return Ok((status, body)),
        }
    }
    let (status, _, body) = post_token(http, broker, token).await?;
    Ok((status, body))
}

async fn post_token(
    http: &reqwest::Client,
    broker: &str,
    token: &str,
) -> Result<(u16, Option<u64>, Value)> {
    let response = http
        .post(format!("{broker}/token"))
        .header("content-type", rfc8693::FORM_CONTENT_TYPE)
        .body(rfc8693::exchange_form(
            token,
            DEPLOY_AUDIENCE,
            Some("deploy:api"),
        ))
        .send()
        .await
        .context("POST /token")?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let bytes = response.bytes().await?;
    let body = serde_json::from_slice(&bytes)
        .with_context(|| format!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))?;
    Ok((status, retry_after, body))
}

/// What the credential carries for the resource server: the claims the policy copied, and who.
fn carried(claims: &Value) -> Value {
    let mut shown = serde_json::Map::new();
    for key in [
        "sub",
        "scope",
        "ci",
        "repository_id",
        "project_id",
        "build_number",
        "run_url",
    ] {
        if let Some(v) = claims.get(key) {
            shown.insert(key.to_string(), v.clone());
        }
    }
    if let Some(pod) = claims.pointer("/pod/pod/name") {
        shown.insert("pod".to_string(), pod.clone());
    }
    Value::Object(shown)
}

async fn check_broker(http: &reqwest::Client, broker: &str) -> Result<()> {
    let url = format!("{broker}/healthz");
    match http.get(&url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => bail!("{url} answered {}", response.status()),
        Err(e) => {
            bail!("no broker at {broker} ({e}).\nStart it first: cargo run --release -- serve")
        }
    }
}
