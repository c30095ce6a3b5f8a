//! Claim checks on a payload whose signature is already verified: lifetime (`exp`, `nbf`,
//! `iat`, max token age) with leeway, and the shape of `sub`, `aud` and `jti`.
//!
//! Pure: `now` comes in as a parameter. Must not decide which audience is needed (policy does).

use serde_json::{Map, Value};

use super::VerifyError;
use crate::domain::UnixSeconds;
use crate::issuer::IssuerSpec;

/// The claims every later stage relies on, pulled out of the payload.
pub(crate) struct CheckedClaims {
    pub(crate) subject: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) expires_at: UnixSeconds,
    pub(crate) issued_at: Option<UnixSeconds>,
    pub(crate) jti: Option<String>,
}

pub(crate) fn check(
    claims: &Map<String, Value>,
    issuer: &IssuerSpec,
    leeway: i64,
    now: UnixSeconds,
) -> Result<CheckedClaims, VerifyError> {
    // Floors for exp and ceilings for nbf/iat: a fractional NumericDate never widens validity.
    let exp = date(claims, "exp", f64::floor)?.ok_or(VerifyError::MissingExp)?;
    if exp.saturating_add(leeway) <= now {
        return Err(VerifyError::TokenExpired);
    }
    let latest_start = now.saturating_add(leeway);
    if date(claims, "nbf", f64::ceil)?.is_some_and(|nbf| nbf > latest_start) {
        return Err(VerifyError::NotYetValid);
    }
    let iat = date(claims, "iat", f64::ceil)?;
    if iat.is_some_and(|iat| iat > latest_start) {
        return Err(VerifyError::IssuedInFuture);
    }
    if let Some(max_age) = issuer.max_token_age {
        let iat = iat.ok_or(VerifyError::MissingIat)?;
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        if now.saturating_sub(iat) > max_age.saturating_add(leeway) {
            return Err(VerifyError::TokenTooOld);
        }
    }
    let subject = non_empty_string(claims, "sub")?.ok_or(VerifyError::MissingSubject)?;
    let audiences = audiences(claims)?;
    let jti = non_empty_string(claims, "jti")?;
    if issuer.require_jti && jti.is_none() {
        return Err(VerifyError::MissingJti);
    }
    Ok(CheckedClaims {
        subject,
        audiences,
        expires_at: exp,
        issued_at: iat,
        jti,
    })
}

/// A NumericDate claim: absent is `None`, anything but a finite JSON number is refused.
fn date(
    claims: &Map<String, Value>,
    name: &'static str,
    round: fn(f64) -> f64,
) -> Result<Option<i64>, VerifyError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(n) = value else {
        return Err(VerifyError::InvalidClaimType(name));
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        // `as` saturates at the i64 bounds, which the saturating comparisons above expect.
        Some(f) if f.is_finite() => Ok(Some(round(f) as i64)),
        _ => Err(VerifyError::InvalidClaimType(name)),
    }
}

/// A string claim that, when present, must be a non-empty string. An empty string counts as
/// absent, so the caller's "required" error applies.
fn non_empty_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(VerifyError::InvalidClaimType(name)),
    }
}

/// `aud` as a non-empty list of non-empty strings (a single string becomes one element).
fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, VerifyError> {
    let list = match claims.get("aud") {
        None => return Err(VerifyError::MissingAudience),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(VerifyError::InvalidClaimType("aud"))?,
        Some(_) => return Err(VerifyError::InvalidClaimType("aud")),
    };
    if list.is_empty() || list.iter().any(String::is_empty) {
        return Err(VerifyError::MissingAudience);
    }
    Ok(list)
}
