//! Parsing the RFC 8693 form into a typed [`ExchangeRequest`].
//!
//! Rules (SECURITY.md "Requests"): form bodies only; a parameter given twice is refused (RFC 6749
//! §3.1); unknown grant types and token types are refused; scope strings must be RFC 6749 scope
//! tokens. Unrecognised parameters are ignored, as RFC 6749 §3.1 requires, except the ones whose
//! meaning Ferry does not implement (`resource`), which is refused rather than silently dropped.
//! `actor_token` (RFC 8693 §2.1, delegation) comes with its `actor_token_type`, or not at all.

use std::collections::HashMap;
use std::time::Duration;

use super::Requested;
use crate::domain::{Audience, PolicyName, ScopeSet, Secret};

pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Token type identifiers (RFC 8693 §3) that Ferry accepts or issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Jwt,
    IdToken,
    AccessToken,
}

impl TokenType {
    pub fn uri(self) -> &'static str {
        match self {
            Self::Jwt => "urn:ietf:params:oauth:token-type:jwt",
            Self::IdToken => "urn:ietf:params:oauth:token-type:id_token",
            Self::AccessToken => "urn:ietf:params:oauth:token-type:access_token",
        }
    }

    fn from_uri(s: &str) -> Option<Self> {
        [Self::Jwt, Self::IdToken, Self::AccessToken]
            .into_iter()
            .find(|t| t.uri() == s)
    }
}

#[derive(Debug, Clone)]
pub struct ExchangeRequest {
    pub subject_token: Secret,
    pub subject_token_type: TokenType,
    /// What the response's `issued_token_type` says: `access_token` unless `jwt` was requested.
    pub issued_token_type: TokenType,
    pub requested: Requested,
    /// RFC 8693 `actor_token`: who acts for the subject; verified like the subject token.
    pub actor_token: Option<Secret>,
}

/// A request that cannot be processed. Each variant maps to one RFC error code in `http::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// RFC 6749 §5.2 `invalid_request`; the text says what is wrong with the request itself.
    #[error("{0}")]
    Invalid(String),
    /// RFC 6749 §5.2 `unsupported_grant_type`.
    #[error("grant_type must be {GRANT_TYPE_TOKEN_EXCHANGE}")]
    UnsupportedGrantType,
    /// RFC 6749 §5.2 `invalid_scope`: the scope string is malformed.
    #[error("scope must be RFC 6749 scope tokens separated by single spaces")]
    InvalidScope,
    /// RFC 8693 §2.2.2 `invalid_target`.
    #[error("{0}")]
    InvalidTarget(String),
}

impl RequestError {
    /// The stable reason code recorded in the audit event.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "malformed_request",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "malformed_scope",
            Self::InvalidTarget(_) => "unsupported_target",
        }
    }
}

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

/// Parses an `application/x-www-form-urlencoded` body.
pub fn parse(body: &[u8]) -> Result<ExchangeRequest, RequestError> {
    let params = collect_unique(body)?;
    let get = |k: &str| params.get(k).map(String::as_str);

    match get("grant_type") {
        None => return Err(invalid("missing grant_type")),
        Some(GRANT_TYPE_TOKEN_EXCHANGE) => {}
        Some(_) => return Err(RequestError::UnsupportedGrantType),
    }
    let actor_token = actor_token(&get)?;
    if get("resource").is_some() {
        return Err(RequestError::InvalidTarget(
            "resource is not supported; use audience".into(),
        ));
    }
    let subject_token = match get("subject_token") {
        Some(t) if !t.is_empty() => Secret::new(t),
        _ => return Err(invalid("missing subject_token")),
    };
    let subject_token_type = match get("subject_token_type").map(TokenType::from_uri) {
        None => return Err(invalid("missing subject_token_type")),
        Some(Some(t @ (TokenType::Jwt | TokenType::IdToken))) => t,
        Some(_) => {
            return Err(invalid(
                "subject_token_type must be the jwt or id_token type",
            ))
        }
    };
    let issued_token_type = match get("requested_token_type").map(TokenType::from_uri) {
        None | Some(Some(TokenType::AccessToken)) => TokenType::AccessToken,
        Some(Some(TokenType::Jwt)) => TokenType::Jwt,
        Some(_) => {
            return Err(invalid(
                "requested_token_type must be the access_token or jwt type",
            ))
        }
    };
    if let Some(options) = get("options") {
        // Google's STS clients may send `options` (JSON); Ferry has no use for it, but it must
        // at least be what it claims to be.
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(options)
            .map_err(|_| invalid("options must be a JSON object"))?;
    }
    Ok(ExchangeRequest {
        subject_token,
        subject_token_type,
        issued_token_type,
        requested: parse_requested(&get)?,
        actor_token,
    })
}

/// `actor_token` and `actor_token_type` come together (RFC 8693 §2.1); the type is a JWT type.
fn actor_token<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<Secret>, RequestError> {
    match (
        get("actor_token"),
        get("actor_token_type").map(TokenType::from_uri),
    ) {
        (None, None) => Ok(None),
        (Some(t), Some(Some(TokenType::Jwt | TokenType::IdToken))) if !t.is_empty() => {
            Ok(Some(Secret::new(t)))
        }
        (Some(""), _) => Err(invalid("actor_token is empty")),
        (Some(_), None) => Err(invalid("actor_token needs actor_token_type")),
        (None, Some(_)) => Err(invalid("actor_token_type without actor_token")),
        (Some(_), Some(_)) => Err(invalid("actor_token_type must be the jwt or id_token type")),
    }
}

fn parse_requested<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Requested, RequestError> {
    let audience = match get("audience") {
        None | Some("") => None,
        Some(a) => Some(a.parse::<Audience>().map_err(|e| invalid(e.to_string()))?),
    };
    let scopes =
        ScopeSet::parse(get("scope").unwrap_or("")).map_err(|_| RequestError::InvalidScope)?;
    let policy = match get("policy") {
        None => None,
        Some(p) => Some(
            p.parse::<PolicyName>()
                .map_err(|e| invalid(e.to_string()))?,
        ),
    };
    let ttl = match get("ttl_seconds") {
        None => None,
        Some(s) => match s.parse::<u64>() {
            Ok(n @ 1..=86_400) => Some(Duration::from_secs(n)),
            _ => {
                return Err(invalid(
                    "ttl_seconds must be a whole number from 1 to 86400",
                ))
            }
        },
    };
    Ok(Requested {
        audience,
        scopes,
        ttl,
        policy,
        actor: None,
    })
}

/// More parameters than any real client sends; bounds the duplicate check below.
const MAX_PARAMS: usize = 32;

/// All parameters, refusing any that appears twice. Values are percent-decoded only when they
/// contain `%` or `+` (a JWT never does, so the common case copies the token once), and must be
/// UTF-8: an invalid sequence is refused rather than replaced.
fn collect_unique(body: &[u8]) -> Result<HashMap<String, String>, RequestError> {
    let mut params = HashMap::new();
    for pair in split_on(b'&', body).filter(|p| !p.is_empty()) {
        if params.len() == MAX_PARAMS {
            return Err(invalid(format!("more than {MAX_PARAMS} parameters")));
        }
        let (key, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let key = decode_component(key)?;
        if params.contains_key(&key) {
            return Err(invalid(format!(
                "parameter `{}` is repeated",
                truncate(&key)
            )));
        }
        let value = decode_component(value)?;
        params.insert(key, value);
    }
    Ok(params)
}

/// The pieces of `bytes` between occurrences of `separator`, as `<[u8]>::split` gives them, found
/// with `memchr`: the body is mostly one token of a kilobyte or more, which a byte-at-a-time
/// scan walks at a fraction of the speed.
fn split_on(separator: u8, bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(separator, r) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `application/x-www-form-urlencoded` decoding of one name or value.
fn decode_component(raw: &[u8]) -> Result<String, RequestError> {
    let not_utf8 = |_| invalid("form parameters must be UTF-8");
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        return std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(not_utf8);
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(decoded).map_err(|_| invalid("form parameters must be UTF-8"))
}

/// Parameter names are echoed in errors; keep them short (a name is never a secret value).
fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
        &subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt";

    fn with(extra: &str) -> Result<ExchangeRequest, RequestError> {
        parse(format!("{BASE}{extra}").as_bytes())
    }

    #[test]
    fn minimal_rfc8693_request_parses() {
        let r = with("").unwrap();
        assert_eq!(r.subject_token.expose(), "a.b.c");
        assert_eq!(r.issued_token_type, TokenType::AccessToken);
        assert_eq!(r.requested, Requested::default());
    }

    #[test]
    fn optional_fields_are_typed() {
        let r = with(
            "&audience=https%3A%2F%2Fdeploy&scope=b+a&ttl_seconds=60&policy=deploy-api\
            &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt",
        )
        .unwrap();
        assert_eq!(r.requested.audience.unwrap().as_str(), "https://deploy");
        assert_eq!(r.requested.scopes.to_scope_string(), "a b");
        assert_eq!(r.requested.ttl, Some(Duration::from_secs(60)));
        assert_eq!(r.requested.policy.unwrap().as_str(), "deploy-api");
        assert_eq!(r.issued_token_type, TokenType::Jwt);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(matches!(
            with("&scope=a&scope=b"),
            Err(RequestError::Invalid(_))
        ));
        assert!(matches!(
            with("&subject_token=x"),
            Err(RequestError::Invalid(_))
        ));
    }

    #[test]
    fn each_bad_field_gets_its_error_code() {
        let cases: [(&str, &str); 8] = [
            ("grant_type=password", "unsupported_grant_type"),
            ("subject_token_type=x", "malformed_request"),
            ("", "malformed_request"),
            (
                "requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token",
                "malformed_request",
            ),
            ("scope=a%20%20b", "malformed_scope"),
            ("resource=https%3A%2F%2Fx", "unsupported_target"),
            ("ttl_seconds=0", "malformed_request"),
            ("options=not-json", "malformed_request"),
        ];
        for (field, code) in cases {
            let body = if field.is_empty() {
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange".to_string()
            } else if field.starts_with("grant_type") || field.starts_with("subject_token_type") {
                let key = field.split('=').next().unwrap();
                BASE.split('&')
                    .map(|p| {
                        if p.starts_with(&format!("{key}=")) {
                            field
                        } else {
                            p
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("&")
            } else {
                format!("{BASE}&{field}")
            };
            assert_eq!(parse(body.as_bytes()).unwrap_err().code(), code, "{field}");
        }
    }

    #[test]
    fn form_encoding_is_decoded_and_invalid_utf8_is_refused() {
        let r = with("&audience=https%3A%2F%2Fa.example%2Fx+y%2By").unwrap_err();
        assert_eq!(
            r.code(),
            "malformed_request",
            "a space is not allowed in an audience"
        );
        let r = with("&policy=deploy%2Dapi").unwrap();
        assert_eq!(r.requested.policy.unwrap().as_str(), "deploy-api");
        assert!(matches!(with("&scope=%FF"), Err(RequestError::Invalid(_))));
        assert!(matches!(with("&x%FF=1"), Err(RequestError::Invalid(_))));
        let many: String = (0..40).map(|i| format!("&p{i}=1")).collect();
        assert!(matches!(with(&many), Err(RequestError::Invalid(_))));
    }

    #[test]
    fn actor_token_comes_with_a_jwt_actor_token_type() {
        let jwt = "&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt";
        let r = with(&format!("&actor_token=d.e.f{jwt}")).unwrap();
        assert_eq!(r.actor_token.unwrap().expose(), "d.e.f");
        assert!(with("").unwrap().actor_token.is_none());
        for bad in [
            "&actor_token=d.e.f".to_string(),
            jwt.to_string(),
            format!("&actor_token={jwt}"),
            "&actor_token=d.e.f&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token".to_string(),
            format!("&actor_token=d.e.f&actor_token=g.h.i{jwt}"),
        ] {
            assert_eq!(with(&bad).unwrap_err().code(), "malformed_request", "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn split_on_cuts_where_slice_split_does(body in proptest::collection::vec(proptest::sample::select(b"a&=%+".to_vec()), 0..64)) {
            let ours: Vec<&[u8]> = split_on(b'&', &body).collect();
            let std: Vec<&[u8]> = body.split(|&b| b == b'&').collect();
            proptest::prop_assert_eq!(ours, std);
        }
    }

    #[test]
    fn google_sts_client_form_parses_unmodified() {
        let body = "audience=%2F%2Fiam.googleapis.com%2Fprojects%2F123%2Flocations%2Fglobal%2FworkloadIdentityPools%2Fp%2Fproviders%2Fx\
            &grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
            &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
            &scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform\
            &subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
            &options=%7B%22userProject%22%3A%22123%22%7D";
        let r = parse(body.as_bytes()).unwrap();
        assert_eq!(
            r.requested.scopes.to_scope_string(),
            "https://www.googleapis.com/auth/cloud-platform"
        );
    }
}
