//! Revocations and kill switches as the store keeps them, and the pure checks against them.
//!
//! One list holds every live revocation: of a credential (by id), of the credentials one
//! exchange minted (by exchange id), and kill switches on a subject pattern or a policy. A kill
//! switch revokes every credential of that subject or policy issued up to its creation (and, for
//! replicas whose clocks run ahead, up to `issued_through`) and, until `block_until`, refuses new
//! exchanges for it. An entry is kept until every credential it can
//! revoke has expired (`keep_until`), so lifting a block (`unblock`) never revives a credential.
//!
//! A store keeps the two apart: kill switches in one short list, read whole by every exchange
//! inside its first round trip ([`super::Store::claim_guarded`]), and revocations of a
//! credential or an exchange by id, looked up only for the credentials an exchange or an
//! introspection presents ([`CredentialFacts::revocation_ids`]) and for the credential a cache
//! hit would serve (on a Redis server in the same script; a Redis Cluster deletes a revoked
//! credential's cache entry instead). So an exchange costs the same
//! with ten thousand revoked credentials as with none. Entries expire with the credentials they
//! cover (at most
//! [`CREDENTIAL_LIFETIME_CEILING`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::UnixSeconds;

/// The longest life of any credential Ferry mints (`grant.ttl` is at most 24 h): a revocation
/// kept this long outlives every credential it can match.
pub const CREDENTIAL_LIFETIME_CEILING: Duration = Duration::from_secs(24 * 60 * 60);

/// Subject patterns are globs compiled with this size limit (like policy patterns).
const PATTERN_SIZE_LIMIT: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    Credential,
    Exchange,
    /// A kill switch on a subject glob (`*` any run, `?` one character).
    Subject,
    /// A kill switch on a policy name.
    Policy,
}

impl RevocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::Exchange => "exchange",
            Self::Subject => "subject",
            Self::Policy => "policy",
        }
    }

    /// Kill switches block new exchanges; credential and exchange revocations do not.
    pub fn is_kill_switch(self) -> bool {
        matches!(self, Self::Subject | Self::Policy)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub kind: RevocationKind,
    /// Credential id, exchange id, subject glob or policy name.
    pub value: String,
    pub created_at: UnixSeconds,
    /// New exchanges of a kill switch's subject or policy are refused until then.
    pub block_until: UnixSeconds,
    /// The entry is dropped after this: every credential it revokes has expired by then.
    pub keep_until: UnixSeconds,
    /// Kill switches: the latest `iat` they revoke ([`Revocation::revokes_issued_at`]). Later
    /// than `created_at` because replicas' clocks disagree: an exchange already past its
    /// kill-switch read on a replica whose clock runs ahead stamps its credential after the
    /// switch's `created_at`. Never at or past `block_until`, so nothing issued once the block
    /// has ended is revoked. Absent in entries of earlier builds (then `created_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_through: Option<UnixSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The subject of the admin credential that asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Revocation {
    /// Unique per kind and value: revoking the same thing again replaces the entry.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.value)
    }

    pub fn is_live(&self, now: UnixSeconds) -> bool {
        self.keep_until > now
    }

    pub fn blocks_at(&self, now: UnixSeconds) -> bool {
        self.kind.is_kill_switch() && self.block_until > now
    }

    /// Whether a kill switch covers a credential issued at `iat` (of a matching subject or
    /// policy): issued up to its creation, or up to `issued_through`.
    pub fn revokes_issued_at(&self, iat: UnixSeconds) -> bool {
        iat <= self
            .issued_through
            .unwrap_or(self.created_at)
            .max(self.created_at)
    }

    /// Sets how far past `created_at` a kill switch reaches: `reach` (the clock skew tolerated
    /// between replicas, plus the time until the switch is visible to them), but never into the
    /// second its block ends in or later.
    pub fn reach_past_creation(&mut self, reach: Duration) {
        let reach = i64::try_from(reach.as_secs()).unwrap_or(i64::MAX);
        let through = self
            .created_at
            .saturating_add(reach)
            .min(self.block_until.saturating_sub(1))
            .max(self.created_at);
        self.issued_through = Some(through);
    }

    /// Ends a kill switch's block at `now` (at the earliest the second after its creation,
    /// which it always covers): new exchanges are served again, and its reach stops short of
    /// the block's end too, so a credential issued after the block ended is not revoked by it.
    pub fn unblock_at(&mut self, now: UnixSeconds) {
        self.block_until = now.max(self.created_at.saturating_add(1));
        if let Some(through) = self.issued_through {
            let before_end = self.block_until.saturating_sub(1);
            self.issued_through = Some(through.min(before_end).max(self.created_at));
        }
    }
}

/// What a revocation check needs to know of a credential (from its claims or its cache entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFacts {
    pub credential_id: String,
    pub exchange_id: Option<String>,
    pub subject: String,
    /// The `sub` of every actor in its `act` chain, nearest first: a subject kill switch on an
    /// agent covers the credentials it acts in, not only its own.
    pub actors: Vec<String>,
    /// `client_id`: the policy that granted it.
    pub policy: String,
    pub issued_at: UnixSeconds,
    /// `ferry.derived_from`: the revocation ids of the Ferry credentials it was exchanged from
    /// (a next hop's subject or actor token), and theirs, so that revoking a hop cuts off every
    /// hop made from it.
    pub derived_from: Vec<String>,
    /// `ferry.derived_policies`: the policies that granted those credentials (`client_id`), and
    /// theirs, so that a policy kill switch cuts off the hops made from that policy's
    /// credentials too.
    pub derived_policies: Vec<String>,
}

impl CredentialFacts {
    /// From the claims of a credential Ferry minted (`jti`, `sub`, `client_id`, `iat`,
    /// `ferry.exchange_id`); `None` when a required claim is missing.
    pub fn from_claims(claims: &Map<String, Value>) -> Option<CredentialFacts> {
        Some(CredentialFacts {
            credential_id: claims.get("jti")?.as_str()?.to_string(),
            exchange_id: claims
                .get("ferry")
                .and_then(|f| f.get("exchange_id"))
                .and_then(Value::as_str)
                .map(str::to_string),
            subject: claims.get("sub")?.as_str()?.to_string(),
            actors: act_subjects(claims.get("act")),
            policy: claims.get("client_id")?.as_str()?.to_string(),
            issued_at: claims.get("iat")?.as_i64()?,
            derived_from: lineage(claims, "derived_from")?,
            derived_policies: lineage(claims, "derived_policies")?,
        })
    }
}

/// A lineage list of the `ferry` claim: absent is empty; not a list of strings, or longer than
/// [`MAX_LINEAGE`], is `None` (the credential is malformed).
fn lineage(claims: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    match claims.get("ferry").and_then(|f| f.get(name)) {
        None => Some(Vec::new()),
        Some(list) => {
            let items = list.as_array()?;
            if items.len() > MAX_LINEAGE {
                return None;
            }
            items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect()
        }
    }
}

/// The `sub` of each actor of an `act` chain (RFC 8693 §4.1: each `act` nests the one before),
/// nearest first. A link without a string `sub` ends it.
pub fn act_subjects(act: Option<&Value>) -> Vec<String> {
    act_chain(act).map(str::to_string).collect()
}

/// [`act_subjects`], borrowed: at most `MAX_ACT_LINKS`.
pub fn act_chain(act: Option<&Value>) -> impl Iterator<Item = &str> {
    std::iter::successors(act, |link| link.get("act"))
        .map_while(|link| link.get("sub").and_then(Value::as_str))
        .take(MAX_ACT_LINKS)
}

/// More `act` links than any chain a policy allows (`max_depth`); bounds the walk above.
const MAX_ACT_LINKS: usize = 32;

/// The ids ([`Revocation::id`]) of the revocations that name a credential directly (by its id,
/// by its minting exchange): what a store looks up besides the kill switches.
pub fn revocation_ids(credential_id: &str, exchange_id: Option<&str>) -> Vec<String> {
    let id = |kind: RevocationKind, value: &str| format!("{}:{value}", kind.as_str());
    let mut ids = vec![id(RevocationKind::Credential, credential_id)];
    ids.extend(exchange_id.map(|e| id(RevocationKind::Exchange, e)));
    ids
}

impl CredentialFacts {
    /// [`revocation_ids`] of this credential, then those it was derived from: every id whose
    /// revocation covers it.
    pub fn revocation_ids(&self) -> Vec<String> {
        let mut ids = revocation_ids(&self.credential_id, self.exchange_id.as_deref());
        ids.extend(self.derived_from.iter().cloned());
        ids
    }
}

/// The most revocation ids (and, apart, policies) a credential's lineage may hold (two per hop,
/// for its subject and its actor tokens, far past any `max_depth`); a longer one is refused,
/// never cut short.
pub const MAX_LINEAGE: usize = 64;

/// Compiles a subject kill-switch glob; `Err` when it is not a usable pattern.
pub fn subject_pattern(glob: &str) -> Result<Regex, String> {
    RegexBuilder::new(&crate::policy::compile::glob_to_regex(glob))
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|_| format!("`{glob}` is not a usable subject pattern"))
}

/// Compiled subject patterns per thread: every exchange checks every live subject switch, and
/// compiling a glob costs far more than matching it. Bounded: cleared when it grows past this.
const PATTERN_CACHE_MAX: usize = 256;

thread_local! {
    static PATTERNS: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

fn subject_matches(glob: &str, subject: &str) -> bool {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= PATTERN_CACHE_MAX && !cache.contains_key(glob) {
            cache.clear();
        }
        let compiled = cache
            .entry(glob.to_string())
            .or_insert_with(|| subject_pattern(glob).ok());
        // Patterns were checked when they were stored; one that no longer compiles matches
        // everything (fail closed: a kill switch must never silently stop working).
        compiled.as_ref().is_none_or(|re| re.is_match(subject))
    })
}

/// The first live revocation that revokes this credential, if any.
pub fn revoking<'a>(
    list: &'a [Revocation],
    c: &CredentialFacts,
    now: UnixSeconds,
) -> Option<&'a Revocation> {
    list.iter()
        .filter(|r| r.is_live(now))
        .find(|r| match r.kind {
            RevocationKind::Credential | RevocationKind::Exchange
                if c.derived_from.contains(&r.id()) =>
            {
                true
            }
            RevocationKind::Credential => r.value == c.credential_id,
            RevocationKind::Exchange => c.exchange_id.as_deref() == Some(r.value.as_str()),
            RevocationKind::Policy => {
                r.revokes_issued_at(c.issued_at)
                    && (r.value == c.policy || c.derived_policies.contains(&r.value))
            }
            RevocationKind::Subject => {
                r.revokes_issued_at(c.issued_at)
                    && std::iter::once(&c.subject)
                        .chain(&c.actors)
                        .any(|s| subject_matches(&r.value, s))
            }
        })
}

/// The first kill switch that refuses a new exchange under `policy` now for any of `subjects`:
/// the subject token's, and in a delegation every actor's (the actor token's and those of the
/// `act` chains presented).
pub fn blocking<'a>(
    list: &'a [Revocation],
    subjects: &[&str],
    policy: &str,
    now: UnixSeconds,
) -> Option<&'a Revocation> {
    list.iter()
        .filter(|r| r.blocks_at(now))
        .find(|r| match r.kind {
            RevocationKind::Policy => r.value == policy,
            RevocationKind::Subject => subjects.iter().any(|s| subject_matches(&r.value, s)),
            _ => false,
        })
}

#[cfg(test)]
#[path = "revocation_tests.rs"]
mod tests;
