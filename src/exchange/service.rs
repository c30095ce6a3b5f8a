//! `ExchangeService`: the only place an exchange does I/O.
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
//! the second round trip) -> only then answer with the credential. Every call records exactly one audit event, whatever happens; if that
//! record cannot be written (file or stream), the caller gets 503 and no credential.
//!
//! A cache hit on a store that [`Store::records_hits_first`] sends its audit event with the
//! first round trip (`store::HitRecord`); when the store appended it there, the commit is
//! skipped and the hit costs one round trip (the file record is still written before the
//! answer).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::form::{ExchangeRequest, RequestError, TokenType};
use super::{audit_trace, decide, DecideContext, Decision, DenyReason, Grant, Requested};
use crate::audit::{AuditEvent, AuditSink, CacheUse, Outcome};
use crate::credential::{MintRequest, Minter};
use crate::domain::{sha256_hex, unix_now, Secret, UnixSeconds};
use crate::lifecycle::guard as lifecycle;
use crate::policy::CredentialKind;
use crate::policy::PolicySet;
use crate::store::revocation::{blocking, revoking};
use crate::store::{
    slot_of, CacheKey, CachePut, CachedCredential, CredentialFacts, HitRecord, JtiClaim,
    OpaqueRecord, Store,
};
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
    /// Policies grant the audience, but not the requested scopes.
    #[error("scope not allowed")]
    InvalidScope,
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
            Self::InvalidScope => DenyReason::ScopeNotAllowed.code(),
            Self::RateLimited(_) => "rate_limited",
        }
    }
}

/// What [`ExchangeService::issue`] works from: the request, its verified tokens and the grant
/// decided for them.
struct Granted<'a> {
    request: &'a ExchangeRequest,
    requested: &'a Requested,
    token: &'a VerifiedToken,
    grant: &'a Grant,
    policy_set_version: &'a str,
    /// The Ferry credentials presented (as subject or actor token), each with the refusal code
    /// if a revocation or kill switch covers it.
    presented: Vec<(CredentialFacts, &'static str)>,
}

/// Work left after the audit record is safely written.
struct Issued {
    response: TokenResponse,
    cache_put: Option<(CacheKey, CachedCredential)>,
    /// An opaque credential's record: stored with the audit stream entry, before release.
    opaque: Option<OpaqueRecord>,
    /// The store already appended this hit's event to its audit stream ([`HitRecord`]).
    stream_recorded: bool,
}

impl ExchangeService {
    /// One exchange, end to end, with exactly one audit event.
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
        let result = self.record(&event, result).await;
        self.observe(&event, &result, started);
        result.map(|issued| issued.response)
    }

    /// Appends the audit event (file, then stream with the cache entry); a credential is released
    /// only if both succeeded.
    async fn record(
        &self,
        event: &AuditEvent,
        result: Result<Issued, ExchangeError>,
    ) -> Result<Issued, ExchangeError> {
        if let Err(e) = self.audit.append(event).await {
            self.metrics.audit_failures.inc();
            tracing::error!(
                exchange_id = %event.exchange_id, reason = %event.reason, error = %e,
                "audit record could not be written; no credential issued"
            );
            return Err(ExchangeError::Unavailable("audit_unavailable"));
        }
        let cache = result.as_ref().ok().and_then(|issued| {
            issued.cache_put.as_ref().map(|(key, credential)| CachePut {
                key,
                credential,
                ttl: Duration::from_secs((credential.expires_at - unix_now()).max(1) as u64),
            })
        });
        if result.as_ref().is_ok_and(|issued| issued.stream_recorded) {
            return result;
        }
        if let Some(opaque) = result.as_ref().ok().and_then(|i| i.opaque.as_ref()) {
            // One round trip too: the stream entry and the record that makes the credential
            // introspectable. Without either, the credential is not released.
            if let Err(e) = self.store.commit_opaque(event, opaque).await {
                self.metrics.store_errors.inc();
                if self.store.keeps_audit_stream() {
                    self.metrics.audit_failures.inc();
                }
                tracing::error!(
                    exchange_id = %event.exchange_id, reason = %event.reason, error = %e,
                    "opaque credential record or audit stream append failed; no credential issued"
                );
                return Err(ExchangeError::Unavailable("store_unavailable"));
            }
            return result;
        }
        // One round trip: the shared audit stream entry (stores that keep one) and the cache.
        if let Err(e) = self.store.commit(event, cache).await {
            self.metrics.store_errors.inc();
            if self.store.keeps_audit_stream() {
                self.metrics.audit_failures.inc();
                tracing::error!(
                    exchange_id = %event.exchange_id, reason = %event.reason, error = %e,
                    "audit stream append failed; no credential issued"
                );
                return Err(ExchangeError::Unavailable("audit_unavailable"));
            }
            // The credential is recorded and valid; only reuse is lost.
            tracing::warn!(error = %e, "credential cache write failed");
        }
        result
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
                    DenyReason::ScopeNotAllowed => ExchangeError::InvalidScope,
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

        // Ferry credentials presented again (a delegation's next hop) are checked against the
        // revocations read in the first store round trip.
        let actor = requested.actor.as_ref().map(|a| a.0.as_ref());
        let presented = [
            (Some(&token), "subject_token_revoked"),
            (actor, "actor_token_revoked"),
        ]
        .into_iter()
        .filter_map(|(t, code)| Some((t?, code)))
        .filter(|(t, _)| active.verifier.is_broker(&t.issuer))
        .map(|(t, code)| {
            // Every credential Ferry mints has these claims: one without them is refused.
            CredentialFacts::from_claims(&t.claims)
                .map(|facts| (facts, code))
                .ok_or(ExchangeError::Refused("broker_credential_malformed"))
        })
        .collect::<Result<_, _>>()?;
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

    /// Replay check, revocations, cache, mint.
    async fn issue(
        &self,
        granted: &Granted<'_>,
        now: UnixSeconds,
        event: &mut AuditEvent,
    ) -> Result<Issued, ExchangeError> {
        let Granted {
            request,
            requested,
            token,
            grant,
            policy_set_version,
            ..
        } = *granted;
        let slot = slot_of(token.issuer.as_str(), &token.subject);
        let claim = token.jti.as_ref().map(|jti| JtiClaim {
            slot: slot.clone(),
            key: format!("{}|{}", token.issuer, jti),
            ttl: self.replay_ttl(token.expires_at, now),
        });
        let rate = lifecycle::rate_limit_for(grant, &token.subject, &slot);
        // Never cached: opaque credentials (the cache holds credentials in clear) and delegated
        // ones (each names its own actor chain).
        let cache_key = (self.settings.cache_credentials
            && grant.credential == CredentialKind::Jwt
            && grant.delegation.is_none())
        .then(|| grant_key(grant, &token.subject, policy_set_version, slot));
        let actor = requested.actor.as_ref().map(|a| a.0.as_ref());
        let actor_claim =
            actor.and_then(|a| super::actor::claim(a, self.replay_ttl(a.expires_at, now)));
        let hit_head = cache_key
            .as_ref()
            .filter(|key| self.store.records_hits_first(key, now))
            .and_then(|_| hit_event_head(event));
        let hit = hit_head.as_deref().map(|event_head| HitRecord {
            event_head,
            now,
            ttl_seconds: grant.ttl_seconds,
        });
        let revocation_ids: Vec<String> = granted
            .presented
            .iter()
            .flat_map(|(facts, _)| facts.revocation_ids())
            .collect();
        let (guarded, replayed) = self
            .claim_tokens(
                [claim, actor_claim],
                cache_key.as_ref(),
                rate.as_ref(),
                hit.as_ref(),
                &revocation_ids,
            )
            .await?;
        if !guarded.rate.allowed {
            return Err(ExchangeError::RateLimited(guarded.rate.retry_after));
        }
        let policy = grant.policy.as_str();
        if let Some(switch) = blocking(&guarded.revocations, &token.subject, policy, now) {
            event.revocation = serde_json::to_value(switch).ok();
            return Err(ExchangeError::Refused("kill_switch"));
        }
        if let Some(code) = replayed {
            return Err(ExchangeError::Refused(code));
        }
        let revocations = guarded.revocations;
        for (facts, code) in &granted.presented {
            if let Some(r) = revoking(&revocations, facts, now) {
                event.revocation = serde_json::to_value(r).ok();
                return Err(ExchangeError::Refused(code));
            }
        }
        let cached = guarded.cached.filter(|c| {
            !lifecycle::cached_is_revoked(&revocations, c, &token.subject, policy, now)
        });
        let respond = |credential: &CachedCredential| TokenResponse {
            access_token: credential.token.clone(),
            // An opaque credential is an access token, never a JWT, whatever was asked.
            issued_token_type: match grant.credential {
                CredentialKind::Opaque => TokenType::AccessToken,
                CredentialKind::Jwt => request.issued_token_type,
            },
            expires_in: (credential.expires_at - now).max(0) as u64,
            scope: grant.scopes.to_scope_string(),
        };
        let hit = cached.filter(|c| c.reusable(grant.ttl_seconds, now));
        if let Some(hit) = hit {
            event.cache = Some(CacheUse::Hit);
            event.credential_id = Some(hit.credential_id.clone());
            event.credential_expires_at = Some(hit.expires_at);
            return Ok(Issued {
                response: respond(&hit),
                cache_put: None,
                opaque: None,
                stream_recorded: guarded.hit_recorded,
            });
        }
        if guarded.hit_recorded {
            // The store recorded a hit this broker would not serve: trust neither, issue nothing.
            tracing::error!("the store recorded a cache hit the broker does not serve");
            return Err(ExchangeError::Internal("store_hit_disagreement"));
        }
        let minted = self
            .minter
            .mint(&MintRequest {
                subject: &token.subject,
                audience: grant.audience.as_str(),
                policy: grant.policy.as_str(),
                policy_file: &grant.policy_file,
                policy_set: policy_set_version,
                scopes: &grant.scopes,
                ttl_seconds: grant.ttl_seconds,
                now,
                exchange_id: &event.exchange_id,
                source_issuer: token.issuer.as_str(),
                claims: &grant.claims,
                act: grant.delegation.as_ref().map(|d| &d.act),
            })
            .map_err(|_| ExchangeError::Internal("mint_failed"))?;
        let (minted, opaque) = match grant.credential {
            CredentialKind::Jwt => (minted, None),
            CredentialKind::Opaque => {
                let (minted, record) = lifecycle::into_opaque(minted, now).map_err(|e| {
                    tracing::error!(error = %e, "opaque credential not made");
                    ExchangeError::Internal("mint_failed")
                })?;
                (minted, Some(record))
            }
        };
        let credential = CachedCredential {
            token: minted.token,
            credential_id: minted.id,
            issued_at: minted.issued_at,
            expires_at: minted.expires_at,
            exchange_id: Some(event.exchange_id.clone()),
        };
        event.cache = cache_key.as_ref().map(|_| CacheUse::Miss);
        event.credential_id = Some(credential.credential_id.clone());
        event.credential_expires_at = Some(credential.expires_at);
        let response = respond(&credential);
        Ok(Issued {
            response,
            cache_put: cache_key.map(|k| (k, credential)),
            opaque,
            stream_recorded: false,
        })
    }

    /// How long a used `jti` is remembered: until the token could no longer pass verification
    /// (`exp + leeway`), plus a margin for clock differences between replicas.
    fn replay_ttl(&self, expires_at: UnixSeconds, now: UnixSeconds) -> Duration {
        let until =
            expires_at + (self.settings.leeway + self.settings.replay_margin).as_secs() as i64;
        Duration::from_secs((until - now).max(1) as u64)
    }
}

/// The credential-cache key: everything that shapes the credential's content, never the token.
fn grant_key(grant: &Grant, subject: &str, policy_set_version: &str, slot: String) -> CacheKey {
    let material = serde_json::json!([
        grant.policy.as_str(),
        policy_set_version,
        subject,
        grant.audience.as_str(),
        grant.scopes.to_scope_string(),
        grant.claims,
    ]);
    CacheKey {
        slot,
        id: sha256_hex(material.to_string().as_bytes()),
    }
}

/// The event as a cache hit of this exchange will be recorded (`exchange` sets the same
/// decision and reason on success), serialized without its closing brace and without the
/// credential fields, for a store that records hits in the first round trip ([`HitRecord`]).
fn hit_event_head(event: &mut AuditEvent) -> Option<String> {
    debug_assert!(event.credential_id.is_none() && event.credential_expires_at.is_none());
    event.decision = Some(Outcome::Allow);
    event.reason = "granted".to_string();
    event.cache = Some(CacheUse::Hit);
    let json = serde_json::to_string(event).ok();
    event.decision = None;
    event.reason.clear();
    event.cache = None;
    let mut json = json?;
    (json.pop() == Some('}')).then_some(json)
}

fn non_empty_json<T: serde::Serialize>(items: &[T]) -> Option<serde_json::Value> {
    (!items.is_empty())
        .then(|| serde_json::to_value(items).ok())
        .flatten()
}
