//! Placeholder with the agreed signatures until the verify branch is merged.
use std::time::Duration;

use super::VerifiedToken;
use crate::domain::UnixSeconds;
use crate::issuer::{FetchSettings, IssuerKeyStatus, IssuerSpec};

#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub leeway: Duration,
    pub max_token_bytes: usize,
}
impl Default for VerifySettings {
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(60),
            max_token_bytes: 16 * 1024,
        }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("unknown issuer")]
    UnknownIssuer,
}
impl VerifyError {
    pub fn code(&self) -> &'static str {
        "unknown_issuer"
    }
    pub fn is_unavailable(&self) -> bool {
        false
    }
}
#[derive(Debug, thiserror::Error)]
#[error("key setup")]
pub struct KeySetupError;
pub struct Verifier;
impl Verifier {
    pub fn new(
        _: &[IssuerSpec],
        _: VerifySettings,
        _: FetchSettings,
    ) -> Result<Verifier, KeySetupError> {
        Ok(Verifier)
    }
    pub async fn verify(&self, _: &str, _: UnixSeconds) -> Result<VerifiedToken, VerifyError> {
        Err(VerifyError::UnknownIssuer)
    }
    pub async fn warm_up(&self) {}
    pub fn key_status(&self) -> Vec<IssuerKeyStatus> {
        Vec::new()
    }
}
