//! The only place errors become HTTP responses (RFC 6749 §5.2, RFC 8693 §2.2.2).
//!
//! Every error body is `{"error": CODE, "error_description": TEXT}` with `Cache-Control:
//! no-store`. A refused token gets one generic description whatever the reason, so a caller
//! cannot probe which check failed; the audit event holds the real reason and trace.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use serde_json::json;

use crate::exchange::{ExchangeError, RequestError};
use crate::lifecycle::LifecycleError;

/// Said for every refused subject token and every policy denial.
pub const REFUSED_DESCRIPTION: &str = "the subject token was not accepted for this request";

pub fn exchange_error(e: &ExchangeError) -> HttpResponse {
    let (status, code, description): (StatusCode, &str, String) = match e {
        // RFC 6749 §5.2: the request is missing or repeats a parameter, or is otherwise malformed.
        ExchangeError::Request(RequestError::Invalid(msg)) => {
            (StatusCode::BAD_REQUEST, "invalid_request", msg.clone())
        }
        // RFC 6749 §5.2.
        ExchangeError::Request(RequestError::UnsupportedGrantType) => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            RequestError::UnsupportedGrantType.to_string(),
        ),
        // RFC 6749 §5.2: malformed scope.
        ExchangeError::Request(RequestError::InvalidScope) => (
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            RequestError::InvalidScope.to_string(),
        ),
        // RFC 8693 §2.2.2.
        ExchangeError::Request(RequestError::InvalidTarget(msg)) => {
            (StatusCode::BAD_REQUEST, "invalid_target", msg.clone())
        }
        // RFC 8693 §2.2.2: an invalid subject token is `invalid_request`.
        ExchangeError::Refused(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            REFUSED_DESCRIPTION.into(),
        ),
        // RFC 8693 §2.2.2: the requested audience is not one this broker issues for.
        ExchangeError::InvalidTarget => (
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "no policy grants the requested audience".into(),
        ),
        // RFC 6749 §5.2: the requested scope exceeds what may be granted.
        ExchangeError::InvalidScope(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the requested scope exceeds what may be granted".into(),
        ),
        // RFC 6749 §4.1.2.1 defines `temporarily_unavailable`; 503 tells clients to retry.
        ExchangeError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the broker cannot issue credentials right now; retry shortly".into(),
        ),
        // RFC 6749 §4.1.2.1: `temporarily_unavailable` is "temporary overloading"; RFC 6585 §4
        // gives 429 with `Retry-After` for a caller over its rate limit.
        ExchangeError::RateLimited(retry) => {
            let mut response = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "too many exchanges for this subject and policy; retry after the Retry-After delay",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_value(*retry));
            return response;
        }
        // RFC 6749 §4.1.2.1 `server_error`.
        ExchangeError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the broker failed to issue a credential".into(),
        ),
    };
    let mut response = oauth_error(status, code, &description);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// Lifecycle endpoints (RFC 7662, RFC 7009, the admin API).
pub fn lifecycle_error(e: &LifecycleError) -> HttpResponse {
    let (status, code, description): (StatusCode, &str, String) = match e {
        // RFC 6749 §5.2 (RFC 7662 §2.1 and RFC 7009 §2.1 use its error responses).
        LifecycleError::InvalidRequest(msg) => {
            (StatusCode::BAD_REQUEST, "invalid_request", msg.clone())
        }
        // RFC 6750 §3.1 `invalid_token` (RFC 7662 §2.3: an unauthorised caller gets 401).
        LifecycleError::Unauthorized(_) => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a live Ferry credential is required (Authorization: Bearer)".into(),
        ),
        // RFC 6750 §3.1 `insufficient_scope`.
        LifecycleError::Forbidden(..) => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the caller's credential does not grant this (scope or audience)".into(),
        ),
        LifecycleError::NotFound => (
            StatusCode::NOT_FOUND,
            "invalid_request",
            "no active kill switch of that kind and value".into(),
        ),
        // RFC 6749 §4.1.2.1.
        LifecycleError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the broker cannot answer right now; retry shortly".into(),
        ),
        LifecycleError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the broker failed to answer".into(),
        ),
    };
    let mut response = oauth_error(status, code, &description);
    let headers = response.headers_mut();
    match status {
        StatusCode::UNAUTHORIZED => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        StatusCode::FORBIDDEN => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
            );
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// Whole seconds, rounded up and at least 1: a client that waits this long is not refused again
/// by the same budget.
fn retry_after_value(retry: std::time::Duration) -> header::HeaderValue {
    let secs = retry.as_millis().div_ceil(1000).max(1);
    header::HeaderValue::from_str(&secs.to_string())
        .unwrap_or(header::HeaderValue::from_static("1"))
}

/// An OAuth error body with the no-store headers RFC 6749 §5.1 requires.
pub fn oauth_error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({ "error": code, "error_description": description }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_share_one_generic_description() {
        for code in [
            "bad_signature",
            "token_expired",
            "claim_mismatch",
            "token_replayed",
        ] {
            let r = exchange_error(&ExchangeError::Refused(code));
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        }
        let body =
            actix_web::body::to_bytes(exchange_error(&ExchangeError::Refused("x")).into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "invalid_request");
        assert_eq!(json["error_description"], REFUSED_DESCRIPTION);
    }

    #[test]
    fn unavailable_is_503_with_retry_after_and_no_store() {
        let r = exchange_error(&ExchangeError::Unavailable("store_unavailable"));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(r.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
    }
}
