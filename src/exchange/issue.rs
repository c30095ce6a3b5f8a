//! The issuing half of an exchange, after the decision: the first store round trip (replay
//! claims, rate limit, revocations, cache), the refusals it answers, and the credential —
//! from the cache or freshly minted (opaque or JWT).

use std::time::Duration;

use super::form::{ExchangeRequest, TokenType};
use super::service::{ExchangeError, ExchangeService, TokenResponse};
use super::{Grant, Requested};
use crate::audit::{AuditEvent, CacheUse, Outcome};
use crate::credential::MintRequest;
use crate::domain::{sha256_hex, UnixSeconds};
use crate::lifecycle::guard as lifecycle;
use crate::policy::CredentialKind;
use crate::store::revocation::{act_chain, blocking, revoking, MAX_LINEAGE};
use crate::store::{
    slot_of, CacheKey, CachedCredential, CredentialFacts, HitRecord, JtiClaim, OpaqueRecord,
};
use crate::verify::VerifiedToken;

/// What [`ExchangeService::issue`] works from: the request, its verified tokens and the grant
/// decided for them.
pub(super) struct Granted<'a> {
    pub(super) request: &'a ExchangeRequest,
    pub(super) requested: &'a Requested,
    pub(super) token: &'a VerifiedToken,
    pub(super) grant: &'a Grant,
    pub(super) policy_set_version: &'a str,
    /// The Ferry credentials presented (as subject or actor token), each with the refusal code
    /// if a revocation or kill switch covers it.
    pub(super) presented: Vec<(CredentialFacts, &'static str)>,
}

/// Work left after the audit record is safely written.
pub(super) struct Issued {
    pub(super) response: TokenResponse,
    pub(super) cache_put: Option<(CacheKey, CachedCredential)>,
    /// An opaque credential's record: stored with the audit stream entry, before release.
    pub(super) opaque: Option<OpaqueRecord>,
    /// The store already appended this hit's event to its audit stream ([`HitRecord`]).
    pub(super) stream_recorded: bool,
}

impl ExchangeService {
    /// Replay check, revocations, cache, mint.
    pub(super) async fn issue(
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
        // Never cached: opaque credentials (the cache holds credentials in clear), delegated
        // ones (each names its own actor chain), and ones exchanged from a Ferry credential
        // (a cache entry is checked by its own ids only, not by those it derives from).
        let cache_key = (self.settings.cache_credentials
            && grant.credential == CredentialKind::Jwt
            && grant.delegation.is_none()
            && granted.presented.is_empty())
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
        // The presented credentials' ids and those they derive from: what revokes them, and the
        // lineage of the credential minted from them (`ferry.derived_from`).
        let mut revocation_ids: Vec<String> = granted
            .presented
            .iter()
            .flat_map(|(facts, _)| facts.revocation_ids())
            .collect();
        revocation_ids.sort();
        revocation_ids.dedup();
        // And the policies that granted them: what a policy kill switch revokes them by.
        let mut derived_policies: Vec<String> = granted
            .presented
            .iter()
            .flat_map(|(facts, _)| {
                std::iter::once(&facts.policy)
                    .chain(&facts.derived_policies)
                    .cloned()
            })
            .collect();
        derived_policies.sort();
        derived_policies.dedup();
        if revocation_ids.len() > MAX_LINEAGE || derived_policies.len() > MAX_LINEAGE {
            return Err(ExchangeError::Refused("lineage_too_long"));
        }
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
        let subjects = exchange_subjects(token, actor);
        if let Some(switch) = blocking(&guarded.revocations, &subjects, policy, now) {
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
            expires_in: credential.expires_at.saturating_sub(now).max(0) as u64,
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
                derived_from: &revocation_ids,
                derived_policies: &derived_policies,
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
            revocation_epoch: guarded.revocation_epoch.clone(),
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
        replay_ttl(
            expires_at,
            self.settings.leeway + self.settings.replay_margin,
            now,
        )
    }
}

/// Everyone an exchange acts for or as, for the subject kill switches: the subject, every actor
/// of its `act` chain (a Ferry credential presented again), and the actor. (An actor token with
/// an `act` of its own was refused by the decision.)
fn exchange_subjects<'a>(
    token: &'a VerifiedToken,
    actor: Option<&'a VerifiedToken>,
) -> Vec<&'a str> {
    std::iter::once(token.subject.as_str())
        .chain(act_chain(token.claims.get("act")))
        .chain(actor.map(|a| a.subject.as_str()))
        .collect()
}

/// `exp + grace - now`, at least a second. Saturating: an issuer may sign any `exp`, and one
/// near `i64::MAX` must be remembered for as long as the store can, not wrap to a short TTL.
fn replay_ttl(expires_at: UnixSeconds, grace: Duration, now: UnixSeconds) -> Duration {
    let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let until = expires_at.saturating_add(grace);
    Duration::from_secs(until.saturating_sub(now).max(1).unsigned_abs())
}

/// The credential-cache key: everything that shapes the credential's content, never the token.
fn grant_key(grant: &Grant, subject: &str, policy_set_version: &str, slot: String) -> CacheKey {
    // A tuple serializes as the JSON array earlier builds hashed (they built it as a `Value`),
    // so keys stay the same across a rolling upgrade; `grant.claims` is not copied to get there.
    let material = (
        grant.policy.as_str(),
        policy_set_version,
        subject,
        grant.audience.as_str(),
        grant.scopes.to_scope_string(),
        &grant.claims,
    );
    let material = serde_json::to_vec(&material).expect("strings and JSON values serialize");
    CacheKey {
        slot,
        id: sha256_hex(&material),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ScopeSet;

    #[test]
    fn cache_keys_hash_the_same_bytes_as_earlier_builds() {
        let grant = Grant {
            policy: "deploy".parse().unwrap(),
            policy_file: "deploy.yaml".into(),
            audience: "https://deploy.example".parse().unwrap(),
            scopes: ScopeSet::parse("deploy:read deploy:write").unwrap(),
            ttl_seconds: 900,
            claims: serde_json::json!({"repository": "acme/app", "ref": "refs/heads/main"})
                .as_object()
                .cloned()
                .unwrap(),
            observations: Vec::new(),
            guardrails: Vec::new(),
            delegation: None,
            credential: Default::default(),
            rate_limit: None,
        };
        // How the key material was built before it was serialized without a copy: replicas of
        // both builds must agree on every cache key during a rolling upgrade.
        let earlier = serde_json::json!([
            grant.policy.as_str(),
            "v1",
            "repo:acme/app:ref:refs/heads/main",
            grant.audience.as_str(),
            grant.scopes.to_scope_string(),
            grant.claims,
        ]);
        let key = grant_key(
            &grant,
            "repo:acme/app:ref:refs/heads/main",
            "v1",
            "s".into(),
        );
        assert_eq!(key.id, sha256_hex(earlier.to_string().as_bytes()));
        assert_eq!(key.slot, "s");
    }
}
