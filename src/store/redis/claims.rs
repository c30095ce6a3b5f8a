//! Claiming several tokens of one exchange (a delegation's subject and actor `jti`s) in one
//! round trip, for [`Store::claim_all_and_lookup`](crate::store::Store::claim_all_and_lookup).
//!
//! On one server, `scripts::CLAIM_ALL_AND_LOOKUP` is all or nothing: when any `jti` was seen
//! before, none is recorded. The tokens' keys carry their own hash tags (a token's replay
//! record must be found whatever the other token is), so on a Cluster they live on different
//! slots: there the claims are sent concurrently (one round trip of latency) and are not
//! atomic: a refused replay of one token may still use up the other's `jti` (fails closed).

use redis::Value;

use super::{decode, millis, RedisStore};
use crate::store::{CacheKey, CachedCredential, ClaimOutcome, JtiClaim, StoreError};

type Claimed = (Vec<ClaimOutcome>, Option<CachedCredential>);

fn outcome(replayed: bool) -> ClaimOutcome {
    if replayed {
        ClaimOutcome::Replayed
    } else {
        ClaimOutcome::Fresh
    }
}

impl RedisStore {
    pub(super) async fn claim_all(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
    ) -> Result<Claimed, StoreError> {
        if self.connector.is_cluster() {
            return self.claim_all_cluster(claims, cache_key).await;
        }
        let mut call = self.claim_all_script.prepare_invoke();
        call.arg(claims.len());
        for c in claims {
            call.key(self.keys.jti(c)).arg(millis(c.ttl));
        }
        match cache_key {
            Some(k) => call.key(self.keys.credential(k)).arg("1"),
            None => call.arg("0"),
        };
        let (replayed, cached): (Vec<i64>, Value) = self
            .run("claim", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        let outcomes = replayed.iter().map(|&r| outcome(r == 1)).collect();
        Ok((outcomes, decode(cached)))
    }

    async fn claim_all_cluster(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
    ) -> Result<Claimed, StoreError> {
        let sets: Vec<(String, u64)> = claims
            .iter()
            .map(|c| (self.keys.jti(c), millis(c.ttl)))
            .collect();
        let cred = cache_key.map(|k| self.keys.credential(k));
        self.run("claim", |conn| async move {
            let claims = sets.into_iter().map(|(key, ttl)| {
                let mut conn = conn.clone();
                async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg("1")
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl)
                        .query_async::<Option<String>>(&mut conn)
                        .await
                        .map(|set| outcome(set.is_none()))
                }
            });
            let mut lookup_conn = conn.clone();
            let lookup = async move {
                match cred {
                    Some(key) => {
                        redis::cmd("GET")
                            .arg(key)
                            .query_async(&mut lookup_conn)
                            .await
                    }
                    None => Ok(Value::Nil),
                }
            };
            let (claimed, cached) =
                futures_util::future::join(futures_util::future::join_all(claims), lookup).await;
            let outcomes = claimed.into_iter().collect::<Result<Vec<_>, _>>()?;
            Ok((outcomes, decode(cached?)))
        })
        .await
    }
}
