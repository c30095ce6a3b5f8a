//! Ferry's signing keys: PKCS#8 PEM files, generated on first start, parsed once.
//!
//! Security invariants: a key file is created with mode 0600 and a key file that group or world
//! can read is refused; key material never appears in an error or a log line. The `kid` is the
//! RFC 7638 JWK thumbprint, so it changes exactly when the key does.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::{json, Value};

use crate::config::SigningAlgorithm;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {path}: {reason}")]
    File { path: String, reason: String },
    #[error(
        "signing key {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: String, mode: u32 },
    #[error("signing key {path} is not a PKCS#8 {expected} private key")]
    WrongKind {
        path: String,
        expected: &'static str,
    },
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A parsed signing key with its public JWK.
pub struct SigningKey {
    pair: Pair,
    rng: SystemRandom,
    kid: String,
    jwk: Value,
}

impl SigningKey {
    /// Loads the key at `path`, or generates one there (mode 0600) when the file does not exist.
    pub fn load_or_generate(path: &Path, alg: SigningAlgorithm) -> Result<Self, KeyError> {
        if !path.exists() {
            let pkcs8 = generate_pkcs8(alg).map_err(|r| file_err(path, r))?;
            write_new_key_file(path, &pkcs8).map_err(|r| file_err(path, r))?;
        }
        check_permissions(path)?;
        let der = PrivatePkcs8KeyDer::from_pem_file(path)
            .map_err(|_| file_err(path, "not a PEM `PRIVATE KEY` (PKCS#8) file".into()))?;
        Self::from_pkcs8(der.secret_pkcs8_der(), alg).map_err(|expected| KeyError::WrongKind {
            path: path.display().to_string(),
            expected,
        })
    }

    /// Parses PKCS#8 DER for `alg`; the error names the expected key kind.
    pub fn from_pkcs8(der: &[u8], alg: SigningAlgorithm) -> Result<Self, &'static str> {
        let (pair, jwk) = match alg {
            SigningAlgorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| "EC P-256")?;
                let point = pair.public_key().as_ref();
                let jwk = json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                (Pair::Ecdsa(pair), jwk)
            }
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der)
                    .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
                    .map_err(|_| "Ed25519")?;
                let jwk = json!({
                    "crv": "Ed25519",
                    "kty": "OKP",
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (Pair::Ed25519(pair), jwk)
            }
        };
        Ok(Self::with_public_jwk(pair, jwk, alg))
    }

    fn with_public_jwk(pair: Pair, mut jwk: Value, alg: SigningAlgorithm) -> Self {
        // RFC 7638: the thumbprint input is the required members in lexicographic order, which
        // is how serde_json (BTreeMap-backed without `preserve_order`) serialises `jwk` here.
        let thumbprint = digest(&SHA256, jwk.to_string().as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(thumbprint.as_ref());
        let obj = jwk.as_object_mut().expect("jwk is an object");
        obj.insert("kid".into(), kid.clone().into());
        obj.insert("use".into(), "sig".into());
        obj.insert("alg".into(), jws_alg(alg).into());
        Self {
            pair,
            rng: SystemRandom::new(),
            kid,
            jwk,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (with `kid`, `use`, `alg`).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    pub fn algorithm(&self) -> &'static str {
        match self.pair {
            Pair::Ecdsa(_) => "ES256",
            Pair::Ed25519(_) => "EdDSA",
        }
    }

    /// Signs `message`; ES256 gives the fixed 64-byte r||s form JWS requires.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
        }
    }
}

pub fn jws_alg(alg: SigningAlgorithm) -> &'static str {
    match alg {
        SigningAlgorithm::ES256 => "ES256",
        SigningAlgorithm::EdDSA => "EdDSA",
    }
}

fn file_err(path: &Path, reason: String) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        reason,
    }
}

/// A fresh PKCS#8 document for `alg`.
pub fn generate_pkcs8(alg: SigningAlgorithm) -> Result<Vec<u8>, String> {
    let rng = SystemRandom::new();
    let doc = match alg {
        SigningAlgorithm::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        }
        SigningAlgorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
    };
    doc.map(|d| d.as_ref().to_vec())
        .map_err(|_| "key generation failed".to_string())
}

/// PEM-encodes PKCS#8 DER as a `PRIVATE KEY` block.
pub fn pkcs8_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// Creates `path` (and its directory) with mode 0600; never overwrites an existing file.
pub fn write_new_key_file(path: &Path, pkcs8: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create: {e}"))?;
    file.write_all(pkcs8_pem(pkcs8).as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write: {e}"))
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| file_err(path, e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), KeyError> {
    Ok(())
}
