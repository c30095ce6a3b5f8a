//! `ExchangeService`: the only place an exchange does I/O (this file: verify, decide, record;
//! `exchange::issue`: the store round trip and the credential).
//!
//! With an `actor_token` (delegation), the actor token is verified by the same verifier right
//! after the subject token (`exchange::actor`), and both `jti`s are claimed in the same first
//! round trip.
//!
//! verify (may fetch keys) -> decide (pure) -> read the kill switches and the revocations of the
//! presented Ferry credentials + step `grant.rate_limit` + claim the `jti`s + read cache (one
//! store round trip; kill switches, revoked presented credentials and cache hits under a kill
//! switch are checked on its answer, see `lifecycle::guard`) -> mint on a miss -> append the
//! audit event -> `Store::commit` (the shared audit stream entry, when the store keeps one, and
//! the cache entry; for an opaque credential `Store::commit_opaque`, with its record instead:
//! the second round trip) -> only then answer with the credential. Every call records exactly
//! one audit event, whatever happens; if that record cannot be written (file or stream), the
//! caller gets 503 and no credential (and an `allow` the file took before the stream refused it
//! is followed there by the event that says so, `record_withheld`, which the stream gets too in
//! case the refused commit was carried out after all).
//!
//! A cache hit on a store that [`Store::records_hits_first`] sends its audit event with the
//! first round trip (`store::HitRecord`); when the store appended it there, the commit is
//! skipped and the hit costs one round trip (the file record is still written before the
//! answer).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::form::{ExchangeRequest, RequestError, TokenType};
use super::issue::{Granted, Issued};
use super::{audit_trace, decide, DecideContext, Decision, DenyReason, Requested};
use crate::audit::{append_serialized, AuditEvent, AuditSink, CacheUse, EventJson, Outcome};
use crate::credential::Minter;
use crate::domain::{unix_now, Secret};
use crate::policy::PolicySet;
use crate::store::{CachePut, CredentialFacts, Store};
use crate::telemetry::Metrics;
use crate::verify::{VerifiedToken, Verifier};

/// The policy set and the verifier built from its `issuers.yaml`, swapped together on reload.
pub struct Active {
    pub policies: PolicySet,
    pub verifier: Verifier,
}

pub struct ExchangeSettings {
    pub leeway: Duration,
    pub replay_margin: Duration,
    pub cache_credentials: bool,
}

pub struct ExchangeService {
    pub active: ArcSwap<Active>,
    pub store: Arc<dyn Store>,
    pub audit: Arc<dyn AuditSink>,
    pub minter: Arc<dyn Minter>,
    pub metrics: Arc<Metrics>,
    pub context: DecideContext,
    pub settings: ExchangeSettings,
}

/// Who asked: request id and peer address, for the audit event.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_addr: Option<String>,
}

#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub issued_token_type: TokenType,
    pub expires_in: u64,
    pub scope: String,
}

/// Why an exchange produced no credential. `http::error` maps each variant to an RFC error.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The subject token or the policies said no. The code is for the audit trail only; the
    /// caller gets a generic description (no oracle on which check failed).
    #[error("subject token refused ({0})")]
    Refused(&'static str),
    /// No policy for this issuer grants the requested audience.
    #[error("audience not served")]
    InvalidTarget,
    /// Policies grant the audience, but not the requested scopes (`scope_not_allowed`), or a
    /// guardrail's `scopes_allowed` does not (`scope_above_ceiling`). The code is for the audit
    /// trail.
    #[error("scope not allowed ({0})")]
    InvalidScope(&'static str),
    /// A dependency (store, audit, issuer keys) is unavailable: fail closed.
    #[error("temporarily unavailable ({0})")]
    Unavailable(&'static str),
    #[error("internal error ({0})")]
    Internal(&'static str),
    /// `grant.rate_limit` refused: retry after this long (429 `Retry-After`).
    #[error("rate limited")]
    RateLimited(Duration),
}

impl ExchangeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Request(e) => e.code(),
            Self::Refused(code) | Self::Unavailable(code) | Self::Internal(code) => code,
            Self::InvalidTarget => DenyReason::AudienceNotServed.code(),
            Self::InvalidScope(code) => code,
            Self::RateLimited(_) => "rate_limited",
        }
    }
}

impl ExchangeService {
    /// One exchange, end to end, with exactly one audit event (two in the file when an `allow`
    /// is withheld: see `record_withheld`).
    pub async fn exchange(
        &self,
        input: Result<ExchangeRequest, RequestError>,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, ExchangeError> {
        let started = Instant::now();
        let mut event = AuditEvent {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            exchange_id: uuid::Uuid::now_v7().to_string(),
            request_id: meta.request_id.clone(),
            client_addr: meta.client_addr.clone(),
            ..AuditEvent::default()
        };
        let result = match input {
            Ok(request) => self.run(&request, &mut event).await,
            Err(e) => Err(ExchangeError::Request(e)),
        };
        let (outcome, reason) = match &result {
            Ok(_) => (Outcome::Allow, "granted"),
            Err(e @ (ExchangeError::Unavailable(_) | ExchangeError::Internal(_))) => {
                (Outcome::Error, e.code())
            }
            Err(e) => (Outcome::Deny, e.code()),
        };
        event.decision = Some(outcome);
        event.reason = reason.to_string();
        if outcome != Outcome::Allow {
            // A policy may have matched before the exchange was refused (a replay, a store
            // outage): nothing was granted, so the record must not say otherwise.
            event.scopes_granted.clear();
        }
        let result = self.record(&mut event, result).await;
        self.observe(&event, &result, started);
        result.map(|issued| issued.response)
    }

    /// Appends the audit event (file, then stream with the cache entry); a credential is released
    /// only if both succeeded. When the file took an `allow` that the stream then refused, the
    /// file gets a second record for the exchange saying the credential was withheld, and
    /// `event` becomes that record (what the metrics and the log line report). A hit whose
    /// `allow` the first round trip put in the stream gets that correction in the stream when
    /// the file refuses its record.
    async fn record(
        &self,
        event: &mut AuditEvent,
        result: Result<Issued, ExchangeError>,
    ) -> Result<Issued, ExchangeError> {
        let json = match append_serialized(self.audit.as_ref(), event).await {
            Ok(json) => json,
            Err(e) => {
                self.metrics.audit_failures.inc();
                tracing::error!(
                    exchange_id = %event.exchange_id, reason = %event.reason, error = %e,
                    "audit record could not be written; no credential issued"
                );
                let refused = ExchangeError::Unavailable("audit_unavailable");
                if let Ok(issued) = &result {
                    // What the metrics and the log line report: an error, not the allow.
                    withhold(event, &refused);
                    if issued.stream_recorded {
                        // The first round trip already put this hit's `allow` in the stream.
                        self.correct_stream_with(event);
                    }
                }
                return Err(refused);
            }
        };
        let cache = result.as_ref().ok().and_then(|issued| {
            issued.cache_put.as_ref().map(|(key, credential)| CachePut {
                key,
                credential,
                ttl: Duration::from_secs(
                    credential.expires_at.saturating_sub(unix_now()).max(1) as u64
                ),
            })
        });
        if result.as_ref().is_ok_and(|issued| issued.stream_recorded) {
            return result;
        }
        // One round trip: the shared audit stream entry (stores that keep one) and the cache,
        // or an opaque credential's record (what makes it introspectable).
        let opaque = result.as_ref().ok().and_then(|i| i.opaque.as_ref());
        let committed = match opaque {
            Some(record) => self.store.commit_opaque(&json, record).await,
            None => self.store.commit(&json, cache).await,
        };
        if let Err(e) = committed {
            self.metrics.store_errors.inc();
            let stream = self.store.keeps_audit_stream();
            if stream {
                self.metrics.audit_failures.inc();
            }
            if stream || opaque.is_some() {
                tracing::error!(
                    exchange_id = %event.exchange_id, reason = %event.reason, error = %e,
                    "audit stream append or opaque credential record failed; no credential issued"
                );
                let refused = ExchangeError::Unavailable(match opaque {
                    Some(_) => "store_unavailable",
                    None => "audit_unavailable",
                });
                if result.is_ok() {
                    self.record_withheld(event, &refused).await;
                }
                return Err(refused);
            }
            // The credential is recorded and valid; only reuse is lost.
            tracing::warn!(error = %e, "credential cache write failed");
        }
        result
    }

    /// The file already holds `event` as an `allow`; appends the record that corrects it: the
    /// same exchange, `decision: error` with the refusal's code, nothing granted. The later
    /// record of an `exchange_id` is that exchange's outcome. `credential_id` and `cache` stay:
    /// a withheld miss names the credential it did not release; a withheld hit keeps `cache: hit`,
    /// since the credential it would have served was delivered by the exchange that minted it.
    async fn record_withheld(&self, event: &mut AuditEvent, refused: &ExchangeError) {
        withhold(event, refused);
        match append_serialized(self.audit.as_ref(), event).await {
            Ok(json) => self.correct_stream(&event.exchange_id, json),
            Err(e) => {
                self.metrics.audit_failures.inc();
                tracing::error!(
                    exchange_id = %event.exchange_id, error = %e,
                    "the record that the credential was withheld could not be written"
                );
                // The stream may hold the `allow` all the same: it still gets the correction.
                self.correct_stream_with(event);
            }
        }
    }

    /// [`Self::correct_stream`] with `event` serialized here (the file did not take it).
    fn correct_stream_with(&self, event: &AuditEvent) {
        match EventJson::new(event) {
            Ok(json) => self.correct_stream(&event.exchange_id, json),
            Err(_) => self.metrics.audit_failures.inc(),
        }
    }

    /// Appends the correction to the shared audit stream too, for a store that keeps one: the
    /// stream may hold the `allow` although the commit failed. A commit whose reply timed out
    /// may still be carried out (queued behind a slow command, say), and on a Cluster an opaque
    /// credential's record and the stream live on different nodes, so one can fail alone.
    ///
    /// Order: an HTTP worker is a single-threaded runtime, so the spawned task stays on this
    /// thread and takes its Redis connection (one per thread), behind the commit. A timeout
    /// does not replace the connection (only commands failing for the whole stall window do,
    /// `store::redis::connect`), so Redis carries the correction out after the `allow`, unless
    /// the connection was replaced in between (a dropped connection, a stall, or a Cluster
    /// failover that moved the stream's slot). Where the `allow` never landed, the correction
    /// is the exchange's only stream entry.
    ///
    /// Best effort and in the background: the refusal is not held up by a second timeout, and
    /// the file already has both records. A correction that fails counts as an audit failure.
    fn correct_stream(&self, exchange_id: &str, json: EventJson) {
        if !self.store.keeps_audit_stream() {
            return;
        }
        let store = Arc::clone(&self.store);
        let metrics = Arc::clone(&self.metrics);
        let exchange_id = exchange_id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.commit(&json, None).await {
                metrics.audit_failures.inc();
                tracing::warn!(
                    exchange_id = %exchange_id, error = %e,
                    "the audit stream could not be told that the credential was withheld (the file was)"
                );
            }
        });
    }

    fn observe(
        &self,
        event: &AuditEvent,
        result: &Result<Issued, ExchangeError>,
        started: Instant,
    ) {
        let decision = match event.decision {
            Some(Outcome::Allow) => "allow",
            Some(Outcome::Deny) => "deny",
            _ => "error",
        };
        self.metrics
            .exchanges
            .with_label_values(&[decision, &event.reason])
            .inc();
        self.metrics
            .exchange_seconds
            .with_label_values(&[decision])
            .observe(started.elapsed().as_secs_f64());
        if result.is_ok() && event.cache == Some(CacheUse::Hit) {
            self.metrics.cache_hits.inc();
        }
        if let Err(ExchangeError::RateLimited(_)) = result {
            let policy = event.policy.as_deref().unwrap_or("-");
            self.metrics.rate_limited.with_label_values(&[policy]).inc();
        }
        tracing::info!(
            exchange_id = %event.exchange_id,
            request_id = %event.request_id,
            decision,
            reason = %event.reason,
            issuer = event.issuer.as_deref().unwrap_or("-"),
            subject = event.subject.as_deref().unwrap_or("-"),
            policy = event.policy.as_deref().unwrap_or("-"),
            "exchange"
        );
    }

    async fn run(
        &self,
        request: &ExchangeRequest,
        event: &mut AuditEvent,
    ) -> Result<Issued, ExchangeError> {
        let requested = &request.requested;
        event.audience = requested.audience.as_ref().map(|a| a.to_string());
        event.scopes_requested = requested.scopes.iter().map(|s| s.to_string()).collect();

        let active = self.active.load();
        let now = unix_now();
        let token = active
            .verifier
            .verify(request.subject_token.expose(), now)
            .await
            .map_err(|e| {
                if e.is_unavailable() {
                    ExchangeError::Unavailable(e.code())
                } else {
                    ExchangeError::Refused(e.code())
                }
            })?;
        event.issuer = Some(token.issuer.to_string());
        event.subject = Some(token.subject.clone());
        event.token_jti = token.jti.clone();
        event.token_sha256 = Some(token.token_sha256.clone());
        event.policy_set_version = Some(active.policies.version().to_string());
        let delegated;
        let requested = match &request.actor_token {
            None => requested,
            Some(t) => {
                let actor = super::actor::verify(&active.verifier, t, &token, now, event).await?;
                delegated = Requested {
                    actor: Some(actor),
                    ..requested.clone()
                };
                &delegated
            }
        };

        let decision = decide(requested, &token, &active.policies, &self.context, now);
        // Full per-condition trace, only for denials and audit-mode rollouts.
        event.trace = audit_trace(
            &decision,
            requested,
            &token,
            &active.policies,
            &self.context,
        );
        let grant = match decision {
            Decision::Allow(grant) => grant,
            Decision::Deny(denial) => {
                event.policy = denial.policy.as_ref().map(|p| p.to_string());
                event.policy_file = denial
                    .policy
                    .as_ref()
                    .and_then(|n| active.policies.position(n))
                    .map(|i| active.policies.policy(i).file_name());
                event.observations = non_empty_json(&denial.observations);
                return Err(match denial.reason {
                    DenyReason::AudienceNotServed => ExchangeError::InvalidTarget,
                    reason @ (DenyReason::ScopeNotAllowed | DenyReason::ScopeAboveCeiling) => {
                        ExchangeError::InvalidScope(reason.code())
                    }
                    other => ExchangeError::Refused(other.code()),
                });
            }
        };
        event.policy = Some(grant.policy.to_string());
        event.policy_file = Some(grant.policy_file.clone());
        event.audience = Some(grant.audience.to_string());
        event.scopes_granted = grant.scopes.iter().map(|s| s.to_string()).collect();
        event.observations = non_empty_json(&grant.observations);
        event.guardrails = non_empty_json(&grant.guardrails);
        if let Some(d) = &grant.delegation {
            event.actors = d
                .chain
                .iter()
                .filter_map(|l| serde_json::to_value(l).ok())
                .collect();
            event.scopes_refused = d.scopes_refused.iter().map(|s| s.to_string()).collect();
        }

        let actor = requested.actor.as_ref().map(|a| a.0.as_ref());
        let presented = presented_credentials(&token, actor, |t| active.verifier.is_broker(t))?;
        let granted = Granted {
            request,
            requested,
            token: &token,
            grant: &grant,
            policy_set_version: active.policies.version(),
            presented,
        };
        self.issue(&granted, now, event).await
    }
}

/// The Ferry credentials an exchange presents again (a delegation's next hop: subject or actor
/// token vouched for by a `kind: ferry` issuer), each with the code that refuses it if a
/// revocation covers it; checked against the revocations read in the first store round trip.
pub(super) fn presented_credentials(
    subject: &VerifiedToken,
    actor: Option<&VerifiedToken>,
    is_broker: impl Fn(&crate::domain::IssuerName) -> bool,
) -> Result<Vec<(CredentialFacts, &'static str)>, ExchangeError> {
    [
        (Some(subject), "subject_token_revoked"),
        (actor, "actor_token_revoked"),
    ]
    .into_iter()
    .filter_map(|(t, code)| Some((t?, code)))
    .filter(|(t, _)| is_broker(&t.issuer))
    .map(|(t, code)| {
        // Every credential Ferry mints has these claims: one without them is refused.
        CredentialFacts::from_claims(&t.claims)
            .map(|facts| (facts, code))
            .ok_or(ExchangeError::Refused("broker_credential_malformed"))
    })
    .collect()
}

fn non_empty_json<T: serde::Serialize>(items: &[T]) -> Option<serde_json::Value> {
    (!items.is_empty())
        .then(|| serde_json::to_value(items).ok())
        .flatten()
}

/// Turns an `allow` into the record that corrects it (see `ExchangeService::record_withheld`).
fn withhold(event: &mut AuditEvent, refused: &ExchangeError) {
    event.time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    event.decision = Some(Outcome::Error);
    event.reason = refused.code().to_string();
    event.scopes_granted.clear();
    event.trace = None;
}
