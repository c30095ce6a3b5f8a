//! Kubernetes legacy service-account tokens: the long-lived, secret-based tokens of the
//! `kubernetes.io/service-account-token` Secret type. They carry `iss: kubernetes/serviceaccount`
//! and no `exp`, are never rotated and are not bound to a pod, so Ferry refuses them by name
//! before choosing an issuer, with a reason that says to use a projected token instead.
//!
//! Looks only at the unverified `iss` (from `compact::peek_unverified`): refusing needs no key
//! and no network, and nothing is granted on it.

use super::VerifyError;

/// The fixed `iss` of every legacy secret-based service-account token.
pub(crate) const LEGACY_SERVICE_ACCOUNT_ISSUER: &str = "kubernetes/serviceaccount";

/// Refuses a token whose `iss` is the legacy service-account issuer.
pub(crate) fn refuse_legacy_service_account(iss: Option<&str>) -> Result<(), VerifyError> {
    if iss == Some(LEGACY_SERVICE_ACCOUNT_ISSUER) {
        return Err(VerifyError::LegacyServiceAccountToken);
    }
    Ok(())
}
