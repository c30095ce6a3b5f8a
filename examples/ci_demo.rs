//! The README demo: a CI job trades its platform token for a deploy credential.
//!
//! Start the broker with the example policies first (`cargo run --release -- serve`), then run
//! `cargo run --release --example ci_demo`. The demo plays the CI platform itself: it starts a
//! loopback OIDC issuer on 127.0.0.1:8090 (the `local-ci` issuer in `trust-policies/issuers.yaml`),
//! mints a GitHub-Actions-shaped token, exchanges it, verifies the credential the way a resource
//! server would, and shows a policy denial and a replay refusal. It exits non-zero when a step
//! does not behave as expected.

#[path = "support/dev_issuer.rs"]
mod dev_issuer;
#[path = "support/rfc8693.rs"]
mod rfc8693;
#[path = "support/show.rs"]
mod show;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use dev_issuer::{Alg, Claims, DevIssuer};
use show::{field, heading, jwt_part, print_json};

/// What the `demo-deploy` policy grants.
const DEPLOY_AUDIENCE: &str = "https://deploy.acme.internal";

#[derive(Parser)]
#[command(about = "Exchange a CI token for a deploy credential at a running Ferry broker")]
struct Args {
    /// The broker's base URL (also its public URL and default audience).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    broker: String,
    /// Where the loopback CI issuer listens; must match `local-ci` in trust-policies/issuers.yaml.
    #[arg(long, default_value = "127.0.0.1:8090")]
    issuer_bind: String,
    /// Where the loopback issuer keeps its keys between runs (the broker caches them by kid).
    #[arg(long, default_value = ".ferry/dev-issuer")]
    issuer_keys: std::path::PathBuf,
    /// Replay the token at another replica's base URL (default: the same broker).
    #[arg(long)]
    replay_at: Option<String>,
}

struct Demo {
    http: reqwest::Client,
    broker: String,
    issuer: DevIssuer,
    replay_at: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let broker = args.broker.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder().no_proxy().build()?;
    check_broker(&http, &broker).await?;

    heading("1. A CI platform (loopback OIDC issuer)");
    let issuer = DevIssuer::start_with_key_dir(&args.issuer_bind, &args.issuer_keys)
        .with_context(|| format!("issuer keys in {}", args.issuer_keys.display()))?;
    field("issuer", issuer.url());
    field(
        "discovery",
        format!("{}/.well-known/openid-configuration", issuer.url()),
    );
    let keys_dir = args.issuer_keys.display();
    field(
        "keys",
        format!("rsa-1 (RS256), ec-1 (ES256), kept in {keys_dir}"),
    );
    let replay_at = args
        .replay_at
        .as_deref()
        .unwrap_or(&broker)
        .trim_end_matches('/')
        .to_string();
    let demo = Demo {
        http,
        broker,
        issuer,
        replay_at,
    };

    let token = demo.mint(|c| c);
    demo.exchange_allowed(&token).await?;
    demo.exchange_denied().await?;
    demo.replay(&token).await?;
    heading("Done");
    println!("every step behaved as expected");
    Ok(())
}

impl Demo {
    /// A GitHub-Actions-shaped token for the broker's own audience, adjusted by `edit`.
    fn mint(&self, edit: impl FnOnce(Claims) -> Claims) -> String {
        let claims = edit(Claims::github(&self.issuer.url(), &self.broker));
        self.issuer.sign(&claims, Alg::RS256, None)
    }

    async fn exchange_allowed(&self, token: &str) -> Result<()> {
        heading("2. The CI job's token (what GitHub Actions would hand the job)");
        print_json("claims", &summary(&jwt_part(token, 1)?));

        heading("3. POST /token (RFC 8693 token exchange)");
        let (mut status, mut body) = self.post_token(token).await?;
        // A broker started just before this demo's issuer has not fetched its keys yet; it
        // tries again once a second, and a 503 is what RFC 6749 clients retry
        // (`temporarily_unavailable`). Without the issuer's keys the token was not verified, so
        // its `jti` was not claimed and the same token may be sent again.
        for _ in 0..5 {
            if status != 503 {
                break;
            }
            field(
                "status",
                format!("{status} {}; retrying in 1 s", body["error"]),
            );
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            (status, body) = self.post_token(token).await?;
        }
        field("status", status);
        ensure!(status == 200, "expected 200, got {status}: {body}");
        let access_token = body["access_token"].as_str().context("no access_token")?;
        let prefix: String = access_token.chars().take(16).collect();
        field(
            "access_token",
            format!("{prefix}… ({} chars)", access_token.len()),
        );
        for name in ["issued_token_type", "token_type", "expires_in", "scope"] {
            field(name, &body[name]);
        }

        heading("4. The credential (RFC 9068 JWT)");
        print_json("header", &jwt_part(access_token, 0)?);
        print_json("claims", &jwt_part(access_token, 1)?);

        heading("5. Verify it as a resource server would (JWKS at the broker)");
        let kid = self.verify_credential(access_token).await?;
        let verified = format!(
            "ES256 signature, iss {}, aud {DEPLOY_AUDIENCE}",
            self.broker
        );
        field("verified", verified);
        field("key", format!("kid {kid}"));
        Ok(())
    }

    async fn exchange_denied(&self) -> Result<()> {
        heading("6. A bot's token is refused by policy (actor dependabot[bot])");
        let token = self.mint(|c| {
            c.set("actor", "dependabot[bot]")
                .set("actor_id", "49699333")
        });
        let (status, body) = self.post_token(&token).await?;
        field("status", status);
        print_json("body", &body);
        ensure!(status == 400, "expected 400, got {status}");
        ensure!(body["error"].is_string(), "expected an RFC 6749 error body");
        Ok(())
    }

    async fn replay(&self, token: &str) -> Result<()> {
        let at = if self.replay_at == self.broker {
            String::new()
        } else {
            format!(" at {}", self.replay_at)
        };
        heading(&format!(
            "7. Replaying the first token{at} is refused (single-use jti)"
        ));
        let (status, body) = self.post_token_at(&self.replay_at, token).await?;
        field("status", status);
        print_json("body", &body);
        ensure!(status == 400, "expected 400, got {status}");
        Ok(())
    }

    async fn post_token(&self, token: &str) -> Result<(u16, Value)> {
        self.post_token_at(&self.broker, token).await
    }

    async fn post_token_at(&self, broker: &str, token: &str) -> Result<(u16, Value)> {
        let form = rfc8693::exchange_form(token, DEPLOY_AUDIENCE, Some("deploy:api"));
        let response = self
            .http
            .post(format!("{broker}/token"))
            .header("content-type", rfc8693::FORM_CONTENT_TYPE)
            .body(form)
            .send()
            .await
            .context("POST /token")?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes)
            .with_context(|| format!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))?;
        Ok((status, body))
    }

    /// Checks the credential's signature, issuer, audience and expiry against the broker's JWKS;
    /// returns the `kid` that verified it.
    async fn verify_credential(&self, credential: &str) -> Result<String> {
        let url = format!("{}/.well-known/jwks.json", self.broker);
        let bytes = self
            .http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let jwks: JwkSet = serde_json::from_slice(&bytes).context("JWKS document")?;
        let header = jsonwebtoken::decode_header(credential)?;
        let kid = header.kid.context("credential has no kid")?;
        let jwk = jwks
            .find(&kid)
            .with_context(|| format!("kid {kid} not in the JWKS"))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[DEPLOY_AUDIENCE]);
        validation.set_issuer(&[&self.broker]);
        jsonwebtoken::decode::<Value>(credential, &DecodingKey::from_jwk(jwk)?, &validation)
            .context("credential does not verify")?;
        Ok(kid)
    }
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

/// The claims a reader cares about, plus a count of the other GitHub claims.
fn summary(claims: &Value) -> Value {
    const SHOWN: [&str; 11] = [
        "iss",
        "sub",
        "aud",
        "repository",
        "repository_id",
        "ref",
        "actor",
        "run_id",
        "jti",
        "iat",
        "exp",
    ];
    let mut shown = serde_json::Map::new();
    for key in SHOWN {
        if let Some(value) = claims.get(key) {
            shown.insert(key.to_string(), value.clone());
        }
    }
    let total = claims.as_object().map_or(0, |c| c.len());
    let others = format!("{} more GitHub claims", total.saturating_sub(shown.len()));
    shown.insert("…".to_string(), Value::String(others));
    Value::Object(shown)
}
