//! [`LifecycleService`]: `/introspect` (RFC 7662), `/revoke` (RFC 7009) and the admin API's
//! revocations and kill switches. Each request records exactly one audit event (`record`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::caller::{authorise, Caller, SCOPE_ADMIN, SCOPE_INTROSPECT};
use super::inspect::{Inspected, Inspector};
use super::record::{event, set_caller};
use super::request::{credential_revocation, revocation_from, AdminRequest, TokenForm};
use crate::audit::{AuditEvent, AuditSink};
use crate::domain::{unix_now, UnixSeconds};
use crate::exchange::RequestMeta;
use crate::store::redis::MAX_COMMAND_TIMEOUT;
use crate::store::{Revocation, RevocationKind, Store};

/// Why a lifecycle request was not answered as asked. `http::error` maps each variant.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// RFC 6749 §5.2 `invalid_request`: a missing, repeated or malformed parameter.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// RFC 6750 §3.1 `invalid_token` (401): no caller credential, or not a live Ferry one.
    #[error("caller not authenticated ({0})")]
    Unauthorized(&'static str),
    /// RFC 6750 §3.1 `insufficient_scope` (403): a live credential without the scope or audience.
    #[error("caller not allowed ({0})")]
    Forbidden(&'static str, Caller),
    /// Nothing to unblock.
    #[error("no such kill switch")]
    NotFound,
    #[error("temporarily unavailable ({0})")]
    Unavailable(&'static str),
    #[error("internal error ({0})")]
    Internal(&'static str),
}

impl LifecycleError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::Unauthorized(code) | Self::Forbidden(code, _) => code,
            Self::NotFound => "not_found",
            Self::Unavailable(code) | Self::Internal(code) => code,
        }
    }
}

/// The longest a kill switch's write can take before it is visible: two Redis commands
/// (`put_revocation` reads the switches, then runs its script), each bounded by the command
/// timeout, which is at most [`MAX_COMMAND_TIMEOUT`].
const LONGEST_WRITE: Duration = Duration::from_secs(2 * MAX_COMMAND_TIMEOUT.as_secs());

pub struct LifecycleService {
    pub inspector: Inspector,
    pub store: Arc<dyn Store>,
    pub audit: Arc<dyn AuditSink>,
    /// Callers' credentials must be addressed to this audience (the broker's own).
    pub audience: String,
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// How long past its `exp` a credential is still accepted as a subject or actor token (the
    /// verifier's leeway, plus the replay margin as for a `jti`): a revocation by id is kept this
    /// much longer than the credentials it covers, so it never expires while they still pass.
    pub acceptance_grace: Duration,
    /// The clock skew tolerated between replicas (the verifier's leeway): a kill switch
    /// reaches that far past the moment it became visible ([`Revocation::reach_past_creation`]).
    pub clock_skew: Duration,
}

impl LifecycleService {
    /// RFC 7662: `{"active": false}` for anything but a live, unrevoked Ferry credential.
    pub async fn introspect(
        &self,
        authorization: Option<&str>,
        form: Result<TokenForm, LifecycleError>,
        meta: &RequestMeta,
    ) -> Result<Value, LifecycleError> {
        let mut ev = event("introspect", meta);
        let now = unix_now();
        let result = async {
            let caller = authorise(
                &self.inspector,
                &self.audience,
                authorization,
                SCOPE_INTROSPECT,
                now,
            )
            .await?;
            set_caller(&mut ev, &caller);
            let form = form?;
            let inspected = self.inspect(&form.token, now).await?;
            Ok(introspection(&mut ev, inspected))
        }
        .await;
        self.finish(ev, result).await
    }

    /// RFC 7009: the holder revokes its own credential; answers the same whether or not the
    /// token was a live Ferry credential (§2.2).
    pub async fn revoke(
        &self,
        form: Result<TokenForm, LifecycleError>,
        meta: &RequestMeta,
    ) -> Result<(), LifecycleError> {
        let mut ev = event("revoke", meta);
        let now = unix_now();
        let result = async {
            let form = form?;
            match self.inspect(&form.token, now).await? {
                Inspected::Active {
                    claims,
                    opaque_digest,
                } => {
                    describe(&mut ev, &claims);
                    let exp = claims["exp"].as_i64().unwrap_or(now);
                    let value = claims["jti"].as_str().unwrap_or_default().to_string();
                    let r = credential_revocation(value, now, self.kept_past(exp), None);
                    self.put(&mut ev, &r).await?;
                    if let Some(digest) = opaque_digest {
                        let _ = self.store.opaque_delete(&digest).await;
                    }
                    ev.reason = "revoked".into();
                }
                Inspected::Inactive(why) => ev.reason = format!("not_active_{why}"),
            }
            Ok(())
        }
        .await;
        self.finish(ev, result).await
    }

    pub async fn admin_revoke(
        &self,
        authorization: Option<&str>,
        request: Result<AdminRequest, LifecycleError>,
        meta: &RequestMeta,
    ) -> Result<Revocation, LifecycleError> {
        let mut ev = event("admin_revoke", meta);
        let now = unix_now();
        let result = async {
            let caller = self.admin(authorization, &mut ev, now).await?;
            // How far past `now` the switch must reach: a replica whose clock runs ahead by
            // the skew, reading the switches until they are visible. They are once `put`
            // returns: after the time spent so far, a second for `now`'s rounding down, and at
            // most the longest write.
            let spent = u64::try_from(unix_now() - now).unwrap_or(0) + 1;
            let reach = self.clock_skew + Duration::from_secs(spent) + LONGEST_WRITE;
            let mut r = revocation_from(request?, now, reach, &caller)?;
            r.keep_until = self.kept_past(r.keep_until);
            self.put(&mut ev, &r).await?;
            ev.reason = "revoked".into();
            Ok(r)
        }
        .await;
        self.finish(ev, result).await
    }

    /// Lifts a kill switch's block on new exchanges. The credentials it revoked stay revoked.
    pub async fn admin_unblock(
        &self,
        authorization: Option<&str>,
        target: Result<(RevocationKind, String), LifecycleError>,
        meta: &RequestMeta,
    ) -> Result<Revocation, LifecycleError> {
        let mut ev = event("admin_unblock", meta);
        let now = unix_now();
        let result = async {
            self.admin(authorization, &mut ev, now).await?;
            let (kind, value) = target?;
            // Only kill switches block, and they come without asking for any id.
            let list = self.revocations_for(&[]).await?;
            let found = list
                .into_iter()
                .find(|r| r.kind == kind && r.value == value);
            let mut r = found
                .filter(|r| r.blocks_at(now))
                .ok_or(LifecycleError::NotFound)?;
            r.unblock_at(now);
            self.put(&mut ev, &r).await?;
            ev.reason = "unblocked".into();
            Ok(r)
        }
        .await;
        self.finish(ev, result).await
    }

    pub async fn admin_list(
        &self,
        authorization: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Vec<Revocation>, LifecycleError> {
        let mut ev = event("admin_list", meta);
        let now = unix_now();
        let result = async {
            self.admin(authorization, &mut ev, now).await?;
            let mut list = self.revocations().await?;
            list.sort_by_key(|r| (r.created_at, r.id()));
            ev.reason = "listed".into();
            Ok(list)
        }
        .await;
        self.finish(ev, result).await
    }

    async fn admin(
        &self,
        authorization: Option<&str>,
        ev: &mut AuditEvent,
        now: UnixSeconds,
    ) -> Result<Caller, LifecycleError> {
        let caller = authorise(
            &self.inspector,
            &self.audience,
            authorization,
            SCOPE_ADMIN,
            now,
        )
        .await?;
        set_caller(ev, &caller);
        ev.subject = Some(caller.subject.clone());
        Ok(caller)
    }

    async fn inspect(&self, token: &str, now: UnixSeconds) -> Result<Inspected, LifecycleError> {
        self.inspector
            .inspect(token, now)
            .await
            .map_err(|_| LifecycleError::Unavailable("store_unavailable"))
    }

    async fn revocations(&self) -> Result<Vec<Revocation>, LifecycleError> {
        self.store
            .revocations()
            .await
            .map_err(|_| LifecycleError::Unavailable("store_unavailable"))
    }

    async fn revocations_for(&self, ids: &[String]) -> Result<Vec<Revocation>, LifecycleError> {
        self.store
            .revocations_for(ids)
            .await
            .map_err(|_| LifecycleError::Unavailable("store_unavailable"))
    }

    /// `keep_until` for a revocation that must outlive credentials expiring at `until`.
    fn kept_past(&self, until: UnixSeconds) -> UnixSeconds {
        let grace = i64::try_from(self.acceptance_grace.as_secs()).unwrap_or(i64::MAX);
        until.saturating_add(grace)
    }

    async fn put(&self, ev: &mut AuditEvent, r: &Revocation) -> Result<(), LifecycleError> {
        ev.revocation = serde_json::to_value(r).ok();
        self.store
            .put_revocation(r)
            .await
            .map_err(|_| LifecycleError::Unavailable("store_unavailable"))
    }
}

/// The RFC 7662 §2.2 answer; the audit event gets the credential's id, subject and policy.
fn introspection(ev: &mut AuditEvent, inspected: Inspected) -> Value {
    let claims = match inspected {
        Inspected::Active { claims, .. } => claims,
        Inspected::Inactive(why) => {
            ev.reason = format!("inactive_{why}");
            return json!({ "active": false });
        }
    };
    describe(ev, &claims);
    ev.reason = "active".into();
    let mut out = json!({ "active": true, "token_type": "Bearer" });
    for name in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "nbf",
        "jti",
        "act",
    ] {
        if let Some(v) = claims.get(name) {
            out[name] = v.clone();
        }
    }
    out
}

fn describe(ev: &mut AuditEvent, claims: &Value) {
    let text = |name: &str| claims[name].as_str().map(str::to_string);
    ev.credential_id = text("jti");
    ev.subject = text("sub");
    ev.policy = text("client_id");
    ev.credential_expires_at = claims["exp"].as_i64();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_act_claim_is_introspected_as_it_is_and_ferry_internals_are_not() {
        let claims = json!({
            "jti": "c1", "sub": "agent", "client_id": "p", "iat": 1, "exp": 2,
            "act": { "sub": "pipeline", "act": { "sub": "user" } },
            "ferry": { "exchange_id": "e1" }, "repository": "acme/api"
        });
        let mut ev = AuditEvent::default();
        let inspected = Inspected::Active {
            claims,
            opaque_digest: None,
        };
        let out = introspection(&mut ev, inspected);
        assert_eq!(out["act"]["act"]["sub"], "user");
        assert!(out.get("ferry").is_none() && out.get("repository").is_none());
        assert_eq!(ev.credential_id.as_deref(), Some("c1"));
        let mut ev = AuditEvent::default();
        assert_eq!(
            introspection(&mut ev, Inspected::Inactive("revoked")),
            json!({ "active": false })
        );
        assert_eq!(ev.reason, "inactive_revoked");
    }
}
