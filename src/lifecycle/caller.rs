//! Who may call the lifecycle endpoints: the bearer of a live, unrevoked Ferry credential whose
//! `aud` is the broker's own audience and whose `scope` holds the endpoint's scope. Audience
//! matters: a credential minted for some resource server, even with the scope, is refused, so a
//! resource server cannot replay a credential it received against Ferry.

use serde_json::Value;

use super::inspect::{Inspected, Inspector};
use super::service::LifecycleError;
use crate::domain::UnixSeconds;

/// Lets a resource server introspect credentials (`POST /introspect`).
pub const SCOPE_INTROSPECT: &str = "ferry:introspect";
/// Lets an operator revoke, block and unblock (`/admin/...`).
pub const SCOPE_ADMIN: &str = "ferry:admin";

/// An authorised caller, as recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub credential_id: String,
    pub subject: String,
    pub policy: String,
}

/// The credential of an `Authorization: Bearer …` header (RFC 6750 §2.1; scheme
/// case-insensitive).
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub async fn authorise(
    inspector: &Inspector,
    audience: &str,
    header: Option<&str>,
    scope: &'static str,
    now: UnixSeconds,
) -> Result<Caller, LifecycleError> {
    let token = bearer(header).ok_or(LifecycleError::Unauthorized("caller_missing"))?;
    let claims = match inspector.inspect(token, now).await {
        Ok(Inspected::Active { claims, .. }) => claims,
        Ok(Inspected::Inactive(_)) => return Err(LifecycleError::Unauthorized("caller_invalid")),
        Err(_) => return Err(LifecycleError::Unavailable("store_unavailable")),
    };
    let caller = Caller {
        credential_id: str_claim(&claims, "jti"),
        subject: str_claim(&claims, "sub"),
        policy: str_claim(&claims, "client_id"),
    };
    if !has_audience(&claims, audience) {
        return Err(LifecycleError::Forbidden("caller_wrong_audience", caller));
    }
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == scope) {
        return Err(LifecycleError::Forbidden("insufficient_scope", caller));
    }
    Ok(caller)
}

fn str_claim(claims: &Value, name: &str) -> String {
    claims[name].as_str().unwrap_or_default().to_string()
}

fn has_audience(claims: &Value, audience: &str) -> bool {
    match &claims["aud"] {
        Value::String(a) => a == audience,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_header_with_a_credential_names_a_caller() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn the_audience_may_be_a_string_or_a_list() {
        let a = serde_json::json!({"aud": "x"});
        let b = serde_json::json!({"aud": ["y", "x"]});
        assert!(has_audience(&a, "x") && has_audience(&b, "x"));
        assert!(!has_audience(&a, "y"));
        assert!(!has_audience(&serde_json::json!({}), "x"));
    }
}
