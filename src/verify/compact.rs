//! Compact JWS decoding: three canonical base64url parts -> header and payload objects and the
//! signature bytes, plus [`peek_unverified`], the one place that reads claims before the
//! signature is checked.
//!
//! Must not choose keys, check signatures or judge claims; it only parses and refuses shapes.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

use super::json::{parse_strict_json, JsonError};
use super::VerifyError;

/// Security invariant: one spelling per token. No padding, and non-zero trailing bits are
/// refused, so a token cannot be altered without changing its bytes (and its hash).
const TOKEN_B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Header members that would let a token pick its own key, or demand extensions we do not
/// implement (`crit`): any of them refuses the token (SECURITY.md rule 5).
const FORBIDDEN_HEADERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// A decoded token whose signature has NOT been checked yet.
pub(crate) struct Compact<'a> {
    /// `base64(header) . base64(payload)`: the bytes the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) header: Map<String, Value>,
    pub(crate) payload: Map<String, Value>,
    pub(crate) signature: Vec<u8>,
}

pub(crate) fn decode(token: &str) -> Result<Compact<'_>, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::MalformedToken);
    };
    let b64 = |part: &str| {
        TOKEN_B64
            .decode(part)
            .map_err(|_| VerifyError::MalformedToken)
    };
    let json = |bytes: Vec<u8>| {
        parse_strict_json(&bytes).map_err(|e| match e {
            JsonError::DuplicateKey => VerifyError::DuplicateClaim,
            JsonError::Invalid => VerifyError::MalformedToken,
        })
    };
    let header = json(b64(h)?)?;
    let payload = json(b64(p)?)?;
    let signature = b64(s)?;
    if signature.is_empty() {
        return Err(VerifyError::MalformedToken);
    }
    Ok(Compact {
        signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
        header,
        payload,
        signature,
    })
}

/// Refuses headers that could steer key selection or that we cannot honour.
pub(crate) fn check_header(header: &Map<String, Value>) -> Result<(), VerifyError> {
    match FORBIDDEN_HEADERS
        .iter()
        .find(|name| header.contains_key(**name))
    {
        Some(name) => Err(VerifyError::ForbiddenHeader(name)),
        None => Ok(()),
    }
}

/// What a token says about itself before its signature is checked.
pub(crate) struct Unverified<'a> {
    /// Absent in JWT-SVIDs, which are selected by `sub` instead.
    pub(crate) iss: Option<&'a str>,
    /// Read only so that a SPIFFE ID's trust domain can select a SPIFFE issuer.
    pub(crate) sub: Option<&'a str>,
    pub(crate) alg: &'a str,
    pub(crate) kid: Option<&'a str>,
}

/// THE ONLY UNVERIFIED READ. Returns `iss`, `sub`, `alg` and `kid` of a token whose signature
/// has not been checked. They are attacker-controlled and serve only to pick a configured
/// issuer (by exact equality of `iss`, or of the trust domain of a SPIFFE ID `sub`), an
/// allowlisted algorithm and a cached key; nothing else may be read from a token before
/// `Verifier` has checked its signature, and `sub` is judged again after it.
pub(crate) fn peek_unverified<'a>(token: &'a Compact<'_>) -> Result<Unverified<'a>, VerifyError> {
    let text = |name: &'static str| match token.payload.get(name) {
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(VerifyError::InvalidClaimType(name)),
        None => Ok(None),
    };
    let iss = text("iss")?;
    let sub = text("sub")?;
    let Some(Value::String(alg)) = token.header.get("alg") else {
        return Err(VerifyError::MalformedToken);
    };
    let kid = match token.header.get("kid") {
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(VerifyError::MalformedToken),
        None => None,
    };
    Ok(Unverified { iss, sub, alg, kid })
}
