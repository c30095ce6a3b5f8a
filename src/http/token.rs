//! `POST /token`: RFC 8693 token exchange.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use super::{error, AppState, RequestId};
use crate::exchange::form::{self, ExchangeRequest, RequestError};
use crate::exchange::{RequestMeta, TokenResponse};

pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let meta = RequestMeta {
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
    };
    let parsed = parse(&req, payload, state.max_body_bytes).await;
    match state.service.exchange(parsed, &meta).await {
        Ok(response) => success(response),
        Err(e) => error::exchange_error(&e),
    }
}

async fn parse(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<ExchangeRequest, RequestError> {
    let body = read_form(req, payload, limit).await?;
    form::parse(&body)
}

/// The body of a form POST (RFC 6749 §3.2: `application/x-www-form-urlencoded` only), at most
/// `limit` bytes.
pub(super) async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, RequestError> {
    if req.content_type() != "application/x-www-form-urlencoded" {
        return Err(RequestError::Invalid(
            "content type must be application/x-www-form-urlencoded".into(),
        ));
    }
    read_limited(payload, limit).await
}

/// Reads the body, refusing it as soon as it passes `limit` (never buffering more).
pub(super) async fn read_limited(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, RequestError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| RequestError::Invalid("could not read the request body".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(RequestError::Invalid(format!(
                "request body exceeds {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn success(r: TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": r.access_token.expose(),
            "issued_token_type": r.issued_token_type.uri(),
            "token_type": "Bearer",
            "expires_in": r.expires_in,
            "scope": r.scope,
        }))
}
