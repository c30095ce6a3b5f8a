//! Discovery metadata and the JWKS for the credentials Ferry mints.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::exchange::form::GRANT_TYPE_TOKEN_EXCHANGE;

pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let base = &state.public_url;
    let alg = state.service.minter.jwks()["keys"][0]["alg"].clone();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(json!({
            "issuer": base,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "token_endpoint": format!("{base}/token"),
            "grant_types_supported": [GRANT_TYPE_TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [alg],
        }))
}

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.service.minter.jwks())
}
