//! The actor token of a delegated exchange (RFC 8693 §2.1 `actor_token`), on the service side:
//! verified by the same [`Verifier`] as the subject token, its `jti` claimed in the same store
//! round trip as the subject's ([`ExchangeService::claim_tokens`]), and recorded in the audit
//! event by hash and `jti` only. The decision about it is
//! `exchange::delegation`'s, inside the pure `decide`.

use std::sync::Arc;
use std::time::Duration;

use super::delegation::{presented_chain, ActorToken};
use super::service::{ExchangeError, ExchangeService};
use crate::audit::AuditEvent;
use crate::domain::{Secret, UnixSeconds};
use crate::store::{slot_of, CacheKey, ClaimOutcome, Guarded, HitRecord, JtiClaim, RateLimit};
use crate::verify::{VerifiedToken, Verifier, VerifyError};

/// Verifies the actor token and notes it in `event`, with every actor presented (also when the
/// exchange is then refused). Refusals have an `actor_` code of their own, so the audit trail
/// says which of the two tokens was refused.
pub(super) async fn verify(
    verifier: &Verifier,
    token: &Secret,
    subject: &VerifiedToken,
    now: UnixSeconds,
    event: &mut AuditEvent,
) -> Result<ActorToken, ExchangeError> {
    let actor =
        verifier
            .verify(token.expose(), now)
            .await
            .map_err(|e| match e.is_unavailable() {
                true => ExchangeError::Unavailable(e.code()),
                false => ExchangeError::Refused(refused_code(&e)),
            })?;
    event.actor_token_jti = actor.jti.clone();
    event.actor_token_sha256 = Some(actor.token_sha256.clone());
    event.actors = presented_chain(subject, &actor)
        .iter()
        .filter_map(|l| serde_json::to_value(l).ok())
        .collect();
    Ok(ActorToken(Arc::new(actor)))
}

/// The actor token's `jti` claim: keyed by its own issuer and subject (not the exchange's), so a
/// replay is caught whichever subject it comes with.
pub(super) fn claim(actor: &VerifiedToken, ttl: Duration) -> Option<JtiClaim> {
    actor.jti.as_ref().map(|jti| JtiClaim {
        slot: slot_of(actor.issuer.as_str(), &actor.subject),
        key: format!("{}|{}", actor.issuer, jti),
        ttl,
    })
}

fn refused_code(e: &VerifyError) -> &'static str {
    match e.code() {
        "unknown_issuer" => "actor_unknown_issuer",
        "token_expired" => "actor_token_expired",
        "not_yet_valid" | "issued_in_future" | "token_too_old" => "actor_token_not_valid_now",
        "bad_signature" | "unknown_key" | "key_algorithm_mismatch" | "algorithm_not_allowed" => {
            "actor_bad_signature"
        }
        _ => "actor_token_refused",
    }
}

impl ExchangeService {
    /// The exchange's first store round trip ([`Store::claim_guarded`]): the kill switches and
    /// the revocations among `revocation_ids` (the presented Ferry credentials'), the
    /// rate-limit step, the subject token's `jti` and the actor token's (all or nothing where
    /// the store can), and the cache (recording a sure hit, `hit`). Returns the store's answer
    /// and, when a token was seen before, the refusal code; the caller checks the rate limit
    /// and kill switches first.
    ///
    /// [`Store::claim_guarded`]: crate::store::Store::claim_guarded
    pub(super) async fn claim_tokens(
        &self,
        [subject, actor]: [Option<JtiClaim>; 2],
        cache_key: Option<&CacheKey>,
        rate: Option<&RateLimit>,
        hit: Option<&HitRecord<'_>>,
        revocation_ids: &[String],
    ) -> Result<(Guarded, Option<&'static str>), ExchangeError> {
        let has_actor = actor.is_some();
        let has_subject = subject.is_some();
        let claims: Vec<JtiClaim> = subject.into_iter().chain(actor).collect();
        let guarded = self
            .store
            .claim_guarded(&claims, cache_key, rate, hit, revocation_ids)
            .await
            .map_err(|e| {
                self.metrics.store_errors.inc();
                tracing::error!(error = %e, "store unavailable");
                ExchangeError::Unavailable("store_unavailable")
            })?;
        // A missing outcome counts as a replay: fail closed.
        let fresh = |i: usize| guarded.claims.get(i) == Some(&ClaimOutcome::Fresh);
        let replayed = if has_actor && !fresh(claims.len() - 1) {
            Some("actor_token_replayed")
        } else if has_subject && !fresh(0) {
            Some("token_replayed")
        } else {
            None
        };
        Ok((guarded, replayed))
    }
}
