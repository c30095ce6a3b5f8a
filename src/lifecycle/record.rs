//! One audit event per lifecycle request, written like an exchange's: the JSONL file first,
//! then (stores that keep one) the shared audit stream. A request whose event cannot be written
//! answers 503 (a revocation already applied stays applied: failing safe means revoked).

use std::time::SystemTime;

use crate::audit::{append_serialized, AuditEvent, Outcome};
use crate::exchange::RequestMeta;

use super::caller::Caller;
use super::service::{LifecycleError, LifecycleService};

/// A new lifecycle event for `action` (its id is in `exchange_id`, as for every event).
pub(super) fn event(action: &str, meta: &RequestMeta) -> AuditEvent {
    AuditEvent {
        time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        exchange_id: uuid::Uuid::now_v7().to_string(),
        request_id: meta.request_id.clone(),
        client_addr: meta.client_addr.clone(),
        action: Some(action.to_string()),
        ..AuditEvent::default()
    }
}

pub(super) fn set_caller(event: &mut AuditEvent, caller: &Caller) {
    event.caller = Some(caller.credential_id.clone());
}

impl LifecycleService {
    /// Records the outcome of `result` in `event` and appends it; the result stands only if the
    /// event was written.
    pub(super) async fn finish<T>(
        &self,
        mut event: AuditEvent,
        result: Result<T, LifecycleError>,
    ) -> Result<T, LifecycleError> {
        let (decision, reason) = match &result {
            Ok(_) => (Outcome::Allow, event.reason.clone()),
            Err(e @ (LifecycleError::Unavailable(_) | LifecycleError::Internal(_))) => {
                (Outcome::Error, e.code().to_string())
            }
            Err(e) => (Outcome::Deny, e.code().to_string()),
        };
        if let Err(LifecycleError::Forbidden(_, caller)) = &result {
            set_caller(&mut event, caller);
        }
        event.decision = Some(decision);
        event.reason = if reason.is_empty() {
            "ok".into()
        } else {
            reason
        };
        let json = match append_serialized(self.audit.as_ref(), &event).await {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(event_id = %event.exchange_id, error = %e, "lifecycle audit record not written");
                return Err(LifecycleError::Unavailable("audit_unavailable"));
            }
        };
        if self.store.keeps_audit_stream() {
            if let Err(e) = self.store.commit(&json, None).await {
                tracing::error!(event_id = %event.exchange_id, error = %e, "lifecycle audit stream append failed");
                return Err(LifecycleError::Unavailable("audit_unavailable"));
            }
        }
        let decision_label = match decision {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Error => "error",
        };
        self.metrics
            .lifecycle
            .with_label_values(&[
                event.action.as_deref().unwrap_or("-"),
                decision_label,
                &event.reason,
            ])
            .inc();
        tracing::info!(
            event_id = %event.exchange_id,
            action = event.action.as_deref().unwrap_or("-"),
            decision = ?decision,
            reason = %event.reason,
            "lifecycle"
        );
        result
    }
}
