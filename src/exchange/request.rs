//! The typed RFC 8693 request and the part of it that `decide` sees (the verified actor
//! token included: it is an input to the decision, like the scopes).

use std::time::Duration;

use crate::domain::{Audience, PolicyName, ScopeSet};

/// What the caller asked for, minus the tokens: the input `decide` works from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    /// RFC 8693 `audience`: selects policies whose `grant.audience` equals it.
    pub audience: Option<Audience>,
    /// RFC 6749 `scope`; empty means "all of the policy's scopes".
    pub scopes: ScopeSet,
    /// Extension `ttl_seconds`: a request may ask for a shorter lifetime, never a longer one.
    pub ttl: Option<Duration>,
    /// Extension `policy`: names the policy to use instead of searching.
    pub policy: Option<PolicyName>,
    /// RFC 8693 `actor_token`, once verified: who acts for the subject (delegation).
    pub actor: Option<super::delegation::ActorToken>,
}
