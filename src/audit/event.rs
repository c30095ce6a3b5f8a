//! The audit event: one per `/token` request, allow or deny, and one per credential-lifecycle
//! request (`/introspect`, `/revoke`, the admin API; `action` says which). The one exception: an
//! `allow` the file took whose stream append then failed is followed in the file by a second
//! event for the same `exchange_id` (`decision: error`), which is the exchange's outcome.
//!
//! Security invariant: no field ever holds a subject token, a credential or a key. The subject
//! token appears only as its SHA-256 and its `jti`; the credential only as its id.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
    /// The broker could not complete the exchange (store or key source unavailable).
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    Hit,
    Miss,
}

/// One exchange, as recorded. Optional fields are absent when the exchange stopped before they
/// were known (a malformed request has no issuer; a denial has no credential).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub exchange_id: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    pub decision: Option<Outcome>,
    /// `granted`, or the stable code of the denial or error.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_set_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_requested: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_granted: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
    /// The decision trace of a denial (candidate policies and the condition that failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<serde_json::Value>,
    /// `mode: audit` policies' would-be outcomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observations: Option<serde_json::Value>,
    /// Guardrail rules that applied to a grant (a denial's are in `trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<serde_json::Value>,
    /// Delegation (RFC 8693 `actor_token`): every actor of the chain, the one acting now
    /// first, as `{sub, iss}`; the actor token only as its SHA-256 and `jti`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_token_jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_token_sha256: Option<String>,
    /// Scopes the policy grants for the request that the actor may not carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_refused: Vec<String>,
    /// A credential-lifecycle request instead of an exchange: `introspect`, `revoke`,
    /// `admin_revoke`, `admin_unblock` or `admin_list` (absent for `/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The credential id of the caller of a lifecycle request (never the credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The revocation or kill switch a request created, lifted, or was refused by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<serde_json::Value>,
}
