//! The tickets service of the agent example: a resource server that accepts Ferry's delegated
//! credentials. It verifies each one with the broker's published JWKS (signature, `iss`, `aud`,
//! `exp`), then says who is acting for whom: `alice via spiffe://.../agents/support-bot may
//! tickets:read`. Any JWT library does the same; nothing here is Ferry-specific but the claims.
//!
//! Included by path from the `agent` demo (which runs it in process) and the `tickets_server`
//! example (which runs it alone).
#![allow(dead_code)]

use std::net::SocketAddr;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::{bail, Context, Result};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

/// What the tickets service is, as an audience: the `grant.audience` of the agent policies.
pub const TICKETS_AUDIENCE: &str = "https://tickets.example.org";
/// What reading a ticket takes.
pub const READ_SCOPE: &str = "tickets:read";

/// Who acts for whom, from verified claims: `sub`, then every actor of `act`, outermost first.
pub fn describe(claims: &Value) -> Result<String> {
    let sub = claims["sub"].as_str().context("no sub")?;
    let mut line = sub.to_string();
    let mut chain = Vec::new();
    let mut act = claims.get("act");
    while let Some(a) = act {
        chain.push(a["sub"].as_str().context("an act without sub")?.to_string());
        act = a.get("act");
    }
    // The innermost actor acted first: read the chain from the person outwards.
    for actor in chain.iter().rev() {
        line.push_str(&format!(" via {actor}"));
    }
    let scope = claims["scope"].as_str().unwrap_or_default();
    Ok(format!("{line} may {scope}"))
}

/// Verifies `credential` against the broker's JWKS as the tickets service; returns its claims.
pub async fn verify(http: &reqwest::Client, broker: &str, credential: &str) -> Result<Value> {
    let url = format!("{broker}/.well-known/jwks.json");
    let bytes = http
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let jwks: JwkSet = serde_json::from_slice(&bytes).context("the broker's JWKS")?;
    let header = jsonwebtoken::decode_header(credential)?;
    let kid = header.kid.context("credential has no kid")?;
    let jwk = jwks.find(&kid).context("kid not in the broker's JWKS")?;
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[TICKETS_AUDIENCE]);
    validation.set_issuer(&[broker]);
    let claims = jsonwebtoken::decode::<Value>(credential, &key, &validation)?.claims;
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == READ_SCOPE) {
        bail!("the credential does not carry {READ_SCOPE}");
    }
    Ok(claims)
}

struct State {
    http: reqwest::Client,
    broker: String,
}

/// `GET /tickets` with `Authorization: Bearer <credential>`: 200 with the description, or 401.
async fn tickets(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(credential) = bearer else {
        return HttpResponse::Unauthorized().body("a bearer credential is required\n");
    };
    match verify(&state.http, &state.broker, credential).await {
        Ok(claims) => {
            let line = describe(&claims).unwrap_or_else(|e| e.to_string());
            println!("tickets service: {line}");
            HttpResponse::Ok().body(format!("{line}\n"))
        }
        Err(e) => HttpResponse::Unauthorized().body(format!("refused: {e}\n")),
    }
}

/// Runs the tickets service on `bind` on its own thread (its own actix system), trusting the
/// broker at `broker`. Returns the bound address.
pub fn start(bind: &str, broker: &str) -> Result<SocketAddr> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let state = web::Data::new(State {
        http,
        broker: broker.trim_end_matches('/').to_string(),
    });
    let listener = std::net::TcpListener::bind(bind).with_context(|| format!("bind {bind}"))?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .route("/tickets", web::get().to(tickets))
            })
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run();
            let _ = server.await;
        });
    });
    Ok(addr)
}
