//! The README "Credential lifecycle" demo: a resource server that asks Ferry about the
//! credentials it is handed (RFC 7662), and a CI job that revokes its own credential (RFC 7009).
//!
//! Start the broker with the example policies first (`cargo run --release -- serve`), then run
//! `cargo run --release --example resource_server`. Like `ci_demo`, it plays the platform with a
//! loopback issuer on 127.0.0.1:8090 (`local-ci`). The deploy gateway gets `ferry:introspect`
//! from `trust-policies/resource-server-introspect.yaml`; a CI job gets a deploy credential from
//! `demo-deploy`; the gateway introspects it, the job revokes it, the gateway introspects again.
//! Exits non-zero when a step does not behave as expected.

#[path = "support/dev_issuer.rs"]
mod dev_issuer;
#[path = "support/rfc8693.rs"]
mod rfc8693;
#[path = "support/show.rs"]
mod show;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use serde_json::Value;

use dev_issuer::{Alg, Claims, DevIssuer};
use show::{field, heading, print_json};

const DEPLOY_AUDIENCE: &str = "https://deploy.acme.internal";

#[derive(Parser)]
#[command(about = "Introspect and revoke Ferry credentials at a running broker")]
struct Args {
    /// The broker's base URL (also its public URL and default audience).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    broker: String,
    /// Where the loopback issuer listens; must match `local-ci` in trust-policies/issuers.yaml.
    #[arg(long, default_value = "127.0.0.1:8090")]
    issuer_bind: String,
    /// Where the loopback issuer keeps its keys between runs.
    #[arg(long, default_value = ".ferry/dev-issuer")]
    issuer_keys: std::path::PathBuf,
}

struct Demo {
    http: reqwest::Client,
    broker: String,
    issuer: DevIssuer,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let demo = Demo {
        http: reqwest::Client::builder().no_proxy().build()?,
        broker: args.broker.trim_end_matches('/').to_string(),
        issuer: DevIssuer::start_with_key_dir(&args.issuer_bind, &args.issuer_keys)
            .with_context(|| format!("issuer keys in {}", args.issuer_keys.display()))?,
    };

    heading("1. The deploy gateway gets ferry:introspect (policy resource-server-introspect)");
    let gateway = Claims::github(&demo.issuer.url(), &demo.broker)
        .subject("service:deploy-gateway")
        .set("environment", "production");
    let (status, body) = demo
        .exchange(&gateway, &demo.broker, "ferry:introspect")
        .await?;
    ensure!(status == 200, "the gateway was refused: {body}");
    let caller = token(&body)?;
    field("scope", &body["scope"]);

    heading("2. A CI job gets a deploy credential (policy demo-deploy)");
    let job = Claims::github(&demo.issuer.url(), &demo.broker);
    let (status, body) = demo.exchange(&job, DEPLOY_AUDIENCE, "deploy:api").await?;
    ensure!(status == 200, "the job was refused: {body}");
    let credential = token(&body)?;
    field(
        "access_token",
        format!("{}… ({} chars)", &credential[..16], credential.len()),
    );

    heading("3. POST /introspect (RFC 7662), as the gateway");
    let (status, answer) = demo.introspect(&caller, &credential).await?;
    ensure!(
        status == 200 && answer["active"] == true,
        "{status} {answer}"
    );
    print_json("answer", &answer);

    heading("4. POST /revoke (RFC 7009), as the job");
    let status = demo
        .post("/revoke", &[("token", credential.as_str())], None)
        .await?
        .0;
    ensure!(status == 200, "revoke answered {status}");
    field("status", status);

    heading("5. POST /introspect again");
    let (_, answer) = demo.introspect(&caller, &credential).await?;
    ensure!(answer["active"] == false, "still active: {answer}");
    print_json("answer", &answer);

    heading("6. Without a ferry:introspect credential");
    let (status, answer) = demo
        .post("/introspect", &[("token", credential.as_str())], None)
        .await?;
    ensure!(status == 401, "{status} {answer}");
    field("status", status);
    print_json("body", &answer);

    heading("Done");
    println!("every step behaved as expected");
    Ok(())
}

impl Demo {
    async fn exchange(&self, claims: &Claims, audience: &str, scope: &str) -> Result<(u16, Value)> {
        let subject_token = self.issuer.sign(claims, Alg::RS256, None);
        let form = rfc8693::exchange_form(&subject_token, audience, Some(scope));
        let response = self
            .http
            .post(format!("{}/token", self.broker))
            .header("content-type", rfc8693::FORM_CONTENT_TYPE)
            .body(form)
            .send()
            .await
            .with_context(|| {
                format!(
                    "no broker at {} (start it: cargo run -- serve)",
                    self.broker
                )
            })?;
        read(response).await
    }

    async fn introspect(&self, caller: &str, token: &str) -> Result<(u16, Value)> {
        self.post("/introspect", &[("token", token)], Some(caller))
            .await
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        bearer: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.broker))
            .header("content-type", rfc8693::FORM_CONTENT_TYPE)
            .body(rfc8693::encode_form(form));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read(request.send().await?).await
    }
}

async fn read(response: reqwest::Response) -> Result<(u16, Value)> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn token(body: &Value) -> Result<String> {
    Ok(body["access_token"]
        .as_str()
        .context("no access_token")?
        .to_string())
}
