//! Logs and metrics.
//!
//! Logs: human-readable by default, JSON lines by setting; `RUST_LOG` overrides the configured
//! filter. Metrics: one [`Metrics`] per application (not process globals, so several test apps
//! in one process never share counters), rendered in Prometheus text format at `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};
use crate::issuer::IssuerKeyStatus;

/// Installs the global tracing subscriber. Safe to call more than once (later calls are no-ops).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

pub struct Metrics {
    registry: Registry,
    pub exchanges: IntCounterVec,
    pub exchange_seconds: HistogramVec,
    pub policies_loaded: IntGauge,
    pub audit_failures: IntCounter,
    pub store_errors: IntCounter,
    pub cache_hits: IntCounter,
    /// Policy-set reloads by result: `applied`, `unchanged`, `rejected`.
    pub policy_reloads: IntCounterVec,
    /// Advanced at scrape time to the store's own count (`Store::state_losses`).
    pub store_state_lost: IntCounter,
    /// Set at scrape time from `Store::may_evict`: 1 when the shared store may evict keys.
    pub store_may_evict: IntGauge,
    /// `/introspect`, `/revoke` and admin requests by action, decision and reason.
    pub lifecycle: IntCounterVec,
    /// Exchanges refused by `grant.rate_limit`, by policy.
    pub rate_limited: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let exchanges = IntCounterVec::new(
            Opts::new(
                "ferry_exchanges_total",
                "Token exchanges by decision and reason code",
            ),
            &["decision", "reason"],
        )
        .expect("valid metric");
        let exchange_seconds = HistogramVec::new(
            HistogramOpts::new("ferry_exchange_duration_seconds", "Time to answer /token").buckets(
                vec![
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["decision"],
        )
        .expect("valid metric");
        let policies_loaded =
            IntGauge::new("ferry_policies_loaded", "Trust policies in the active set")
                .expect("valid metric");
        let audit_failures = IntCounter::new(
            "ferry_audit_failures_total",
            "Audit appends that failed (the exchange was answered 503)",
        )
        .expect("valid metric");
        let store_errors =
            IntCounter::new("ferry_store_errors_total", "Store operations that failed")
                .expect("valid metric");
        let cache_hits = IntCounter::new(
            "ferry_credential_cache_hits_total",
            "Exchanges answered from the credential cache",
        )
        .expect("valid metric");
        let policy_reloads = IntCounterVec::new(
            Opts::new(
                "ferry_policy_reloads_total",
                "Policy-set reloads by result (a rejected set leaves the last good one serving)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let store_state_lost = IntCounter::new(
            "ferry_store_state_lost_total",
            "Times this replica found the shared store emptied (flushed or restarted without \
             persistence): replay records of live tokens were lost",
        )
        .expect("valid metric");
        let store_may_evict = IntGauge::new(
            "ferry_store_may_evict",
            "1 when the shared store may evict keys under memory pressure (Redis maxmemory with \
             a policy other than noeviction), as of its last state check: replay records could \
             go early",
        )
        .expect("valid metric");
        let lifecycle = IntCounterVec::new(
            Opts::new(
                "ferry_lifecycle_requests_total",
                "Introspection, revocation and admin requests by action, decision and reason",
            ),
            &["action", "decision", "reason"],
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "ferry_rate_limited_total",
                "Exchanges refused by a policy's grant.rate_limit, by policy",
            ),
            &["policy"],
        )
        .expect("valid metric");
        for c in [
            Box::new(lifecycle.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rate_limited.clone()),
            Box::new(store_state_lost.clone()),
            Box::new(store_may_evict.clone()),
            Box::new(exchanges.clone()),
            Box::new(exchange_seconds.clone()),
            Box::new(policies_loaded.clone()),
            Box::new(audit_failures.clone()),
            Box::new(store_errors.clone()),
            Box::new(cache_hits.clone()),
            Box::new(policy_reloads.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            registry,
            exchanges,
            exchange_seconds,
            policies_loaded,
            audit_failures,
            store_errors,
            cache_hits,
            policy_reloads,
            store_state_lost,
            store_may_evict,
            lifecycle,
            rate_limited,
        }
    }

    /// Prometheus text: the registry, then per-issuer key state (owned by the key cache, so it
    /// is read at scrape time rather than mirrored into counters).
    pub fn render(&self, keys: &[IssuerKeyStatus]) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        out.push_str("# HELP ferry_issuer_key_fetches_total Issuer key fetches by result\n");
        out.push_str("# TYPE ferry_issuer_key_fetches_total counter\n");
        for k in keys {
            out.push_str(&format!(
                "ferry_issuer_key_fetches_total{{issuer=\"{}\",result=\"ok\"}} {}\n",
                k.issuer, k.fetch_ok
            ));
            out.push_str(&format!(
                "ferry_issuer_key_fetches_total{{issuer=\"{}\",result=\"error\"}} {}\n",
                k.issuer, k.fetch_failed
            ));
        }
        out.push_str(
            "# HELP ferry_issuer_key_fetch_failures_total Failed issuer key fetches by reason\n",
        );
        out.push_str("# TYPE ferry_issuer_key_fetch_failures_total counter\n");
        for k in keys {
            for (reason, n) in &k.failures {
                out.push_str(&format!(
                    "ferry_issuer_key_fetch_failures_total{{issuer=\"{}\",reason=\"{reason}\"}} {n}\n",
                    k.issuer
                ));
            }
        }
        out.push_str("# HELP ferry_issuer_keys Usable verification keys per issuer\n");
        out.push_str("# TYPE ferry_issuer_keys gauge\n");
        for k in keys {
            out.push_str(&format!(
                "ferry_issuer_keys{{issuer=\"{}\"}} {}\n",
                k.issuer, k.keys
            ));
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
