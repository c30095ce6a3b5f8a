//! The README delegation demo: an AI agent acts for a person, and hands part of the work on.
//!
//! Start the broker with the example policies first (`cargo run --release -- serve`), then run
//! `cargo run --release --example agent`. The demo plays everyone but the broker: a person's
//! IdP (loopback OIDC issuer `people` on 127.0.0.1:8102), the agents' SPIFFE trust domain
//! (`agents`, agents.example.org: a SPIRE-like bundle endpoint on 127.0.0.1:8101/bundle and the
//! JWT-SVIDs it signs), the agents, and the tickets service (a resource server on 127.0.0.1:8103
//! that verifies credentials with the broker's JWKS). It exits non-zero when a step does not
//! behave as expected.

#[path = "../support/dev_issuer.rs"]
mod dev_issuer;
#[path = "../support/rfc8693.rs"]
mod rfc8693;
#[path = "../support/show.rs"]
mod show;
mod tickets;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use dev_issuer::{now, Alg, DevIssuer};
use show::{field, heading, jwt_part, print_json};

const SUPPORT_BOT: &str = "spiffe://agents.example.org/agents/support-bot";
const SUMMARIZER: &str = "spiffe://agents.example.org/agents/summarizer";
const TRIAGE: &str = "spiffe://agents.example.org/agents/triage";

#[derive(Parser)]
#[command(about = "An agent exchanges a person's token and its own for a delegated credential")]
struct Args {
    /// The broker's base URL (also its public URL and default audience).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    broker: String,
    /// Where the demo issuers keep their keys between runs (the broker caches them by kid).
    #[arg(long, default_value = ".ferry/dev-agent")]
    keys: std::path::PathBuf,
}

struct Demo {
    http: reqwest::Client,
    broker: String,
    people: DevIssuer,
    agents: DevIssuer,
    tickets: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let broker = args.broker.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder().no_proxy().build()?;
    heading("1. The parties");
    let people = DevIssuer::start_with_key_dir("127.0.0.1:8102", &args.keys.join("people"))?;
    let agents = DevIssuer::start_with_key_dir("127.0.0.1:8101", &args.keys.join("agents"))?;
    // Like a SPIRE server, the trust domain signs JWT-SVIDs with one EC key (the `agents` entry
    // allows ES256 only), so its bundle publishes that key alone.
    agents.remove_key("rsa-1");
    let tickets = tickets::start("127.0.0.1:8103", &broker)?;
    field("people (IdP)", people.url());
    field("agents (SPIFFE)", agents.bundle_url());
    field("tickets service", format!("http://{tickets}/tickets"));
    field("broker", &broker);
    let demo = Demo {
        http,
        broker,
        people,
        agents,
        tickets: format!("http://{tickets}/tickets"),
    };

    let alice = demo.person("alice");
    let first = demo.first_hop(&alice).await?;
    let second = demo.second_hop(&first).await?;
    demo.third_hop(&second).await?;
    heading("Done");
    println!("every step behaved as expected");
    Ok(())
}

impl Demo {
    /// A person's ID token from the IdP, addressed to the broker.
    fn person(&self, name: &str) -> String {
        let t = now();
        let claims = json!({
            "iss": self.people.url(), "sub": name, "aud": self.broker,
            "email": format!("{name}@example.org"), "email_verified": true,
            "iat": t, "exp": t + 600, "jti": uuid::Uuid::now_v7().to_string(),
        });
        self.people.sign(&claims, Alg::RS256, None)
    }

    /// An agent's JWT-SVID, addressed to the broker, as SPIRE signs them (header `alg`, `kid`,
    /// `typ: JWT`; `sub`, `aud` as a list, `exp`, `iat`, no `iss`), plus the `jti` the `agents`
    /// entry requires so that each actor token is used once.
    fn agent(&self, spiffe_id: &str) -> String {
        let t = now();
        let claims = json!({
            "sub": spiffe_id, "aud": [self.broker], "iat": t, "exp": t + 300,
            "jti": uuid::Uuid::now_v7().to_string(),
        });
        self.agents.sign(&claims, Alg::ES256, None)
    }

    async fn first_hop(&self, alice: &str) -> Result<String> {
        heading("2. alice asks the support bot to read her tickets");
        print_json("subject_token", &jwt_part(alice, 1)?);
        let bot = self.agent(SUPPORT_BOT);
        print_json("actor_token", &jwt_part(&bot, 1)?);
        heading("3. POST /token with subject_token + actor_token (RFC 8693 delegation)");
        let credential = self
            .delegate(alice, &bot, Some("tickets:read tickets:admin"))
            .await?;
        print_json("credential", &jwt_part(&credential, 1)?);
        heading("4. The tickets service verifies it with the broker's JWKS");
        self.use_credential(&credential).await?;
        Ok(credential)
    }

    async fn second_hop(&self, first: &str) -> Result<String> {
        heading("5. The support bot hands the reading to the summarizer (second hop)");
        let summarizer = self.agent(SUMMARIZER);
        let credential = self.delegate(first, &summarizer, None).await?;
        print_json("act", &jwt_part(&credential, 1)?["act"]);
        self.use_credential(&credential).await?;
        Ok(credential)
    }

    async fn third_hop(&self, second: &str) -> Result<()> {
        heading("6. A third hop is refused (max_depth: 2)");
        let triage = self.agent(TRIAGE);
        let (status, body) = self.post(second, &triage, None).await?;
        field("status", status);
        print_json("body", &body);
        ensure!(status == 400, "expected 400, got {status}");
        Ok(())
    }

    async fn delegate(&self, subject: &str, actor: &str, scope: Option<&str>) -> Result<String> {
        let (status, body) = self.post(subject, actor, scope).await?;
        field("status", status);
        for name in ["expires_in", "scope"] {
            field(name, &body[name]);
        }
        ensure!(status == 200, "expected 200, got {status}: {body}");
        Ok(body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_string())
    }

    async fn use_credential(&self, credential: &str) -> Result<()> {
        let response = self
            .http
            .get(&self.tickets)
            .bearer_auth(credential)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        field("GET /tickets", format!("{status} {}", text.trim()));
        ensure!(status == 200, "the tickets service refused the credential");
        Ok(())
    }

    async fn post(&self, subject: &str, actor: &str, scope: Option<&str>) -> Result<(u16, Value)> {
        let mut form = vec![
            ("grant_type", rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", rfc8693::TOKEN_TYPE_JWT),
            ("actor_token", actor),
            ("actor_token_type", rfc8693::TOKEN_TYPE_JWT),
            ("audience", tickets::TICKETS_AUDIENCE),
        ];
        form.extend(scope.map(|s| ("scope", s)));
        let response = self
            .http
            .post(format!("{}/token", self.broker))
            .header("content-type", rfc8693::FORM_CONTENT_TYPE)
            .body(rfc8693::encode_form(&form))
            .send()
            .await
            .context("POST /token (is the broker running? cargo run --release -- serve)")?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes)
            .with_context(|| format!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))?;
        Ok((status, body))
    }
}
