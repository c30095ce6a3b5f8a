//! Placeholder with the agreed signatures until the issuer-keys branch is merged.
use std::time::Duration;

use crate::domain::IssuerName;

#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub refresh_cooldown: Duration,
    pub refresh_interval: Duration,
    pub max_stale: Duration,
}
impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
            refresh_cooldown: Duration::from_secs(60),
            refresh_interval: Duration::from_secs(3600),
            max_stale: Duration::from_secs(86400),
        }
    }
}
#[derive(Debug, Clone)]
pub struct IssuerKeyStatus {
    pub issuer: IssuerName,
    pub keys: usize,
    pub ready: bool,
    pub last_refresh_unix: Option<i64>,
    pub last_error: Option<String>,
    pub fetch_ok: u64,
    pub fetch_failed: u64,
}
