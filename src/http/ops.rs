//! Liveness, readiness and metrics.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when the policy set is loaded, the store answers and the audit sink can record. Issuer key state is reported
/// per issuer but does not make the broker unready: one unreachable issuer must not take every
/// replica out of the load balancer while other issuers' exchanges still work.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let active = state.service.active.load();
    let store = state.service.store.ping().await;
    let issuers: Vec<_> = active
        .verifier
        .key_status()
        .into_iter()
        .map(|k| {
            json!({
                "issuer": k.issuer.as_str(),
                "ready": k.ready,
                "keys": k.keys,
                "last_refresh_unix": k.last_refresh_unix,
                "last_error": k.last_error,
                "failures": k.failures.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "spiffe_sequence": k.sequence,
            })
        })
        .collect();
    let audit = state.service.audit.health();
    let ready = store.is_ok() && audit.is_ok();
    let body = json!({
        "ready": ready,
        "policies": {
            "loaded": active.policies.len(),
            "version": active.policies.version(),
            "reload": state.reloader.status(),
        },
        "store": match &store { Ok(()) => "ok".to_string(), Err(e) => e.to_string() },
        "audit": match &audit { Ok(()) => "ok".to_string(), Err(e) => e.clone() },
        "issuers": issuers,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let active = state.service.active.load();
    state
        .service
        .metrics
        .policies_loaded
        .set(active.policies.len() as i64);
    let lost = &state.service.metrics.store_state_lost;
    lost.inc_by(
        state
            .service
            .store
            .state_losses()
            .saturating_sub(lost.get()),
    );
    state
        .service
        .metrics
        .store_may_evict
        .set(i64::from(state.service.store.may_evict()));
    let text = state.service.metrics.render(&active.verifier.key_status());
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .body(text)
}
