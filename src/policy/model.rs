//! The compiled form of one trust policy: what `decide` evaluates. Built only by the loader, so
//! every value here has been validated (names parse, matchers compile, ttl is in range).

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{Audience, IssuerName, PolicyName, ScopeSet};

use super::matcher::{Matcher, Scalar};
use super::yaml::Pos;

/// What a condition looks at in the subject token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Subject,
    /// Some element of the token's `aud` list must satisfy the matcher.
    Audience,
    /// A claim, by path through nested objects (`["kubernetes.io", "namespace"]`).
    Claim(Vec<String>),
    /// A normalised claim (`issuer::normalize::NORMALIZED_KEYS`).
    Normalized(&'static str),
}

/// One compiled condition, with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub target: Target,
    /// Trace path: `subject`, `audience`, `claims.ref`, `any_of[1].claims.environment`.
    pub path: String,
    pub matcher: Matcher,
    pub pos: Pos,
}

/// One `any_of` entry: every condition must hold.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub conditions: Vec<Condition>,
}

/// `any_of:` with where it was written (the trace points here when no group held).
#[derive(Debug, Clone)]
pub(crate) struct AnyOf {
    pub groups: Vec<Group>,
    pub pos: Pos,
}

/// `enforce` (default) grants; `audit` only records what it would have decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    Enforce,
    Audit,
}

/// `grant:` — the most a request under this policy may get.
#[derive(Debug, Clone)]
pub(crate) struct GrantSpec {
    pub audience: Audience,
    /// Never empty.
    pub scopes: ScopeSet,
    /// Between 1 s and 24 h.
    pub ttl: Duration,
    /// Where `grant.ttl` was written (lints point here).
    pub ttl_pos: Pos,
    /// Credential claim name -> top-level source claim name, in file order; names are never
    /// reserved claims.
    pub claims: Vec<(String, String)>,
    pub ttl_bound_to_token: bool,
    /// `grant.credential` (default `jwt`).
    pub credential: super::CredentialKind,
    /// `grant.rate_limit`, per subject.
    pub rate_limit: Option<super::RateSpec>,
}

/// One loaded policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub name: PolicyName,
    /// Path relative to the policy directory (the file name).
    pub file: PathBuf,
    pub issuer: IssuerName,
    pub subject: Option<Condition>,
    /// `None` when the policy has no `audience:`: the token must then carry the broker's own.
    pub audience: Option<Condition>,
    /// `claims:` leaves in file order, then the `normalized:` ones.
    pub claims: Vec<Condition>,
    pub any_of: Option<AnyOf>,
    /// `when:` (CEL), checked after every other condition.
    pub when: Option<super::when::When>,
    pub grant: GrantSpec,
    pub mode: Mode,
    /// `delegation:`; `None` refuses every actor token.
    pub delegation: Option<super::delegation::DelegationSpec>,
}

impl Policy {
    /// The exact subject string, when the subject is a plain string (the index key).
    pub fn exact_subject(&self) -> Option<&str> {
        match self.subject.as_ref().map(|c| &c.matcher) {
            Some(Matcher::Exact(Scalar::String(s))) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The literal text before the first wildcard, when the subject is a glob (the index key).
    pub fn glob_subject_prefix(&self) -> Option<&str> {
        match self.subject.as_ref().map(|c| &c.matcher) {
            Some(Matcher::Glob(p)) => p.source.split(['*', '?']).next(),
            _ => None,
        }
    }

    /// Every condition, top level and inside `any_of` groups (for lints).
    pub fn all_conditions(&self) -> impl Iterator<Item = &Condition> {
        let groups = self.any_of.iter().flat_map(|a| a.groups.iter());
        self.subject
            .iter()
            .chain(self.audience.iter())
            .chain(self.claims.iter())
            .chain(groups.flat_map(|g| g.conditions.iter()))
    }

    pub fn file_name(&self) -> String {
        self.file.display().to_string()
    }
}
