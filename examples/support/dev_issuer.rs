//! A loopback OIDC issuer for examples and integration tests: the one stand-in for GitHub
//! Actions (or any OIDC platform) that every example and test shares.
//!
//! It serves OIDC discovery and a JWKS over plain HTTP on loopback, holds an RSA-2048 key
//! (`rsa-1`) and a P-256 key (`ec-1`) generated at start, signs tokens with them, and lets tests
//! rotate keys and count JWKS fetches. The same keys are also served as a SPIFFE bundle
//! (`/bundle`, every key `use: jwt-svid`), so one issuer can play a SPIFFE trust domain whose
//! JWT-SVIDs it signs with `sign` (claims without `iss`). The server runs on its own thread with its own actix
//! system, so it works the same under `#[tokio::test]`, `#[actix_web::test]` and a plain `main`.
//!
//! Included by path from several crates (examples, tests), each of which uses a different
//! subset; hence the blanket `dead_code` / `unused_imports` allowance.
#![allow(dead_code, unused_imports)]

#[path = "claims.rs"]
mod claims;
#[path = "dev_keys.rs"]
pub mod keys;
#[path = "provider_claims.rs"]
mod provider_claims;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Serialize;
use serde_json::{json, Value};

pub use claims::{now, Claims};
pub use keys::{b64, Alg, SignWith};
use keys::{compact_jws, hmac_sha256, DevKey};
pub use provider_claims::{CIRCLECI_ORG, CIRCLECI_PROJECT, SHA};

/// What the HTTP handlers share with the test-facing handle.
struct IssuerState {
    base_url: String,
    /// Published and usable for signing, in insertion order.
    keys: RwLock<Vec<Arc<DevKey>>>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    /// When set, every endpoint answers 503, to exercise last-known-good key behaviour.
    unavailable: AtomicBool,
}

/// A running loopback issuer. Dropping it stops the server.
pub struct DevIssuer {
    state: Arc<IssuerState>,
    addr: SocketAddr,
    handle: ServerHandle,
}

impl DevIssuer {
    /// Binds `bind` (e.g. `127.0.0.1:0`), generates the default keys and starts serving.
    /// Panics when it cannot bind: a test or demo cannot proceed without its issuer.
    pub fn start(bind: &str) -> DevIssuer {
        let keys = vec![
            DevKey::generate("rsa-1", Alg::RS256),
            DevKey::generate("ec-1", Alg::ES256),
        ];
        DevIssuer::start_with_keys(bind, keys)
    }

    /// Like `start`, but the default keys live in `key_dir` (created on first use), so every run
    /// presents the same keys under the same `kid`s to a broker that has cached them.
    pub fn start_with_key_dir(bind: &str, key_dir: &std::path::Path) -> std::io::Result<DevIssuer> {
        let keys = vec![
            DevKey::load_or_generate(key_dir, "rsa-1", Alg::RS256)?,
            DevKey::load_or_generate(key_dir, "ec-1", Alg::ES256)?,
        ];
        Ok(DevIssuer::start_with_keys(bind, keys))
    }

    fn start_with_keys(bind: &str, keys: Vec<DevKey>) -> DevIssuer {
        let listener = std::net::TcpListener::bind(bind)
            .unwrap_or_else(|e| panic!("dev issuer: cannot bind {bind}: {e}"));
        let addr = listener.local_addr().expect("bound address");
        let state = Arc::new(IssuerState {
            base_url: format!("http://{addr}"),
            keys: RwLock::new(keys.into_iter().map(Arc::new).collect()),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            unavailable: AtomicBool::new(false),
        });
        let handle = spawn_server(listener, state.clone());
        DevIssuer {
            state,
            addr,
            handle,
        }
    }

    /// The issuer URL exactly as tokens carry it in `iss`: `http://127.0.0.1:PORT`, no slash.
    pub fn url(&self) -> String {
        self.state.base_url.clone()
    }

    /// Where the SPIFFE bundle of the same keys is served: `bundle_url` of a `kind: spiffe` entry.
    pub fn bundle_url(&self) -> String {
        format!("{}/bundle", self.state.base_url)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Signs `claims` with `kid`'s key, or with the first key of `alg` when `kid` is `None`.
    /// The header carries `alg`, `typ: JWT` and the key's `kid`.
    pub fn sign(&self, claims: &impl Serialize, alg: Alg, kid: Option<&str>) -> String {
        let key = match kid {
            Some(kid) => self.key(kid),
            None => self.default_key(alg),
        };
        let header = json!({ "alg": alg.as_str(), "typ": "JWT", "kid": key.kid });
        let claims = serde_json::to_string(claims).expect("claims serialise");
        compact_jws(&header.to_string(), &claims, |input| key.sign(input))
    }

    /// The escape hatch for crafted tokens: raw header and payload JSON texts, signed as told.
    pub fn sign_with_header(&self, header_json: &str, claims_json: &str, key: SignWith) -> String {
        match key {
            SignWith::Key(kid) => {
                let key = self.key(kid);
                compact_jws(header_json, claims_json, |input| key.sign(input))
            }
            SignWith::HmacSha256(secret) => {
                compact_jws(header_json, claims_json, |input| hmac_sha256(secret, input))
            }
            SignWith::Raw(sig) => compact_jws(header_json, claims_json, |_| sig.clone()),
            SignWith::Empty => compact_jws(header_json, claims_json, |_| Vec::new()),
        }
    }

    /// Generates a new key under `kid` and publishes it (appended: `sign(.., None)` keeps using
    /// the older key of that algorithm until it is removed).
    pub fn add_key(&self, kid: &str, alg: Alg) {
        let key = Arc::new(DevKey::generate(kid, alg));
        let mut keys = self.state.keys.write().expect("keys lock");
        keys.retain(|k| k.kid != kid);
        keys.push(key);
    }

    /// Stops publishing (and signing with) `kid`.
    pub fn remove_key(&self, kid: &str) {
        self.state
            .keys
            .write()
            .expect("keys lock")
            .retain(|k| k.kid != kid);
    }

    /// Rotation in one step: publish `new_kid`, withdraw `old_kid`.
    pub fn rotate_key(&self, old_kid: &str, new_kid: &str, alg: Alg) {
        self.add_key(new_kid, alg);
        self.remove_key(old_kid);
    }

    pub fn public_key_pem(&self, kid: &str) -> String {
        self.key(kid).public_key_pem()
    }

    /// The JWKS document currently published.
    pub fn jwks(&self) -> Value {
        jwks_document(&self.state)
    }

    /// How many times the keys have been served (`GET /.well-known/jwks` or `GET /bundle`).
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Makes every endpoint answer 503 (or serve again).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn key(&self, kid: &str) -> Arc<DevKey> {
        let keys = self.state.keys.read().expect("keys lock");
        let key = keys.iter().find(|k| k.kid == kid);
        key.cloned()
            .unwrap_or_else(|| panic!("dev issuer has no key {kid}"))
    }

    fn default_key(&self, alg: Alg) -> Arc<DevKey> {
        let keys = self.state.keys.read().expect("keys lock");
        let key = keys.iter().find(|k| k.alg() == alg);
        key.cloned()
            .unwrap_or_else(|| panic!("dev issuer has no {} key", alg.as_str()))
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        // `stop` sends the command immediately; the returned future only awaits completion,
        // which a destructor cannot do.
        drop(self.handle.stop(false));
    }
}

/// Runs the HTTP server on a dedicated thread and actix system, returning its handle.
fn spawn_server(listener: std::net::TcpListener, state: Arc<IssuerState>) -> ServerHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let data = web::Data::from(state);
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .route(
                        "/.well-known/openid-configuration",
                        web::get().to(discovery),
                    )
                    .route("/.well-known/jwks", web::get().to(jwks))
                    .route("/bundle", web::get().to(bundle))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .listen(listener)
            .expect("dev issuer listens")
            .run();
            tx.send(server.handle()).expect("handle receiver");
            // An error here only means the server stopped; nothing is waiting on it.
            let _ = server.await;
        });
    });
    rx.recv().expect("dev issuer server thread started")
}

async fn discovery(state: web::Data<IssuerState>) -> HttpResponse {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let base = &state.base_url;
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/.well-known/jwks"),
        "subject_types_supported": ["public", "pairwise"],
        "response_types_supported": ["id_token"],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref",
            "repository", "repository_id", "repository_owner", "repository_owner_id",
            "run_id", "run_attempt", "actor", "actor_id", "workflow", "event_name",
            "ref_type", "job_workflow_ref", "environment", "runner_environment"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "scopes_supported": ["openid"],
    }))
}

async fn jwks(state: web::Data<IssuerState>) -> HttpResponse {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    HttpResponse::Ok().json(jwks_document(&state))
}

/// The keys as a SPIFFE bundle. The sequence stays 1: the demo never rotates, and a test that
/// rotates judges the keys, not the sequence; the refresh hint is SPIRE's usual 5 minutes.
async fn bundle(state: web::Data<IssuerState>) -> HttpResponse {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let published = state.keys.read().expect("keys lock");
    let doc = keys::spiffe_bundle(published.iter().map(|k| (&**k, "jwt-svid")), 1, Some(300));
    HttpResponse::Ok().json(doc)
}

fn jwks_document(state: &IssuerState) -> Value {
    let keys = state.keys.read().expect("keys lock");
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}
