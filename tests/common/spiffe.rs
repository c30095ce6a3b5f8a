//! A stand-in for a SPIRE server: a loopback SPIFFE bundle endpoint for one trust domain (keys
//! with `use`, `spiffe_sequence`, `spiffe_refresh_hint`) and JWT-SVIDs signed the way SPIRE
//! signs them (header `alg`/`kid`/`typ: JWT`; claims `sub`, `aud` as a list, `exp`, `iat`; no
//! `iss` and no `jti` unless a test adds them).
//!
//! The endpoint runs on its own thread (plain blocking sockets), so it works under any runtime.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub use super::dev_issuer::keys::Alg;
use super::dev_issuer::keys::{compact_jws, spiffe_bundle, DevKey};

/// The trust domain every test SPIRE server serves unless told otherwise.
pub const TRUST_DOMAIN: &str = "prod.example.org";
/// A CI workload's SPIFFE ID, as SPIRE's Kubernetes workload registrar names it.
pub const CI_WORKLOAD: &str = "spiffe://prod.example.org/ns/ci/sa/deployer";

struct BundleState {
    /// `(key, use)` in publication order.
    keys: Vec<(Arc<DevKey>, String)>,
    sequence: u64,
    refresh_hint: Option<u64>,
}

struct Shared {
    bundle: Mutex<BundleState>,
    fetches: AtomicUsize,
    stop: AtomicBool,
}

/// A running bundle endpoint; dropping it stops the server thread.
pub struct SpireServer {
    trust_domain: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SpireServer {
    /// Serves `prod.example.org` with one ES256 JWT-SVID key `jwt-1`, sequence 1.
    pub fn start() -> SpireServer {
        SpireServer::for_trust_domain(TRUST_DOMAIN)
    }

    pub fn for_trust_domain(trust_domain: &str) -> SpireServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the bundle endpoint");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            bundle: Mutex::new(BundleState {
                keys: vec![],
                sequence: 1,
                refresh_hint: Some(300),
            }),
            fetches: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let serving = shared.clone();
        std::thread::spawn(move || serve(listener, serving));
        let server = SpireServer {
            trust_domain: trust_domain.to_string(),
            addr,
            shared,
        };
        server.add_key("jwt-1", Alg::ES256, "jwt-svid");
        server
    }

    pub fn bundle_url(&self) -> String {
        format!("http://{}/bundle", self.addr)
    }

    /// The `issuers.yaml` entry `name` for this trust domain and endpoint.
    pub fn issuer_entry(&self, name: &str) -> String {
        format!(
            "  {name}:\n    kind: spiffe\n    trust_domain: {}\n    bundle_url: {}\n    insecure_http: true\n",
            self.trust_domain,
            self.bundle_url()
        )
    }

    /// Publishes a new key under `kid` with this `use` (`jwt-svid`, `x509-svid`, ...).
    pub fn add_key(&self, kid: &str, alg: Alg, key_use: &str) {
        let mut b = self.shared.bundle.lock().unwrap();
        b.keys.retain(|(k, _)| k.kid != kid);
        b.keys
            .push((Arc::new(DevKey::generate(kid, alg)), key_use.to_string()));
    }

    pub fn remove_key(&self, kid: &str) {
        let mut b = self.shared.bundle.lock().unwrap();
        b.keys.retain(|(k, _)| k.kid != kid);
    }

    /// The `spiffe_refresh_hint` served (seconds); `None` leaves it out.
    pub fn set_refresh_hint(&self, hint: Option<u64>) {
        self.shared.bundle.lock().unwrap().refresh_hint = hint;
    }

    pub fn set_sequence(&self, sequence: u64) {
        self.shared.bundle.lock().unwrap().sequence = sequence;
    }

    /// The bundle document currently served.
    pub fn bundle(&self) -> Value {
        bundle_document(&self.shared.bundle.lock().unwrap())
    }

    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// A JWT-SVID with `claims`, signed by `kid` (whatever its `use`).
    pub fn svid(&self, kid: &str, claims: &Value) -> String {
        let key = {
            let b = self.shared.bundle.lock().unwrap();
            let found = b.keys.iter().find(|(k, _)| k.kid == kid);
            found.map(|(k, _)| k.clone()).expect("no such key")
        };
        let header = json!({"alg": key.alg().as_str(), "kid": kid, "typ": "JWT"});
        compact_jws(&header.to_string(), &claims.to_string(), |input| {
            key.sign(input)
        })
    }
}

impl Drop for SpireServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// JWT-SVID claims as SPIRE issues them for `sub`, addressed to `audience`, valid 5 minutes.
pub fn svid_claims(sub: &str, audience: &str) -> Value {
    let now = super::now();
    json!({"sub": sub, "aud": [audience], "exp": now + 300, "iat": now})
}

fn bundle_document(b: &BundleState) -> Value {
    let keys = b
        .keys
        .iter()
        .map(|(key, key_use)| (&**key, key_use.as_str()));
    spiffe_bundle(keys, b.sequence, b.refresh_hint)
}

fn serve(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]);
        let (status, body) = if request.starts_with("GET /bundle ") {
            shared.fetches.fetch_add(1, Ordering::SeqCst);
            let doc = bundle_document(&shared.bundle.lock().unwrap());
            ("200 OK", doc.to_string())
        } else {
            ("404 Not Found", "{}".to_string())
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(body.as_bytes());
    }
}
