//! Hot reload of the policy directory (POLICY.md "Layout"): on a change seen by polling the
//! directory, or on `SIGHUP`, the whole set is loaded and checked with the same
//! `PolicySet::load` as at startup, a new `Verifier` is built from its `issuers.yaml` (keeping
//! the key caches of unchanged issuers, fetching keys of new ones), and both are swapped in
//! atomically (one `ArcSwap` store). A set that does not load is
//! rejected: the last good one keeps serving, and the rejection is logged, counted
//! (`ferry_policy_reloads_total{result="rejected"}`) and shown in `/readyz`.
//!
//! Exchanges in flight keep the `Active` they loaded; the next one sees the new set. One reload
//! runs at a time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::domain::unix_now;
use crate::exchange::{Active, ExchangeService};
use crate::issuer::FetchSettings;
use crate::policy::PolicySet;
use crate::verify::{Verifier, VerifySettings};

/// What the last reloads did, for `/readyz`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadStatus {
    pub applied: u64,
    pub rejected: u64,
    /// When the last attempt finished.
    pub last_attempt_unix: Option<i64>,
    /// Why the last attempt was rejected; cleared by the next applied or unchanged reload.
    pub last_error: Option<String>,
}

/// The result of one reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied {
        version: String,
    },
    /// The files load to the set already serving (same content hash).
    Unchanged,
    Rejected(String),
}

pub struct PolicyReloader {
    dir: PathBuf,
    service: Arc<ExchangeService>,
    verify: VerifySettings,
    fetch: FetchSettings,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads (a poll and a SIGHUP at once load once each, never interleaved).
    running: tokio::sync::Mutex<()>,
}

impl PolicyReloader {
    pub fn new(
        dir: PathBuf,
        service: Arc<ExchangeService>,
        verify: VerifySettings,
        fetch: FetchSettings,
    ) -> Self {
        PolicyReloader {
            dir,
            service,
            verify,
            fetch,
            status: Mutex::new(ReloadStatus::default()),
            running: tokio::sync::Mutex::new(()),
        }
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Loads, checks and (if it differs) swaps in the directory's current set.
    pub async fn reload(&self) -> ReloadOutcome {
        let _one_at_a_time = self.running.lock().await;
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || PolicySet::load(&dir))
            .await
            .map_err(|e| format!("the loader stopped: {e}"))
            .and_then(|r| r.map_err(|errors| errors.to_string()));
        let outcome = match loaded {
            Err(e) => ReloadOutcome::Rejected(e),
            Ok(set) if set.version() == self.service.active.load().policies.version() => {
                ReloadOutcome::Unchanged
            }
            Ok(set) => self.swap(set).await,
        };
        self.record(&outcome);
        outcome
    }

    async fn swap(&self, policies: PolicySet) -> ReloadOutcome {
        let broker = crate::startup::broker_keys(self.service.minter.as_ref());
        let built = Verifier::new(policies.issuers(), self.verify.clone(), self.fetch.clone())
            .and_then(|v| v.with_broker(&broker));
        let mut verifier = match built {
            Ok(v) => v,
            Err(e) => return ReloadOutcome::Rejected(format!("issuer keys: {e}")),
        };
        // Unchanged issuers keep their caches (and last good keys); new ones are fetched before
        // the swap, so exchanges never wait on a cold cache.
        verifier.adopt_keys_from(&self.service.active.load().verifier);
        verifier.warm_up_cold().await;
        let version = policies.version().to_string();
        let count = policies.len() as i64;
        self.service
            .active
            .store(Arc::new(Active { policies, verifier }));
        self.service.metrics.policies_loaded.set(count);
        ReloadOutcome::Applied { version }
    }

    fn record(&self, outcome: &ReloadOutcome) {
        let (result, error) = match outcome {
            ReloadOutcome::Applied { version } => {
                tracing::info!(dir = %self.dir.display(), %version, "policy set reloaded");
                ("applied", None)
            }
            ReloadOutcome::Unchanged => ("unchanged", None),
            ReloadOutcome::Rejected(e) => {
                tracing::error!(
                    dir = %self.dir.display(), error = %e,
                    "policy reload rejected; the last good set keeps serving"
                );
                ("rejected", Some(e.clone()))
            }
        };
        self.service
            .metrics
            .policy_reloads
            .with_label_values(&[result])
            .inc();
        if let Ok(mut s) = self.status.lock() {
            match result {
                "applied" => s.applied += 1,
                "rejected" => s.rejected += 1,
                _ => {}
            }
            s.last_attempt_unix = Some(unix_now());
            s.last_error = error;
        }
    }

    /// Polls the directory every `interval` (if non-zero) for changes.
    pub fn spawn_polling(self: Arc<Self>, interval: Duration) {
        if interval.is_zero() {
            return;
        }
        tokio::spawn(async move {
            let mut seen = fingerprint(&self.dir);
            loop {
                tokio::time::sleep(interval).await;
                let now = fingerprint(&self.dir);
                if now != seen {
                    seen = now;
                    self.reload().await;
                }
            }
        });
    }

    /// Reloads on every `SIGHUP`. The handler is installed before this returns, so a signal
    /// sent after startup can never fall through to the default action (terminate).
    #[cfg(unix)]
    pub fn listen_for_sighup(self: Arc<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; policy reload by signal is off");
            return;
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading policies");
                self.reload().await;
            }
        });
    }
}

/// Name, size and modification time of every entry directly in `dir` (where the loader reads
/// policies, `issuers.yaml` and `guardrails.yaml`): a cheap change detector; the content hash
/// decides whether anything really changed.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            let name = e.file_name().into_string().ok()?;
            Some((name, meta.len(), meta.modified().ok()))
        })
        .collect();
    out.sort();
    out
}
