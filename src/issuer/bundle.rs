//! SPIFFE bundles (SPIFFE_Trust_Domain_and_Bundle.md §4): a JWK Set with `spiffe_sequence`,
//! `spiffe_refresh_hint`, and a `use` on every key. Bundle -> [`KeyDocument`] of the keys that
//! may verify JWT-SVIDs.
//!
//! Only keys whose `use` is `jwt-svid` and that carry a `kid` are kept (`x509-svid` keys are
//! X.509 roots, never JWT verifiers); each skipped key is logged with its reason, never its
//! material. The kept keys lose their `use` member so the JWK parser (`jwk`), which knows only
//! `sig`, judges them like any other key. This module does no I/O.

use serde_json::{Map, Value};

use super::{FetchError, KeyDocument};

/// The `use` of a key that verifies JWT-SVIDs.
const JWT_SVID_USE: &str = "jwt-svid";

/// Parses a SPIFFE bundle document. `what` names its file or URL in errors and logs.
pub(crate) fn parse_bundle(body: &[u8], what: &str) -> Result<KeyDocument, FetchError> {
    let bad = |reason: &str| FetchError::BadDocument {
        what: what.to_string(),
        reason: reason.to_string(),
    };
    let doc = crate::verify::parse_strict_json(body).map_err(|_| bad("not a JSON object"))?;
    let Some(Value::Array(all)) = doc.get("keys") else {
        return Err(bad("no `keys` array"));
    };
    let sequence = whole_number(&doc, "spiffe_sequence").map_err(&bad)?;
    let hint = whole_number(&doc, "spiffe_refresh_hint").map_err(bad)?;
    let mut keys = Vec::new();
    for key in all {
        match jwt_svid_key(key) {
            Ok(jwk) => keys.push(jwk),
            // Every bundle holds X.509 roots beside its JWT keys: expected, not a warning.
            Err(reason) if key.get("use").and_then(Value::as_str) == Some("x509-svid") => {
                tracing::debug!(bundle = what, reason, "skipping SPIFFE bundle key");
            }
            Err(reason) => {
                let kid = key.get("kid").and_then(Value::as_str).unwrap_or("");
                tracing::warn!(bundle = what, kid, reason, "skipping SPIFFE bundle key");
            }
        }
    }
    Ok(KeyDocument {
        keys,
        fresh_for: hint.map(std::time::Duration::from_secs),
        sequence,
    })
}

/// A bundle member that, when present, must be a non-negative integer.
fn whole_number(doc: &Map<String, Value>, name: &str) -> Result<Option<u64>, &'static str> {
    match doc.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or("`spiffe_sequence` and `spiffe_refresh_hint` must be non-negative integers"),
    }
}

/// The JWK of a JWT-SVID key, without its `use`; or why the key is not one.
fn jwt_svid_key(key: &Value) -> Result<Value, &'static str> {
    let obj = key.as_object().ok_or("not a JSON object")?;
    match obj.get("use").and_then(Value::as_str) {
        Some(JWT_SVID_USE) => {}
        Some("x509-svid") => return Err("`use` is `x509-svid`: an X.509 root, not a JWT-SVID key"),
        Some(_) => return Err("`use` is not `jwt-svid`"),
        None => return Err("no `use`: a bundle key must say what it is for"),
    }
    if !obj.get("kid").is_some_and(Value::is_string) {
        return Err("a JWT-SVID key must have a `kid`");
    }
    let mut jwk = obj.clone();
    jwk.remove("use");
    Ok(Value::Object(jwk))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(doc: &Value) -> Result<KeyDocument, FetchError> {
        parse_bundle(doc.to_string().as_bytes(), "bundle.json")
    }

    #[test]
    fn a_bundle_yields_its_jwt_svid_keys_sequence_and_refresh_hint() {
        let doc = json!({
            "spiffe_sequence": 7, "spiffe_refresh_hint": 300,
            "keys": [
                {"kty": "EC", "crv": "P-256", "kid": "jwt-1", "use": "jwt-svid", "x": "AA", "y": "AA"},
                {"kty": "EC", "crv": "P-256", "use": "x509-svid", "x": "AA", "y": "AA", "x5c": ["AA=="]},
            ]
        });
        let parsed = parse(&doc).unwrap();
        assert_eq!(parsed.sequence, Some(7));
        assert_eq!(parsed.fresh_for, Some(std::time::Duration::from_secs(300)));
        assert_eq!(parsed.keys.len(), 1);
        assert_eq!(parsed.keys[0]["kid"], "jwt-1");
        assert!(parsed.keys[0].get("use").is_none());
    }

    #[test]
    fn keys_not_for_jwt_svids_or_without_kid_are_not_used() {
        for key in [
            json!({"kty": "EC", "kid": "a", "use": "x509-svid"}),
            json!({"kty": "EC", "kid": "b", "use": "sig"}),
            json!({"kty": "EC", "kid": "c", "use": "enc"}),
            json!({"kty": "EC", "kid": "d"}),
            json!({"kty": "EC", "use": "jwt-svid"}),
            json!({"kty": "EC", "kid": 5, "use": "jwt-svid"}),
            json!("not an object"),
        ] {
            let parsed = parse(&json!({ "keys": [key.clone()] })).unwrap();
            assert!(parsed.keys.is_empty(), "{key}");
        }
    }

    #[test]
    fn sequence_and_hint_are_optional_but_must_be_whole_numbers() {
        let parsed = parse(&json!({"keys": []})).unwrap();
        assert_eq!((parsed.sequence, parsed.fresh_for), (None, None));
        for bad in [
            json!({"keys": [], "spiffe_sequence": -1}),
            json!({"keys": [], "spiffe_sequence": "3"}),
            json!({"keys": [], "spiffe_refresh_hint": 1.5}),
            json!({"spiffe_sequence": 1}),
            json!([]),
        ] {
            assert!(
                matches!(parse(&bad), Err(FetchError::BadDocument { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bundle_with_a_repeated_member_is_refused() {
        let text = r#"{"keys": [], "spiffe_sequence": 1, "spiffe_sequence": 9}"#;
        let err = parse_bundle(text.as_bytes(), "bundle.json").unwrap_err();
        assert!(matches!(err, FetchError::BadDocument { .. }), "{err}");
    }
}
