//! Redis key layout. Every key starts with the configured prefix (default `ferry:`), so several
//! deployments can share one Redis. The hash tag `{…}` puts the keys one exchange touches (its
//! `jti` record and its grant's cached credential) on one Redis Cluster slot.
//!
//! | key | value | expiry |
//! |---|---|---|
//! | `P{slot}:jti:<sha256(issuer|jti)>` | `1` | `exp + leeway + margin - now` |
//! | `P{slot}:cred:<grant digest>` | the cached credential as JSON, **including the JWT** | its remaining life |
//! | `P{revoked:<credential id>}` | `1` | the credential's remaining life |
//! | `P{rate:<key>}` | counter | the window |
//! | `P{revocations}` | hash: `credential:<id>` / `exchange:<id>` -> revocation JSON | none (pruned on write, by `…:expiry`) |
//! | `P{revocations}:expiry` | sorted set: the same fields, scored by `keep_until` | none |
//! | `P{killswitches}` | hash: `subject:<glob>` / `policy:<name>` -> revocation JSON (pruned on write) | none |
//! | `P{cidx:<sha256(revocation id)>}` | Cluster only: the key of the cache entry holding that credential | the entry's |
//! | `P{slot}:gcra:<key>` | GCRA arrival time (ms) of a `grant.rate_limit` | until that time |
//! | `P{opaque:<sha256 of the credential>}` | an opaque credential's record (claims, never the credential) | its remaining life |
//! | `Paudit` | stream of audit events (`event` = JSON) | `MAXLEN ~ N` |
//! | `Pstate` | marker whose absence shows the store lost its state | none |
//!
//! The credential cache holds bearer credentials in clear: Redis is trusted infrastructure (use
//! `rediss://`, ACLs, and no persistence you would not trust with the credentials).

use crate::domain::sha256_hex;
use crate::store::{CacheKey, JtiClaim};

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn jti(&self, claim: &JtiClaim) -> String {
        format!(
            "{}{{{}}}:jti:{}",
            self.prefix,
            claim.slot,
            sha256_hex(claim.key.as_bytes())
        )
    }

    pub fn credential(&self, key: &CacheKey) -> String {
        format!("{}{{{}}}:cred:{}", self.prefix, key.slot, key.id)
    }

    pub fn revoked(&self, credential_id: &str) -> String {
        format!("{}{{revoked:{credential_id}}}", self.prefix)
    }

    pub fn rate(&self, key: &str) -> String {
        format!("{}{{rate:{key}}}", self.prefix)
    }

    pub fn revocations(&self) -> String {
        format!("{}{{revocations}}", self.prefix)
    }

    /// Scores of [`Keys::revocations`]' fields by `keep_until` (same slot: pruned together).
    pub fn revocation_expiry(&self) -> String {
        format!("{}{{revocations}}:expiry", self.prefix)
    }

    pub fn kill_switches(&self) -> String {
        format!("{}{{killswitches}}", self.prefix)
    }

    /// Names the cache entry of the credential a revocation id names, so that revoking deletes
    /// it (a Cluster, whose first script cannot read the revocations beside the cache).
    pub fn cache_index(&self, revocation_id: &str) -> String {
        let digest = sha256_hex(revocation_id.as_bytes());
        format!("{}{{cidx:{}}}", self.prefix, &digest[..32])
    }

    pub fn gcra(&self, limit: &crate::store::RateLimit) -> String {
        format!("{}{{{}}}:gcra:{}", self.prefix, limit.slot, limit.key)
    }

    pub fn opaque(&self, digest: &str) -> String {
        format!("{}{{opaque:{digest}}}", self.prefix)
    }

    pub fn stream(&self) -> String {
        format!("{}audit", self.prefix)
    }

    pub fn state_marker(&self) -> String {
        format!("{}state", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_of_one_exchange_share_a_hash_tag() {
        let keys = Keys::new("ferry:");
        let claim = JtiClaim {
            slot: "abc123".into(),
            key: "iss|j1".into(),
            ttl: std::time::Duration::from_secs(1),
        };
        let cache = CacheKey {
            slot: "abc123".into(),
            id: "g".into(),
        };
        assert!(keys.jti(&claim).starts_with("ferry:{abc123}:jti:"));
        assert_eq!(keys.credential(&cache), "ferry:{abc123}:cred:g");
    }
}
