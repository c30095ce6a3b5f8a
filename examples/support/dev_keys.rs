//! Key material of the loopback issuer: generation, JWK publishing and compact-JWS signing.
//!
//! Signing is done here with aws-lc-rs directly rather than through jsonwebtoken, because tests
//! need tokens jsonwebtoken would refuse to build: `alg: none`, HMAC keyed with a public key,
//! crafted headers, raw JSON with duplicate keys, and forged signatures.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// The signing algorithms the loopback issuer supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    ES256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
        }
    }
}

impl std::str::FromStr for Alg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Alg::RS256),
            "ES256" => Ok(Alg::ES256),
            other => Err(format!(
                "unsupported algorithm {other} (expected RS256 or ES256)"
            )),
        }
    }
}

enum Material {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// One private key with its `kid`.
pub struct DevKey {
    pub kid: String,
    material: Material,
}

impl DevKey {
    pub fn generate(kid: &str, alg: Alg) -> DevKey {
        let material = match alg {
            Alg::RS256 => Material::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048).expect("generate RSA-2048 key"),
            ),
            Alg::ES256 => Material::Ec(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .expect("generate P-256 key"),
            ),
        };
        DevKey {
            kid: kid.to_string(),
            material,
        }
    }

    /// The key saved as `<dir>/<kid>.pk8` (PKCS#8 DER), or a new one saved there. Examples use
    /// this so a long-running broker, which caches issuer keys by `kid`, still trusts the demo
    /// issuer on its next run: new key material under an old `kid` would fail every signature.
    pub fn load_or_generate(dir: &std::path::Path, kid: &str, alg: Alg) -> std::io::Result<DevKey> {
        let path = dir.join(format!("{kid}.pk8"));
        if let Ok(der) = std::fs::read(&path) {
            let material = match alg {
                Alg::RS256 => RsaKeyPair::from_pkcs8(&der).map(Material::Rsa),
                Alg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map(Material::Ec),
            };
            let material = material.map_err(|e| invalid_key(&path, e))?;
            return Ok(DevKey {
                kid: kid.to_string(),
                material,
            });
        }
        let key = DevKey::generate(kid, alg);
        std::fs::create_dir_all(dir)?;
        write_private(&path, &key.pkcs8())?;
        Ok(key)
    }

    fn pkcs8(&self) -> Vec<u8> {
        match &self.material {
            Material::Rsa(pair) => pair.as_der().expect("PKCS#8").as_ref().to_vec(),
            Material::Ec(pair) => pair.to_pkcs8v1().expect("PKCS#8").as_ref().to_vec(),
        }
    }

    pub fn alg(&self) -> Alg {
        match self.material {
            Material::Rsa(_) => Alg::RS256,
            Material::Ec(_) => Alg::ES256,
        }
    }

    /// The public JWK as an issuer publishes it (`kid`, `use`, `alg`, and the key parameters).
    pub fn public_jwk(&self) -> Value {
        match &self.material {
            Material::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Material::Ec(pair) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                })
            }
        }
    }

    /// The public JWK as a SPIFFE bundle holds it: no `alg`, and `use` saying what the key is
    /// for (`jwt-svid`, `x509-svid`), as SPIRE publishes them.
    pub fn bundle_jwk(&self, key_use: &str) -> Value {
        let mut jwk = self.public_jwk();
        let obj = jwk.as_object_mut().expect("a JWK is an object");
        obj.remove("alg");
        obj.insert("use".into(), json!(key_use));
        jwk
    }

    /// The public key as a PEM `PUBLIC KEY` (SPKI): what an algorithm-confusion attacker would
    /// use as an HMAC secret.
    pub fn public_key_pem(&self) -> String {
        let der = match &self.material {
            Material::Rsa(pair) => pair.public_key().as_der().expect("SPKI").as_ref().to_vec(),
            Material::Ec(pair) => pair.public_key().as_der().expect("SPKI").as_ref().to_vec(),
        };
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// Signs the JWS signing input with this key's own algorithm (RS256 or ES256, fixed r||s).
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.material {
            Material::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, signing_input, &mut sig)
                    .expect("RSA signing");
                sig
            }
            Material::Ec(pair) => pair
                .sign(&rng, signing_input)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
        }
    }
}

/// A SPIFFE bundle document (SPIFFE_Trust_Domain_and_Bundle.md §4) of `keys`, each with its
/// `use`; `spiffe_refresh_hint` (seconds) is left out when `None`.
pub fn spiffe_bundle<'a>(
    keys: impl IntoIterator<Item = (&'a DevKey, &'a str)>,
    sequence: u64,
    refresh_hint: Option<u64>,
) -> Value {
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|(key, key_use)| key.bundle_jwk(key_use))
        .collect();
    let mut doc = json!({ "keys": keys, "spiffe_sequence": sequence });
    if let Some(hint) = refresh_hint {
        doc["spiffe_refresh_hint"] = json!(hint);
    }
    doc
}

/// How the signature part of a crafted token is produced.
pub enum SignWith<'a> {
    /// Sign with the issuer's key of this `kid`, using that key's own algorithm.
    Key(&'a str),
    /// HMAC-SHA256 with this secret (for `alg: HS256` confusion attacks).
    HmacSha256(&'a [u8]),
    /// Use these bytes as the signature as-is (e.g. 64 zero bytes: ECDSA r = s = 0).
    Raw(Vec<u8>),
    /// An empty signature part (for `alg: none`).
    Empty,
}

/// base64url without padding, as JWS requires.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Assembles `b64(header).b64(payload).b64(signature)` from raw JSON texts, so callers can put
/// anything in them (duplicate keys, odd types).
pub fn compact_jws(
    header_json: &str,
    claims_json: &str,
    sign: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header_json.as_bytes()),
        b64(claims_json.as_bytes())
    );
    let signature = sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&signature))
}

pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
}

fn invalid_key(path: &std::path::Path, e: impl std::fmt::Display) -> std::io::Error {
    let message = format!(
        "{}: not a usable private key ({e}); delete it to regenerate",
        path.display()
    );
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, bytes)
}
