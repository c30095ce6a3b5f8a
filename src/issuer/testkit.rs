//! Shared test helpers for `issuer` and `verify`: generated keys and their JWKs, a token
//! builder, issuer specs, verifiers over in-memory fetchers, and a tiny loopback HTTP server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{FetchSettings, IssuerKind, IssuerSpec, KeySourceSpec, MemoryFetcher};
use crate::domain::Algorithm;
use crate::verify::{Verifier, VerifySettings};

pub(crate) const ISS: &str = "https://issuer.example";
pub(crate) const NOW: i64 = 1_700_000_000;

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) enum KeyPairKind {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A generated signing key with a kid.
pub(crate) struct TestKey {
    pub(crate) kid: String,
    pub(crate) pair: KeyPairKind,
}

impl TestKey {
    pub(crate) fn rsa(kid: &str) -> Self {
        let pair = KeyPairKind::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap());
        Self {
            kid: kid.into(),
            pair,
        }
    }

    pub(crate) fn p256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self {
            kid: kid.into(),
            pair: KeyPairKind::P256(pair),
        }
    }

    pub(crate) fn p384(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        Self {
            kid: kid.into(),
            pair: KeyPairKind::P384(pair),
        }
    }

    pub(crate) fn ed25519(kid: &str) -> Self {
        let pair = KeyPairKind::Ed(Ed25519KeyPair::generate().unwrap());
        Self {
            kid: kid.into(),
            pair,
        }
    }

    /// The public JWK (with `kid`, without `alg` or `use`).
    pub(crate) fn jwk(&self) -> Value {
        let ec = |crv: &str, point: &[u8]| {
            let half = (point.len() - 1) / 2;
            json!({"kty": "EC", "crv": crv, "kid": self.kid,
                   "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])})
        };
        match &self.pair {
            KeyPairKind::Rsa(kp) => {
                let pk = kp.public_key();
                json!({"kty": "RSA", "kid": self.kid,
                       "n": b64(pk.modulus().big_endian_without_leading_zero()),
                       "e": b64(pk.exponent().big_endian_without_leading_zero())})
            }
            KeyPairKind::P256(kp) => ec("P-256", kp.public_key().as_ref()),
            KeyPairKind::P384(kp) => ec("P-384", kp.public_key().as_ref()),
            KeyPairKind::Ed(kp) => json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid,
                                           "x": b64(kp.public_key().as_ref())}),
        }
    }

    /// The DER public key bytes (what an HS256 confusion attack would use as the HMAC secret).
    pub(crate) fn public_bytes(&self) -> Vec<u8> {
        match &self.pair {
            KeyPairKind::Rsa(kp) => kp.public_key().as_ref().to_vec(),
            KeyPairKind::P256(kp) | KeyPairKind::P384(kp) => kp.public_key().as_ref().to_vec(),
            KeyPairKind::Ed(kp) => kp.public_key().as_ref().to_vec(),
        }
    }

    pub(crate) fn sign(&self, alg: &str, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            KeyPairKind::Rsa(kp) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, msg, &mut sig).unwrap();
                sig
            }
            KeyPairKind::P256(kp) | KeyPairKind::P384(kp) => {
                kp.sign(&rng, msg).unwrap().as_ref().to_vec()
            }
            KeyPairKind::Ed(kp) => kp.sign(msg).as_ref().to_vec(),
        }
    }

    /// A token signed by this key with header `{"alg", "kid"}` and `claims`.
    pub(crate) fn token(&self, alg: &str, claims: &Value) -> String {
        self.token_with_header(&json!({"alg": alg, "kid": self.kid, "typ": "JWT"}), claims)
    }

    pub(crate) fn token_with_header(&self, header: &Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().unwrap_or("RS256");
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!("{input}.{}", b64(&self.sign(alg, input.as_bytes())))
    }

    /// Like `token_with_header`, but header and payload are given as raw JSON text.
    pub(crate) fn token_from_raw(&self, alg: &str, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        format!("{input}.{}", b64(&self.sign(alg, input.as_bytes())))
    }
}

/// Valid claims for [`ISS`] at [`NOW`]; tests edit them to break one rule.
pub(crate) fn claims() -> Value {
    json!({"iss": ISS, "sub": "repo:acme/api:ref:refs/heads/main", "aud": "https://ferry.test",
           "exp": NOW + 300, "iat": NOW - 10, "nbf": NOW - 10, "jti": "id-1",
           "nested": {"a": 1}})
}

pub(crate) fn spec(algorithms: &[Algorithm]) -> IssuerSpec {
    IssuerSpec {
        name: "test".parse().unwrap(),
        kind: IssuerKind::Oidc,
        issuer_url: ISS.to_string(),
        keys: KeySourceSpec::JwksUrl(format!("{ISS}/jwks").parse().unwrap()),
        algorithms: algorithms.to_vec(),
        max_token_age: None,
        require_jti: false,
        insecure_http: false,
    }
}

/// A verifier for one issuer whose keys come from a counting in-memory fetcher.
pub(crate) fn verifier(
    spec: IssuerSpec,
    jwks: Vec<Value>,
    fetch: FetchSettings,
) -> (Verifier, Arc<MemoryFetcher>) {
    let fetcher = Arc::new(MemoryFetcher::new(jwks));
    (verifier_over(spec, fetcher.clone(), fetch), fetcher)
}

/// A verifier for one issuer over the given fetcher (e.g. a slowed-down one).
pub(crate) fn verifier_over(
    spec: IssuerSpec,
    fetcher: Arc<MemoryFetcher>,
    fetch: FetchSettings,
) -> Verifier {
    Verifier::with_fetchers(vec![(spec, fetcher)], VerifySettings::default(), fetch).unwrap()
}

/// One canned HTTP answer.
#[derive(Clone)]
pub(crate) struct Reply {
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(path: &str, body: &Value) -> Self {
        let headers = vec![("Content-Type".into(), "application/json".into())];
        Self {
            path: path.into(),
            status: 200,
            headers,
            body: body.to_string().into_bytes(),
        }
    }
}

/// Serves fixed replies on `127.0.0.1:0` (Connection: close, no Content-Length, so the body
/// length is never announced). Returns the address and a request counter.
pub(crate) async fn serve(replies: Vec<Reply>) -> (SocketAddr, Arc<AtomicUsize>) {
    serve_with(|_| replies).await
}

/// Like [`serve`], with replies built from the bound address.
pub(crate) async fn serve_with(
    replies: impl FnOnce(SocketAddr) -> Vec<Reply>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let board = Arc::new(Switchboard::default());
    let addr = serve_switchboard(board.clone()).await;
    board.set(replies(addr));
    (addr, board.hits.clone())
}

/// What a [`serve_switchboard`] server answers; tests change it while the server runs (an
/// issuer that rotates keys, goes down, slows down, or starts answering HTML).
#[derive(Default)]
pub(crate) struct Switchboard {
    replies: std::sync::Mutex<Vec<Reply>>,
    /// Held before each answer (a slow issuer).
    delay: std::sync::Mutex<std::time::Duration>,
    pub(crate) hits: Arc<AtomicUsize>,
}

impl Switchboard {
    pub(crate) fn set(&self, replies: Vec<Reply>) {
        *self.replies.lock().unwrap() = replies;
    }

    pub(crate) fn set_delay(&self, delay: std::time::Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    fn answer(&self, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let replies = self.replies.lock().unwrap();
        match replies.iter().find(|r| r.path == path) {
            Some(r) => (r.status, r.headers.clone(), r.body.clone()),
            None => (404, vec![], b"not found".to_vec()),
        }
    }
}

/// Serves `board` on `127.0.0.1:0` until the runtime ends.
pub(crate) async fn serve_switchboard(board: Arc<Switchboard>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            board.hits.fetch_add(1, Ordering::SeqCst);
            let board = board.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split(' ').nth(1).unwrap_or("/").to_string();
                let delay = *board.delay.lock().unwrap();
                tokio::time::sleep(delay).await;
                let (status, headers, body) = board.answer(&path);
                let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}
