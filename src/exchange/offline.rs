//! Tokens for the offline tools (`ferry policy test`, `ferry policy explain` without
//! `--verify`): the [`VerifiedToken`] `decide` needs, built from bare claims with **no signature
//! check**. The exchange service never calls this; only the verifier makes tokens for it.

use base64::Engine;
use serde_json::{Map, Value};

use crate::domain::{sha256_hex, Algorithm, Audience, IssuerName, UnixSeconds};
use crate::policy::PolicySet;
use crate::verify::VerifiedToken;

/// Why claims could not stand for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineTokenError {
    #[error("not a compact JWT (three base64url parts with a JSON object payload)")]
    Malformed,
    /// Stable code, as the verifier's.
    #[error("`iss` {0} is not an issuer in issuers.yaml")]
    UnknownIssuer(String),
    /// As the verifier refuses it: a SPIFFE ID `sub` that is invalid or of a trust domain no
    /// issuer is bound to.
    #[error("`sub` selects no SPIFFE issuer: {0}")]
    Spiffe(crate::verify::VerifyError),
}

impl OfflineTokenError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed_token",
            Self::UnknownIssuer(_) => "unknown_issuer",
            Self::Spiffe(e) => e.code(),
        }
    }
}

/// The payload of a compact JWT, decoded and **not verified**.
pub fn decode_unverified(token: &str) -> Result<Map<String, Value>, OfflineTokenError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(OfflineTokenError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| OfflineTokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(OfflineTokenError::Malformed),
    }
}

/// Claims as a token of the issuer their `iss` names (or `default_issuer` when there is no
/// `iss`). A missing `aud` means the broker's own audience; a missing `exp` is 10 minutes on.
/// The normalised claims are computed from the claims by that issuer's kind, as the verifier
/// does.
pub fn token_from_claims(
    set: &PolicySet,
    claims: Map<String, Value>,
    default_issuer: Option<&IssuerName>,
    broker_audience: &Audience,
    now: UnixSeconds,
) -> Result<VerifiedToken, OfflineTokenError> {
    // The verifier's own selection (by `iss`, or by a SPIFFE ID `sub`'s trust domain).
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let selected = crate::verify::select_issuer(set.issuers(), |i| i, text("iss"), text("sub"));
    let spiffe_sub = text("sub").is_some_and(|s| s.starts_with("spiffe://"))
        && set.issuers().iter().any(|i| i.trust_domain().is_some());
    let issuer = match (selected, claims.get("iss")) {
        (Ok(spec), _) => spec.name.clone(),
        (Err(e), _) if spiffe_sub => return Err(OfflineTokenError::Spiffe(e)),
        (Err(_), Some(iss)) => return Err(OfflineTokenError::UnknownIssuer(iss.to_string())),
        (Err(_), None) => default_issuer
            .cloned()
            .ok_or_else(|| OfflineTokenError::UnknownIssuer("(none)".to_string()))?,
    };
    let audiences = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => vec![broker_audience.to_string()],
    };
    let text = Value::Object(claims.clone()).to_string();
    let normalized = set
        .issuers()
        .iter()
        .find(|i| i.name == issuer)
        .map(|i| crate::issuer::normalize::normalize(i.kind, &claims))
        .unwrap_or_default();
    Ok(VerifiedToken {
        issuer,
        subject: claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        audiences,
        expires_at: claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or(now + 600),
        issued_at: claims.get("iat").and_then(Value::as_i64),
        jti: claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_string),
        token_sha256: sha256_hex(text.as_bytes()),
        claims,
        normalized,
        algorithm: Algorithm::RS256,
        key_id: None,
    })
}
