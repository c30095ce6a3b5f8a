//! The per-issuer key cache: lock-free reads on the hot path, refreshes bounded by cooldowns
//! and shared by concurrent callers (single flight), last-known-good keys through failures,
//! a scheduled refresh at the freshness the source announced (clamped), a negative cache of
//! unknown kids, and a SPIFFE bundle sequence that never goes backwards.
//!
//! Must not fetch more than once per cooldown for unknown kids, more than once per
//! [`NEVER_LOADED_RETRY`] while the issuer has no usable keys, and must never serve keys older
//! than `max_stale`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::jwk::{parse_key_set, KeySet, Selection, VerifyingKey};
use super::negative::NegativeKids;
use super::{FetchError, FetchSettings, IssuerKeyStatus, KeyDocument, KeyFetcher};
use crate::domain::{unix_now, Algorithm, IssuerName};

/// While an issuer has no usable keys, at most one fetch per second: an issuer that starts
/// after the broker is picked up within a second, and a flood of its tokens costs at most one
/// fetch a second.
const NEVER_LOADED_RETRY: Duration = Duration::from_secs(1);

/// A kid a refresh did not find is refused without a fetch for this many cooldowns.
const NEGATIVE_TTL_COOLDOWNS: u32 = 5;

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
    /// When these keys are due for a scheduled refresh (after `loaded_at`).
    fresh_for: Duration,
    /// The SPIFFE bundle sequence these keys came with.
    sequence: Option<u64>,
}

#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    failed: AtomicU64,
    /// (last successful refresh in Unix seconds, error of the most recent failed attempt).
    text: Mutex<(Option<i64>, Option<String>)>,
    /// Failed fetches by reason code.
    failures: Mutex<BTreeMap<&'static str, u64>>,
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
    /// Kids the latest refreshes did not find (bounded; see `negative`).
    negative: Mutex<NegativeKids>,
    /// The most recent fetch succeeded (so its keys are the issuer's current ones).
    last_fetch_ok: AtomicBool,
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
            current: ArcSwap::from_pointee(Snapshot::default()),
            refresh: tokio::sync::Mutex::new(None),
            background: AtomicBool::new(false),
            last_fetch_ok: AtomicBool::new(false),
            negative: Mutex::new(NegativeKids::new(
                settings.refresh_cooldown * NEGATIVE_TTL_COOLDOWNS,
            )),
            settings,
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
            Cached::UnknownKid if kid.is_some_and(|k| self.known_unknown(k)) => {
                return Err(KeyLookupError::UnknownKid)
            }
            Cached::UnknownKid => self.settings.refresh_cooldown,
            Cached::NoUsableKeys => NEVER_LOADED_RETRY,
        };
        let fetched = self.refresh_gated(gap).await;
        match self.cached(kid) {
            Cached::Answer(answer) => answer,
            Cached::UnknownKid => {
                // Only a kid that keys fetched just now for it lack is remembered. One unknown
                // because the refresh failed, or because the cooldown skipped it (the keys are
                // older than the kid may be), may be the issuer's new key.
                let fresh_answer = fetched && self.last_fetch_ok.load(Ordering::Acquire);
                if let Some(kid) = kid.filter(|_| fresh_answer) {
                    self.lock_negative().insert(kid);
                }
                Err(KeyLookupError::UnknownKid)
            }
            Cached::NoUsableKeys => Err(KeyLookupError::Unavailable),
        }
    }

    fn known_unknown(&self, kid: &str) -> bool {
        self.lock_negative().contains(kid)
    }

    fn lock_negative(&self) -> std::sync::MutexGuard<'_, NegativeKids> {
        self.negative.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(self: &Arc<Self>, kid: Option<&str>) -> Cached {
        let snap = self.current.load();
        let Some(loaded_at) = snap
            .loaded_at
            .filter(|t| t.elapsed() <= self.settings.max_stale)
        else {
            return Cached::NoUsableKeys;
        };
        if loaded_at.elapsed() >= snap.fresh_for {
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

    /// The scheduled refresh without a request: fetches when the keys are due (or there are
    /// none), within the same cooldowns as every other refresh. Called by the broker's ticker.
    pub(crate) async fn refresh_if_due(&self) {
        let gap = {
            let snap = self.current.load();
            match snap.loaded_at {
                Some(t) if t.elapsed() < snap.fresh_for => return,
                Some(_) => self.settings.refresh_cooldown,
                None => NEVER_LOADED_RETRY,
            }
        };
        self.refresh_gated(gap).await;
    }

    /// Fetches once now, unless another fetch is running (then waits for it) or one ended less
    /// than `min_gap` ago. Returns whether this call fetched.
    pub(crate) async fn refresh_gated(&self, min_gap: Duration) -> bool {
        let mut last_attempt = self.refresh.lock().await;
        if last_attempt.is_some_and(|t| t.elapsed() < min_gap) {
            return false;
        }
        self.fetch_and_swap().await;
        *last_attempt = Some(Instant::now());
        true
    }

    async fn fetch_and_swap(&self) {
        let result = match self.fetcher.fetch_document().await {
            Ok(doc) => self.accept(doc),
            Err(e) => Err(e),
        };
        let mut text = self.stats.text.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(snapshot) => {
                tracing::info!(issuer = %self.name, keys = snapshot.keys.len(),
                    refresh_in_s = snapshot.fresh_for.as_secs(), "issuer keys loaded");
                self.current.store(Arc::new(snapshot));
                self.last_fetch_ok.store(true, Ordering::Release);
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
                *text = (Some(unix_now()), None);
            }
            Err(e) => {
                // The previous keys (if any) keep serving until `max_stale`.
                tracing::warn!(issuer = %self.name, error = %e, reason = e.code(),
                    "issuer key refresh failed");
                self.last_fetch_ok.store(false, Ordering::Release);
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let mut failures = self
                    .stats
                    .failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                *failures.entry(e.code()).or_default() += 1;
                text.1 = Some(e.to_string());
            }
        }
    }

    /// A fetched document -> the next snapshot, or why the current one stays.
    fn accept(&self, doc: KeyDocument) -> Result<Snapshot, FetchError> {
        // Security invariant: a bundle older than the one in use (a replayed or rolled-back
        // bundle, perhaps still holding a revoked key) never replaces it.
        if let (Some(fetched), Some(current)) = (doc.sequence, self.current.load().sequence) {
            if fetched < current {
                return Err(FetchError::SequenceRollback { current, fetched });
            }
        }
        let keys = parse_key_set(&self.name, &self.algorithms, &doc.keys)?;
        let s = &self.settings;
        let fresh_for = doc
            .fresh_for
            .unwrap_or(s.refresh_interval)
            .clamp(s.min_refresh, s.max_refresh.max(s.min_refresh));
        Ok(Snapshot {
            keys,
            loaded_at: Some(Instant::now()),
            fresh_for,
            sequence: doc.sequence,
        })
    }

    pub(crate) fn status(&self) -> IssuerKeyStatus {
        let snap = self.current.load();
        let ready = snap
            .loaded_at
            .is_some_and(|t| t.elapsed() <= self.settings.max_stale);
        let text = self.stats.text.lock().unwrap_or_else(|p| p.into_inner());
        let failures = self
            .stats
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        IssuerKeyStatus {
            issuer: self.name.clone(),
            keys: if ready { snap.keys.len() } else { 0 },
            ready,
            last_refresh_unix: text.0,
            last_error: text.1.clone(),
            fetch_ok: self.stats.ok.load(Ordering::Relaxed),
            fetch_failed: self.stats.failed.load(Ordering::Relaxed),
            failures: failures.iter().map(|(k, v)| (*k, *v)).collect(),
            sequence: snap.sequence,
        }
    }
}

enum Cached {
    Answer(Result<Arc<VerifyingKey>, KeyLookupError>),
    UnknownKid,
    NoUsableKeys,
}
