//! The admin API (`ferry admin …` calls it): JSON bodies, authorised by a Ferry credential with
//! scope `ferry:admin`.
//!
//! | method, path | body | answer |
//! |---|---|---|
//! | `POST /admin/revocations` | `{"kind": "credential"\|"exchange"\|"subject"\|"policy", "value": …, "for": "1h"?, "reason": …?}` | 201, the revocation |
//! | `POST /admin/unblock` | `{"kind": "subject"\|"policy", "value": …}` | 200, the lifted kill switch |
//! | `GET /admin/revocations` | | 200, `{"revocations": [...]}` |

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::introspect::{authorization, meta};
use super::token::read_limited;
use super::{error, AppState};
use crate::lifecycle::{AdminRequest, LifecycleError};
use crate::store::RevocationKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnblockRequest {
    kind: RevocationKind,
    value: String,
}

async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, LifecycleError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(LifecycleError::InvalidRequest(
            "content type must be application/json".into(),
        ));
    }
    let body = read_limited(payload, limit)
        .await
        .map_err(|e| LifecycleError::InvalidRequest(e.to_string()))?;
    serde_json::from_slice(&body)
        .map_err(|e| LifecycleError::InvalidRequest(format!("invalid JSON body: {e}")))
}

pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let body = json_body::<AdminRequest>(&req, payload, state.max_body_bytes).await;
    let auth = authorization(&req);
    match state
        .lifecycle
        .admin_revoke(auth.as_deref(), body, &meta(&req))
        .await
    {
        Ok(r) => answer(StatusCode::CREATED, json!(r)),
        Err(e) => error::lifecycle_error(&e),
    }
}

pub async fn unblock(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let body = json_body::<UnblockRequest>(&req, payload, state.max_body_bytes)
        .await
        .map(|b| (b.kind, b.value));
    let auth = authorization(&req);
    match state
        .lifecycle
        .admin_unblock(auth.as_deref(), body, &meta(&req))
        .await
    {
        Ok(r) => answer(StatusCode::OK, json!(r)),
        Err(e) => error::lifecycle_error(&e),
    }
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let auth = authorization(&req);
    match state
        .lifecycle
        .admin_list(auth.as_deref(), &meta(&req))
        .await
    {
        Ok(list) => answer(StatusCode::OK, json!({ "revocations": list })),
        Err(e) => error::lifecycle_error(&e),
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}
