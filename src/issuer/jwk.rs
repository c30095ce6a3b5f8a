//! JWKS -> [`KeySet`]: every JWK is parsed once, when the set is loaded, into one aws-lc
//! `ParsedPublicKey` per algorithm the issuer allows and the key can serve.
//!
//! Keys are judged one by one; a key that is not fit for signature verification is skipped with
//! a warning naming the issuer and the kid (never key material). This module does no I/O.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents, VerificationAlgorithm};
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::Value;

use super::FetchError;
use crate::domain::{Algorithm, IssuerName};

/// Security invariant: RSA keys under 2048 bits are never used (aws-lc's 2048_8192 parameters
/// enforce the same bound at verification; checking here keeps weak keys out of the set).
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// JWK members are base64url; padding is tolerated here (some issuers publish it), unlike in
/// tokens, where only the canonical unpadded form is accepted.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One issuer key, parsed for each algorithm it may verify.
pub(crate) struct VerifyingKey {
    kid: Option<String>,
    by_alg: Vec<(Algorithm, ParsedPublicKey)>,
}

impl VerifyingKey {
    /// The parsed key for `alg`, or `None` when this key must not verify that algorithm
    /// (wrong key type, wrong curve, or a JWK `alg` that names another algorithm).
    pub(crate) fn for_alg(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.by_alg.iter().find(|(a, _)| *a == alg).map(|(_, k)| k)
    }
}

// Hand-written so that no public key bytes ever reach a log line through `{:?}`.
impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algs: Vec<_> = self.by_alg.iter().map(|(a, _)| a.as_str()).collect();
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &algs)
            .finish()
    }
}

/// The usable keys of one issuer.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    /// How many keys the issuer published, usable or not: a token without a `kid` names one
    /// only when the issuer has exactly one (rule 6).
    published: usize,
}

/// What a token's `kid` finds in a [`KeySet`].
pub(crate) enum Selection<'a> {
    Found(&'a Arc<VerifyingKey>),
    /// The token names a kid the set does not hold (a refresh may help).
    UnknownKid,
    /// The set holds several keys and the token names none: refused, never guessed.
    MissingKid,
}

impl KeySet {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn select(&self, kid: Option<&str>) -> Selection<'_> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .map_or(Selection::UnknownKid, Selection::Found),
            None if self.keys.len() == 1 && self.published == 1 => Selection::Found(&self.keys[0]),
            None => Selection::MissingKid,
        }
    }
}

/// Parses a JWKS's keys for `issuer`, keeping those usable with `allowed` algorithms.
pub(crate) fn parse_key_set(
    issuer: &IssuerName,
    allowed: &[Algorithm],
    jwks: &[Value],
) -> Result<KeySet, FetchError> {
    let mut keys = Vec::new();
    for jwk in jwks {
        let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
        match parse_jwk(jwk, allowed) {
            Ok(key) => keys.push(key),
            Err(reason) => tracing::warn!(%issuer, kid, reason, "skipping issuer key"),
        }
    }
    // Two keys with one kid: which one a token means is ambiguous, so neither is used.
    let mut kid_counts: HashMap<String, usize> = HashMap::new();
    for kid in keys.iter().filter_map(|k| k.kid.clone()) {
        *kid_counts.entry(kid).or_default() += 1;
    }
    let several = keys.len() > 1;
    keys.retain(|k| match &k.kid {
        Some(kid) if kid_counts[kid] > 1 => {
            tracing::warn!(%issuer, kid, "skipping issuer key: duplicate kid");
            false
        }
        // Without a kid, a key can only be chosen when it is the only one.
        None if several => {
            tracing::warn!(%issuer, "skipping issuer key: no kid in a set of several");
            false
        }
        _ => true,
    });
    if keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(KeySet {
        keys: keys.into_iter().map(Arc::new).collect(),
        published: jwks.len(),
    })
}

fn parse_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<VerifyingKey, &'static str> {
    let obj = jwk.as_object().ok_or("not a JSON object")?;
    let text = |name: &str| match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err("a member is not a string"),
    };
    let kid = text("kid")?.map(str::to_string);
    if text("use")?.is_some_and(|u| u != "sig") {
        return Err("`use` is not `sig`");
    }
    if let Some(ops) = obj.get("key_ops") {
        let verify = Value::String("verify".into());
        if !ops.as_array().is_some_and(|ops| ops.contains(&verify)) {
            return Err("`key_ops` does not allow `verify`");
        }
    }
    if obj.contains_key("d") {
        return Err("private key published in a JWKS");
    }
    let jwk_alg = text("alg")?;
    let kty = text("kty")?.ok_or("no `kty`")?;
    let crv = text("crv")?;
    let mut by_alg = Vec::new();
    for &alg in allowed {
        if !key_fits(alg, kty, crv) || jwk_alg.is_some_and(|a| a != alg.as_str()) {
            continue;
        }
        by_alg.push((alg, parse_for(alg, &text)?));
    }
    if by_alg.is_empty() {
        return Err("key type, curve or `alg` fits none of the issuer's algorithms");
    }
    Ok(VerifyingKey { kid, by_alg })
}

/// Security invariant: a key verifies only the algorithms of its own type and curve (an RSA key
/// never verifies ES256, a P-256 key never verifies ES384). `oct` keys fit nothing.
fn key_fits(alg: Algorithm, kty: &str, crv: Option<&str>) -> bool {
    match alg {
        Algorithm::ES256 => kty == "EC" && crv == Some("P-256"),
        Algorithm::ES384 => kty == "EC" && crv == Some("P-384"),
        Algorithm::EdDSA => kty == "OKP" && crv == Some("Ed25519"),
        _ => kty == "RSA" && alg.key_type() == "RSA",
    }
}

type Member<'a> = dyn Fn(&str) -> Result<Option<&'a str>, &'static str> + 'a;

fn parse_for<'a>(alg: Algorithm, text: &Member<'a>) -> Result<ParsedPublicKey, &'static str> {
    let bytes = |name: &str| -> Result<Vec<u8>, &'static str> {
        let s = text(name)?.ok_or("a required key member is missing")?;
        JWK_B64
            .decode(s)
            .map_err(|_| "a key member is not base64url")
    };
    let rejected = |_| "key rejected by the crypto library";
    let (verifier, key): (&'static dyn VerificationAlgorithm, Vec<u8>) = match alg {
        Algorithm::ES256 => (
            &signature::ECDSA_P256_SHA256_FIXED,
            ec_point(32, bytes("x")?, bytes("y")?)?,
        ),
        Algorithm::ES384 => (
            &signature::ECDSA_P384_SHA384_FIXED,
            ec_point(48, bytes("x")?, bytes("y")?)?,
        ),
        Algorithm::EdDSA => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("Ed25519 key has the wrong length");
            }
            (&signature::ED25519, x)
        }
        Algorithm::RS256 => {
            return rsa_key(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                &bytes("n")?,
                &bytes("e")?,
            )
        }
        Algorithm::RS384 => {
            return rsa_key(
                &signature::RSA_PKCS1_2048_8192_SHA384,
                &bytes("n")?,
                &bytes("e")?,
            )
        }
        Algorithm::RS512 => {
            return rsa_key(
                &signature::RSA_PKCS1_2048_8192_SHA512,
                &bytes("n")?,
                &bytes("e")?,
            )
        }
        Algorithm::PS256 => {
            return rsa_key(
                &signature::RSA_PSS_2048_8192_SHA256,
                &bytes("n")?,
                &bytes("e")?,
            )
        }
        Algorithm::PS384 => {
            return rsa_key(
                &signature::RSA_PSS_2048_8192_SHA384,
                &bytes("n")?,
                &bytes("e")?,
            )
        }
        Algorithm::PS512 => {
            return rsa_key(
                &signature::RSA_PSS_2048_8192_SHA512,
                &bytes("n")?,
                &bytes("e")?,
            )
        }
    };
    ParsedPublicKey::new(verifier, key).map_err(rejected)
}

/// The uncompressed SEC1 point `04 || x || y`. ECDSA keys use aws-lc's `_FIXED` (r||s)
/// verifiers, as JWS specifies; they reject r or s equal to zero or not below the group order
/// (CVE-2022-21449).
fn ec_point(len: usize, x: Vec<u8>, y: Vec<u8>) -> Result<Vec<u8>, &'static str> {
    if x.len() != len || y.len() != len {
        return Err("curve point has the wrong length");
    }
    Ok([&[4u8][..], &x, &y].concat())
}

fn rsa_key(
    params: &'static signature::RsaParameters,
    n: &[u8],
    e: &[u8],
) -> Result<ParsedPublicKey, &'static str> {
    let n = strip_leading_zeros(n);
    let bits = n
        .first()
        .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err("RSA modulus outside 2048-8192 bits");
    }
    let e = strip_leading_zeros(e);
    RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(params)
        .map_err(|_| "key rejected by the crypto library")
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}
