//! Issuer keys: where they come from (pinned JWKS files, JWKS URLs, OIDC discovery, SPIFFE
//! bundles from a file or a bundle endpoint) and the in-memory cache that serves them to the
//! verifier.
//!
//! Only URLs written in `issuers.yaml` (or discovered from them) are ever fetched: nothing in a
//! token can make the broker contact a host. This module never looks at a token; it answers
//! "which parsed key has this kid and can verify this algorithm" and keeps that answer fresh.
//!
//! Layout: `spec` (the parsed config), `fetch` (the `KeyFetcher` trait, pinned files and the
//! in-memory test fetcher), `http` (JWKS URL, discovery and bundle endpoint fetchers, the URL
//! rules, `Cache-Control`), `jwk` (JWKS
//! -> `KeySet` of keys parsed once), `bundle` (SPIFFE bundle -> the JWT-SVID keys), `negative`
//! (the bounded cache of kids known to be unknown), `cache` (per-issuer lock-free cache,
//! cooldowns, scheduled refresh, status), `preset` (what each [`IssuerKind`] fills in),
//! [`normalize`] (per-provider claims -> the shared normalised vocabulary; pure, never looks at
//! keys).

mod bundle;
mod cache;
mod fetch;
mod http;
mod jwk;
mod negative;
pub mod normalize;
mod preset;
mod spec;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::domain::IssuerName;

pub(crate) use crate::policy::BROKER_URL;
pub(crate) use cache::{IssuerKeys, KeyLookupError};
pub(crate) use fetch::{FetchError, FileFetcher, KeyDocument, KeyFetcher};
pub(crate) use http::{build_client, check_fetch_url, HttpFetcher, HttpSource};
pub(crate) use jwk::VerifyingKey;
pub use preset::Preset;
pub use spec::{BundleLocation, IssuerKind, IssuerSpec, KeySourceSpec};

#[cfg(test)]
pub(crate) use fetch::MemoryFetcher;

/// How keys are fetched and how long they are trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    pub connect_timeout: Duration,
    /// Whole request, body included: a slow-drip server cannot hold a refresh open.
    pub timeout: Duration,
    /// Response bodies larger than this are refused (read in chunks, Content-Length not trusted).
    pub max_body_bytes: usize,
    /// At most one unknown-`kid` refresh per issuer per cooldown (SECURITY.md rule 6).
    pub refresh_cooldown: Duration,
    /// Keys older than this are refreshed in the background on the next request, unless the
    /// source announced its own freshness (`Cache-Control: max-age`, `spiffe_refresh_hint`).
    pub refresh_interval: Duration,
    /// Bounds on the scheduled refresh: an announced (or the configured) freshness is clamped
    /// to `min_refresh..=max_refresh`, so an issuer can neither make the broker poll it
    /// constantly nor keep a retired key alive for days.
    pub min_refresh: Duration,
    pub max_refresh: Duration,
    /// Last-known-good keys serve through failed refreshes for at most this long.
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
            min_refresh: Duration::from_secs(60),
            max_refresh: Duration::from_secs(6 * 3600),
            max_stale: Duration::from_secs(24 * 3600),
        }
    }
}

/// One issuer's key state, for `/readyz` and `/metrics`. Holds no key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKeyStatus {
    pub issuer: IssuerName,
    /// Usable keys currently cached.
    pub keys: usize,
    /// True when the issuer has keys that may be used now (loaded and not past `max_stale`).
    pub ready: bool,
    pub last_refresh_unix: Option<i64>,
    /// The last fetch failure (a short reason; never a response body or key material).
    pub last_error: Option<String>,
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    /// Failed fetches by stable reason code (`timeout`, `status`, `html`, `too_large`,
    /// `redirect`, `sequence_rollback`, ...), sorted by code.
    pub failures: Vec<(&'static str, u64)>,
    /// The `spiffe_sequence` of the bundle in use (SPIFFE issuers).
    pub sequence: Option<u64>,
}
