//! What `decide` returns: a grant, or a denial with the trace that explains it.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{Audience, PolicyName, ScopeSet};

/// Inputs to `decide` that come from the broker's configuration rather than the request.
#[derive(Debug, Clone)]
pub struct DecideContext {
    /// The audience a policy without `audience:` requires in the subject token.
    pub broker_audience: Audience,
}

#[derive(Debug, Clone)]
pub enum Decision {
    Allow(Grant),
    Deny(Denial),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub policy: PolicyName,
    /// The file the policy came from, relative to the policy directory.
    pub policy_file: String,
    pub audience: Audience,
    pub scopes: ScopeSet,
    /// Lifetime of the credential: the smallest of request, policy and token bounds; >= 1.
    pub ttl_seconds: u64,
    /// Claims copied into the credential (`grant.claims`: name -> value of the source claim).
    pub claims: Map<String, Value>,
    /// Policies in `mode: audit` that were evaluated on the way, with what they would have done.
    pub observations: Vec<Observation>,
    /// Guardrail rules that applied (capped the lifetime, or would have denied in audit mode).
    pub guardrails: Vec<GuardrailHit>,
    /// Set when an actor acts for the subject (RFC 8693 delegation).
    pub delegation: Option<super::delegation::Delegation>,
    /// `grant.credential`: what kind of credential to mint.
    pub credential: crate::policy::CredentialKind,
    /// `grant.rate_limit`, checked by the service in the store.
    pub rate_limit: Option<crate::policy::RateSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Denial {
    pub reason: DenyReason,
    /// The policy the denial is about, when there is exactly one (named, or the last candidate).
    pub policy: Option<PolicyName>,
    /// One entry per candidate policy that was evaluated, in order.
    pub trace: Vec<PolicyTrace>,
    pub observations: Vec<Observation>,
    /// Guardrail rules that applied; a guardrail denial is the last entry.
    pub guardrails: Vec<GuardrailHit>,
}

/// Why a request was denied. Codes are stable: policy tests (`expect: { deny: CODE }`), audit
/// events and metrics use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// No policy is written for the token's issuer.
    NoPolicy,
    /// The request named a policy that does not exist or is for another issuer.
    UnknownPolicy,
    /// No policy for this issuer grants the requested audience (`invalid_target`).
    AudienceNotServed,
    /// Policies grant the audience, but none covers the requested scopes (`invalid_scope`).
    ScopeNotAllowed,
    /// Candidate policies exist, but the token's claims satisfy none of them.
    ClaimMismatch,
    /// The only policies whose conditions held are in `mode: audit`.
    AuditOnly,
    /// The computed lifetime is under one second (e.g. bound to an almost-expired token).
    LifetimeExhausted,
    /// `guardrails.yaml` `issuers_allowed` does not list the token's issuer.
    IssuerNotAllowed,
    /// A `guardrails.yaml` `deny` rule applied; it wins over every policy.
    GuardrailDenied,
    /// The scopes asked for (or, when none were, every scope) exceed `scopes_allowed`.
    ScopeAboveCeiling,
    /// The subject token carries an `act` chain but the request has no `actor_token`.
    ActorRequired,
    /// An `actor_token` was sent, but the policy has no `delegation:` block.
    DelegationNotAllowed,
    /// No actor rule of the policy matches the actor token (or it is not for the broker).
    ActorNotAllowed,
    /// The subject token's `may_act` names someone else (RFC 8693 §4.4).
    MayActMismatch,
    /// The `act` chain would hold more actors than `delegation.max_depth`.
    DelegationTooDeep,
    /// The subject token's `act` claim is not an RFC 8693 `act` chain.
    ActChainInvalid,
    /// Nothing is left of the scopes once narrowed to what the actor (and, for a Ferry
    /// credential as subject token, that credential) may carry.
    DelegationScopeEmpty,
}

impl DenyReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::NoPolicy => "no_policy",
            Self::UnknownPolicy => "unknown_policy",
            Self::AudienceNotServed => "audience_not_served",
            Self::ScopeNotAllowed => "scope_not_allowed",
            Self::ClaimMismatch => "claim_mismatch",
            Self::AuditOnly => "audit_only",
            Self::LifetimeExhausted => "lifetime_exhausted",
            Self::IssuerNotAllowed => "issuer_not_allowed",
            Self::GuardrailDenied => "guardrail_denied",
            Self::ScopeAboveCeiling => "scope_above_ceiling",
            Self::ActorRequired => "actor_required",
            Self::DelegationNotAllowed => "delegation_not_allowed",
            Self::ActorNotAllowed => "actor_not_allowed",
            Self::MayActMismatch => "may_act_mismatch",
            Self::DelegationTooDeep => "delegation_too_deep",
            Self::ActChainInvalid => "act_chain_invalid",
            Self::DelegationScopeEmpty => "delegation_scope_empty",
        }
    }
}

/// How one candidate policy fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyTrace {
    pub policy: PolicyName,
    pub file: String,
    /// `None` when every condition held.
    pub failed: Option<ConditionFailure>,
}

/// The first condition of a policy that did not hold, pointing at its line in the policy file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionFailure {
    /// Where in the policy, e.g. `subject`, `audience`, `claims.ref`, `any_of[1].claims.environment`.
    pub path: String,
    pub line: u64,
    pub column: u64,
    /// The expected value or pattern, rendered for people (e.g. `glob "repo:acme/*"`).
    pub expected: String,
    /// The token's value at that path; `None` when the claim is missing.
    pub actual: Option<Value>,
}

/// A `mode: audit` policy's would-be outcome: recorded, never granted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub policy: PolicyName,
    pub would: &'static str,
    pub failed: Option<ConditionFailure>,
}

/// A guardrail rule that applied to a request, pointing at its line in `guardrails.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardrailHit {
    /// `issuers_allowed`, `max_ttl`, `scopes_allowed`, or `deny[N]`.
    pub rule: String,
    pub description: Option<String>,
    pub file: String,
    pub line: u64,
    pub column: u64,
    /// `denied`, `capped`, or in `mode: audit` `would_deny`, `would_cap`.
    pub effect: &'static str,
    /// `actor` when the rule matched the actor token of a delegation (absent: the subject
    /// token, or the request as a whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_token: Option<&'static str>,
}

/// One condition of a policy and whether it held: a row of `ferry policy explain`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionResult {
    /// Where in the policy, as in [`ConditionFailure::path`].
    pub path: String,
    pub line: u64,
    pub column: u64,
    pub passed: bool,
    /// The expected value or pattern, rendered for people.
    pub expected: String,
    /// The token's value at that path; `None` when the claim is missing.
    pub actual: Option<Value>,
}
