//! [`VerifyError`]: why a subject token was refused, with a stable reason code per variant.
//!
//! Messages never hold the token, a signature or key material; `http::error` maps these to
//! responses (a generic description for denials, 503 for [`VerifyError::is_unavailable`]).

use crate::domain::{IssuerName, SpiffeIdError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token is larger than {limit} bytes")]
    TokenTooLarge { limit: usize },
    #[error("token is not a compact JWS with canonical base64url JSON parts")]
    MalformedToken,
    #[error("token header or payload repeats a key")]
    DuplicateClaim,
    #[error("token issuer is not configured")]
    UnknownIssuer,
    #[error("token algorithm is not allowed for this issuer")]
    AlgorithmNotAllowed,
    #[error("token header `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    #[error("token has no kid and the issuer has several keys")]
    MissingKid,
    #[error("no key of issuer {issuer} has the token's kid")]
    UnknownKey { issuer: IssuerName },
    #[error("the selected key cannot verify the token's algorithm")]
    KeyAlgorithmMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has no exp")]
    MissingExp,
    #[error("token has expired")]
    TokenExpired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("token is older than the issuer's max token age")]
    TokenTooOld,
    #[error("token has no iat and the issuer limits token age")]
    MissingIat,
    #[error("token has no sub")]
    MissingSubject,
    #[error("token has no aud")]
    MissingAudience,
    #[error("token has no jti and the issuer requires one")]
    MissingJti,
    #[error("claim `{0}` has the wrong type")]
    InvalidClaimType(&'static str),
    /// A Kubernetes secret-based token (`iss: kubernetes/serviceaccount`, no `exp`).
    #[error("legacy Kubernetes service-account token (no exp, not bound to a pod): use a projected service-account token")]
    LegacyServiceAccountToken,
    #[error("keys of issuer {issuer} are unavailable")]
    KeysUnavailable { issuer: IssuerName },
    #[error("token sub is not a valid SPIFFE ID: {0}")]
    InvalidSpiffeId(SpiffeIdError),
    #[error("token sub names another trust domain than its issuer's")]
    WrongTrustDomain,
    #[error("JWT-SVID header `typ` is neither JWT nor JOSE")]
    InvalidSvidType,
}

impl VerifyError {
    /// Stable snake_case reason code for audit events and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenTooLarge { .. } => "token_too_large",
            Self::MalformedToken => "malformed_token",
            Self::DuplicateClaim => "duplicate_claim",
            Self::UnknownIssuer => "unknown_issuer",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::ForbiddenHeader(_) => "forbidden_header",
            Self::MissingKid => "missing_kid",
            Self::UnknownKey { .. } => "unknown_key",
            Self::KeyAlgorithmMismatch => "key_algorithm_mismatch",
            Self::BadSignature => "bad_signature",
            Self::MissingExp => "missing_exp",
            Self::TokenExpired => "token_expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::TokenTooOld => "token_too_old",
            Self::MissingIat => "missing_iat",
            Self::MissingSubject => "missing_subject",
            Self::MissingAudience => "missing_audience",
            Self::MissingJti => "missing_jti",
            Self::InvalidClaimType(_) => "invalid_claim_type",
            Self::KeysUnavailable { .. } => "keys_unavailable",
            Self::LegacyServiceAccountToken => "legacy_service_account_token",
            Self::InvalidSpiffeId(_) => "invalid_spiffe_id",
            Self::WrongTrustDomain => "wrong_trust_domain",
            Self::InvalidSvidType => "invalid_svid_type",
        }
    }

    /// True only when the issuer's keys could not be obtained at all: the broker cannot judge
    /// the token and answers 503, not a denial.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable { .. })
    }
}
