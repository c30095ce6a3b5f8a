//! Issuer selection, including the SPIFFE way (SECURITY.md rule 3), and the SPIFFE ID rule on
//! a verified JWT-SVID's `sub` (rule 8).
//!
//! A JWT-SVID need not carry `iss`; its issuer is the trust domain named by its `sub`. So an
//! `iss` selects only non-SPIFFE issuers, and a `spiffe://` subject selects the SPIFFE issuer
//! bound to its trust domain. Pure: no I/O, and no fetch for a token that selects nothing.

use serde_json::{Map, Value};

use super::VerifyError;
use crate::domain::SpiffeId;
use crate::issuer::IssuerSpec;

/// The configured issuer a token selects from its unverified `iss` and `sub`:
///
/// 1. an `iss` equal byte for byte to a non-SPIFFE issuer's URL selects that issuer;
/// 2. otherwise, when SPIFFE issuers are configured, a `sub` starting with `spiffe://` must be a
///    valid SPIFFE ID, and its trust domain selects the SPIFFE issuer bound to it;
/// 3. anything else is an unknown issuer.
///
/// Generic over the verifier's entries and the policy set's plain specs.
pub(crate) fn select_issuer<'a, T>(
    items: &'a [T],
    spec: impl Fn(&T) -> &IssuerSpec,
    iss: Option<&str>,
    sub: Option<&str>,
) -> Result<&'a T, VerifyError> {
    if let Some(iss) = iss {
        let by_iss = items.iter().find(|i| {
            let s = spec(i);
            s.trust_domain().is_none() && s.issuer_url.as_bytes() == iss.as_bytes()
        });
        if let Some(found) = by_iss {
            return Ok(found);
        }
    }
    let any_spiffe = items.iter().any(|i| spec(i).trust_domain().is_some());
    let Some(sub) = sub.filter(|s| any_spiffe && s.starts_with("spiffe://")) else {
        return Err(VerifyError::UnknownIssuer);
    };
    let id: SpiffeId = sub.parse().map_err(VerifyError::InvalidSpiffeId)?;
    items
        .iter()
        .find(|i| spec(i).trust_domain() == Some(id.trust_domain()))
        .ok_or(VerifyError::UnknownIssuer)
}

/// After the signature: a SPIFFE issuer's token must have a valid SPIFFE ID of its own trust
/// domain as `sub`. Other issuers' subjects are not judged here.
pub(crate) fn check_subject(spec: &IssuerSpec, subject: &str) -> Result<(), VerifyError> {
    let Some(trust_domain) = spec.trust_domain() else {
        return Ok(());
    };
    let id: SpiffeId = subject.parse().map_err(VerifyError::InvalidSpiffeId)?;
    if id.trust_domain() != trust_domain {
        return Err(VerifyError::WrongTrustDomain);
    }
    Ok(())
}

/// JWT-SVID.md §2: a JWT-SVID's `typ` header, when present, is `JWT` or `JOSE`.
pub(crate) fn check_header(
    spec: &IssuerSpec,
    header: &Map<String, Value>,
) -> Result<(), VerifyError> {
    match header.get("typ") {
        _ if spec.trust_domain().is_none() => Ok(()),
        None => Ok(()),
        Some(Value::String(t)) if t == "JWT" || t == "JOSE" => Ok(()),
        Some(_) => Err(VerifyError::InvalidSvidType),
    }
}
