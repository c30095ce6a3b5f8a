//! HTTP routes. Handlers parse, call the service, and map the result; `error` is the only place
//! errors become responses.

mod admin;
pub mod error;
mod introspect;
mod ops;
mod token;
mod wellknown;

use std::sync::Arc;

use actix_web::web;

use crate::exchange::ExchangeService;

/// What every handler can reach.
pub struct AppState {
    pub service: Arc<ExchangeService>,
    /// Introspection, revocation and the admin API.
    pub lifecycle: Arc<crate::lifecycle::LifecycleService>,
    /// Policy hot reload: its status is part of `/readyz`.
    pub reloader: Arc<crate::reload::PolicyReloader>,
    pub public_url: String,
    pub max_body_bytes: usize,
}

/// Request ids come from a valid `X-Request-Id` header or are generated, and are echoed back.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/token", web::post().to(token::token))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(wellknown::openid_configuration),
        )
        .route("/.well-known/jwks.json", web::get().to(wellknown::jwks))
        .route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .route("/introspect", web::post().to(introspect::introspect))
        .route("/revoke", web::post().to(introspect::revoke))
        .route("/admin/revocations", web::post().to(admin::revoke))
        .route("/admin/revocations", web::get().to(admin::list))
        .route("/admin/unblock", web::post().to(admin::unblock));
}

/// A caller-supplied request id is kept only if it is short and plain, so it cannot inject
/// anything into logs or headers.
pub fn accept_request_id(value: Option<&str>) -> String {
    match value {
        Some(v)
            if (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            v.to_string()
        }
        _ => uuid::Uuid::now_v7().to_string(),
    }
}
