//! The RFC 8693 token-exchange request, as a workload sends it to `POST /token`.
#![allow(dead_code)]

pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// `application/x-www-form-urlencoded` body from name/value pairs, in order.
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    form.finish()
}

/// The common exchange: a JWT subject token for `audience`, optionally narrowed to `scope`.
pub fn exchange_form(subject_token: &str, audience: &str, scope: Option<&str>) -> String {
    let mut pairs = vec![
        ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
        ("subject_token", subject_token),
        ("subject_token_type", TOKEN_TYPE_JWT),
        ("audience", audience),
    ];
    if let Some(scope) = scope {
        pairs.push(("scope", scope));
    }
    encode_form(&pairs)
}
