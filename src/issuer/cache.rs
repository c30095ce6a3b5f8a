//! The per-issuer key cache: lock-free reads on the hot path, refreshes bounded by cooldowns
//! and shared by concurrent callers (single flight), last-known-good keys through failures.
//!
//! Must not fetch more than once per cooldown for unknown kids, more than once per
//! [`NEVER_LOADED_RETRY`] while the issuer has no usable keys, and must never serve keys older
//! than `max_stale`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::jwk::{parse_key_set, KeySet, Selection, VerifyingKey};
use super::{FetchSettings, IssuerKeyStatus, KeyFetcher};
use crate::domain::{unix_now, Algorithm, IssuerName};

/// While an issuer has no usable keys, at most one fetch per second: an issuer that starts
/// after the broker is picked up within a second, and a flood of its tokens costs at most one
/// fetch a second.
const NEVER_LOADED_RETRY: Duration = Duration::from_secs(1);

/// Why no key could be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyLookupError {
    #[error("the issuer has several keys and the token names none")]
    MissingKid,
    #[error("no key with this kid, even after a refresh")]
    UnknownKid,
    #[error("the issuer's keys could not be obtained")]
    Unavailable,
}

/// The keys as last loaded. Replaced whole on a successful refresh, never mutated.
#[derive(Default)]
struct Snapshot {
    keys: KeySet,
    loaded_at: Option<Instant>,
}

#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    failed: AtomicU64,
    /// (last successful refresh in Unix seconds, error of the most recent failed attempt).
    text: Mutex<(Option<i64>, Option<String>)>,
}

pub(crate) struct IssuerKeys {
    name: IssuerName,
    algorithms: Vec<Algorithm>,
    fetcher: Arc<dyn KeyFetcher>,
    settings: FetchSettings,
    /// Read lock-free by every request; swapped by refreshes.
    current: ArcSwap<Snapshot>,
    /// Held for the whole of a fetch, so concurrent misses wait for that one fetch and then
    /// find its result (single flight). Holds when the last attempt ended, for the cooldowns.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// A background scheduled refresh is running; at most one is spawned at a time.
    background: AtomicBool,
    stats: Stats,
}

impl IssuerKeys {
    pub(crate) fn new(
        name: IssuerName,
        algorithms: Vec<Algorithm>,
        fetcher: Arc<dyn KeyFetcher>,
        settings: FetchSettings,
    ) -> Self {
        Self {
            name,
            algorithms,
            fetcher,
            settings,
            current: ArcSwap::from_pointee(Snapshot::default()),
            refresh: tokio::sync::Mutex::new(None),
            background: AtomicBool::new(false),
            stats: Stats::default(),
        }
    }

    /// The key a token's `kid` names. No I/O when the keys are cached and the kid is known.
    pub(crate) async fn lookup(
        self: &Arc<Self>,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        let gap = match self.cached(kid) {
            Cached::Answer(answer) => return answer,
            Cached::UnknownKid => self.settings.refresh_cooldown,
            Cached::NoUsableKeys => NEVER_LOADED_RETRY,
        };
        self.refresh_gated(gap).await;
        match self.cached(kid) {
            Cached::Answer(answer) => answer,
            Cached::UnknownKid => Err(KeyLookupError::UnknownKid),
            Cached::NoUsableKeys => Err(KeyLookupError::Unavailable),
        }
    }

    fn cached(self: &Arc<Self>, kid: Option<&str>) -> Cached {
        let snap = self.current.load();
        let Some(loaded_at) = snap
            .loaded_at
            .filter(|t| t.elapsed() <= self.settings.max_stale)
        else {
            return Cached::NoUsableKeys;
        };
        if loaded_at.elapsed() >= self.settings.refresh_interval {
            self.schedule_refresh();
        }
        match snap.keys.select(kid) {
            Selection::Found(key) => Cached::Answer(Ok(Arc::clone(key))),
            Selection::MissingKid => Cached::Answer(Err(KeyLookupError::MissingKid)),
            Selection::UnknownKid => Cached::UnknownKid,
        }
    }

    /// Refreshes in the background and keeps serving the cached keys meanwhile.
    fn schedule_refresh(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        runtime.spawn(async move {
            this.refresh_gated(this.settings.refresh_cooldown).await;
            this.background.store(false, Ordering::Release);
        });
    }

    /// Fetches once now, unless another fetch is running (then waits for it) or one ended less
    /// than `min_gap` ago.
    pub(crate) async fn refresh_gated(&self, min_gap: Duration) {
        let mut last_attempt = self.refresh.lock().await;
        if last_attempt.is_some_and(|t| t.elapsed() < min_gap) {
            return;
        }
        self.fetch_and_swap().await;
        *last_attempt = Some(Instant::now());
    }

    async fn fetch_and_swap(&self) {
        let result = match self.fetcher.fetch().await {
            Ok(jwks) => parse_key_set(&self.name, &self.algorithms, &jwks),
            Err(e) => Err(e),
        };
        let mut text = self.stats.text.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(keys) => {
                tracing::info!(issuer = %self.name, keys = keys.len(), "issuer keys loaded");
                self.current.store(Arc::new(Snapshot {
                    keys,
                    loaded_at: Some(Instant::now()),
                }));
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
                *text = (Some(unix_now()), None);
            }
            Err(e) => {
                // The previous keys (if any) keep serving until `max_stale`.
                tracing::warn!(issuer = %self.name, error = %e, "issuer key refresh failed");
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                text.1 = Some(e.to_string());
            }
        }
    }

    pub(crate) fn status(&self) -> IssuerKeyStatus {
        let snap = self.current.load();
        let ready = snap
            .loaded_at
            .is_some_and(|t| t.elapsed() <= self.settings.max_stale);
        let text = self.stats.text.lock().unwrap_or_else(|p| p.into_inner());
        IssuerKeyStatus {
            issuer: self.name.clone(),
            keys: if ready { snap.keys.len() } else { 0 },
            ready,
            last_refresh_unix: text.0,
            last_error: text.1.clone(),
            fetch_ok: self.stats.ok.load(Ordering::Relaxed),
            fetch_failed: self.stats.failed.load(Ordering::Relaxed),
        }
    }
}

enum Cached {
    Answer(Result<Arc<VerifyingKey>, KeyLookupError>),
    UnknownKid,
    NoUsableKeys,
}
