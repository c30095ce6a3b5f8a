//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009): form bodies, like `/token`.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::token::read_form;
use super::{error, AppState, RequestId};
use crate::exchange::RequestMeta;
use crate::lifecycle::request::{parse_token_form, TokenForm};
use crate::lifecycle::LifecycleError;

pub(super) fn meta(req: &HttpRequest) -> RequestMeta {
    RequestMeta {
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
    }
}

pub(super) fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn form(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<TokenForm, LifecycleError> {
    let body = read_form(req, payload, limit)
        .await
        .map_err(|e| LifecycleError::InvalidRequest(e.to_string()))?;
    parse_token_form(&body)
}

pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let parsed = form(&req, payload, state.max_body_bytes).await;
    let auth = authorization(&req);
    match state
        .lifecycle
        .introspect(auth.as_deref(), parsed, &meta(&req))
        .await
    {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(body),
        Err(e) => error::lifecycle_error(&e),
    }
}

pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let parsed = form(&req, payload, state.max_body_bytes).await;
    match state.lifecycle.revoke(parsed, &meta(&req)).await {
        // RFC 7009 §2.2: 200 with an empty body, whether or not the token was valid.
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => error::lifecycle_error(&e),
    }
}
