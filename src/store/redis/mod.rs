//! `RedisStore`: the state every replica shares, in Redis (a single server or a Cluster).
//!
//! An exchange costs at most two round trips, each sent as one write and answered as one (the
//! tests count them as the client reads `redis-server` makes, `INFO stats`):
//!
//! - [`Store::claim_guarded`], once the policy has granted: read the kill switches and the revocations
//!   of the presented Ferry credentials, step the rate limit, claim the `jti`s with `SET NX PX`
//!   (a delegation's subject and actor all or nothing), read the cached credential. On one
//!   server a plain exchange sends plain commands, pipelined (`plain_trip`, with the revocation
//!   epoch that lets it serve a cached credential); a delegation, a rate limit or a likely hit
//!   under `hits_in_one_round_trip` takes the `lifecycle::GUARDED` script, which then appends
//!   the hit's event itself ([`super::HitRecord`]).
//! - [`Store::commit`], after it: append the audit stream entry with `XADD … MAXLEN ~ N` and
//!   store the new credential with `SET PX`, pipelined on one server (`commit::Commit`: a failed
//!   `XADD` releases nothing and deletes what its `SET` stored). On a Cluster the stream lives
//!   on another slot, so the commit sends `XADD` and the `SET`s (and an index entry per
//!   revocation id, so that revoking deletes the entry) concurrently instead; the first round
//!   trip is the script there (its keys share a hash tag, see `keys`), with the kill switches,
//!   the revocations and the epoch read beside it.
//!
//! Plain commands instead of Lua or `MULTI`/`EXEC`, because both cost `redis-server` more than
//! the commands they run: 48,491 instructions per miss as plain commands, 65,782 as
//! transactions, 151,599 as scripts (`benches/redis_instructions.sh`).
//!
//! Every operation is bounded by `command_timeout`; a timeout or a connection error is
//! [`StoreError::Unavailable`], which the service turns into 503 with no credential.
//!
//! Layout: `commit` (the commit on one server), `connect` (targets, lazy connections), `keys`
//! (the key layout), `scripts` (the Lua), `plain_trip` (a plain exchange's first round trip,
//! and the revocation epoch), `settings` and `state` (noticing that Redis lost its data).

mod commit;
mod connect;
mod hints;
mod keys;
mod lifecycle;
mod lua;
mod migrate;
mod plain_trip;
mod scripts;
mod settings;
mod state;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{RedisError, Value};

use super::{
    CacheKey, CachePut, CachedCredential, ClaimOutcome, Guarded, HitRecord, JtiClaim, OpaqueRecord,
    RateDecision, RateLimit, Revocation, Store, StoreError,
};
use crate::audit::EventJson;
use crate::domain::UnixSeconds;
use commit::Commit;
pub use connect::{Conn, Connector, Target};
use hints::CacheHints;
use keys::Keys;
use lua::Lua;
use plain_trip::new_epoch;
use scripts::{CLAIM_AND_LOOKUP, RATE};
pub use settings::{RedisSettings, MAX_COMMAND_TIMEOUT};
use state::StateWatch;

pub struct RedisStore {
    connector: Connector,
    keys: Keys,
    settings: RedisSettings,
    claim_script: Lua,
    rate_script: Lua,
    state: Arc<StateWatch>,
    hints: CacheHints,
    /// Whether this replica has looked at Redis's eviction policy (`state::eviction_risk`).
    /// What the last look at Redis's eviction policy found (`Store::may_evict`).
    may_evict: AtomicBool,
    /// Whether this replica has moved the kill switches of older builds (`migrate`).
    kill_switches_moved: AtomicBool,
    /// Held while a move runs, so only one does.
    moving_kill_switches: tokio::sync::Mutex<()>,
}

impl RedisStore {
    /// Builds the store without touching the network: Redis may be down at startup. Connections
    /// are made on first use, on the runtime of the thread that uses them (`connect`).
    pub fn new(settings: &RedisSettings) -> Result<RedisStore, StoreError> {
        settings.check().map_err(StoreError::Config)?;
        let target = Target::parse(settings).map_err(StoreError::Config)?;
        let connector = Connector::new(
            &target,
            settings.tls_ca_file.as_deref(),
            settings.command_timeout,
            settings.connect_timeout,
        )
        .map_err(StoreError::Config)?;
        Ok(RedisStore {
            connector,
            keys: Keys::new(&settings.prefix),
            settings: settings.clone(),
            claim_script: Lua::new(CLAIM_AND_LOOKUP),
            rate_script: Lua::new(RATE),
            state: Arc::new(StateWatch::default()),
            hints: CacheHints::default(),
            may_evict: AtomicBool::new(false),
            kill_switches_moved: AtomicBool::new(false),
            moving_kill_switches: tokio::sync::Mutex::new(()),
        })
    }

    /// At every state check: whether Redis may evict keys (`INFO memory`), with an `error`
    /// line when it starts to (the first check included) and an `info` line when it stops. An
    /// `INFO` that failed leaves the last answer standing.
    async fn check_evictions(&self) {
        let info: Result<Value, _> = self
            .run("info", |mut conn| async move {
                redis::cmd("INFO")
                    .arg("memory")
                    .query_async(&mut conn)
                    .await
            })
            .await;
        let Ok(info) = info else {
            return;
        };
        // One server's text, or a Cluster's answer from each node.
        let mut risks: Vec<String> = state::texts(info)
            .iter()
            .filter_map(|text| state::eviction_risk(text))
            .collect();
        risks.dedup();
        let risky = !risks.is_empty();
        let was = self.may_evict.swap(risky, Ordering::AcqRel);
        if risky && !was {
            for risk in risks {
                tracing::error!("{risk}");
            }
        } else if was && !risky {
            tracing::info!(
                "redis no longer evicts keys (maxmemory-policy noeviction, or no maxmemory)"
            );
        }
    }

    /// Runs `op` on a connection within `command_timeout`.
    async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let timeout = self.settings.command_timeout;
        let work = async {
            let conn = self.connector.get().await?;
            op(conn).await
        };
        let outcome = tokio::time::timeout(timeout, work).await;
        self.connector.note(matches!(outcome, Ok(Ok(_))));
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                "redis {what}: {}",
                described(&e)
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis {what}: no answer within {timeout:?}"
            ))),
        }
    }
}

/// A Redis error for the log. redis-rs quotes the whole reply it could not convert, and a
/// reply may hold a cached credential: such an error is named, never quoted.
fn described(e: &RedisError) -> String {
    if e.kind() == redis::ErrorKind::Parse {
        "an answer of an unexpected shape".into()
    } else {
        e.to_string()
    }
}

/// The longest `PX` Ferry sends: Redis refuses one whose expiry time would pass `i64::MAX`
/// milliseconds, and 2^62 ms (146 million years) leaves room for any clock.
const MAX_PX: u64 = 1 << 62;

/// `d` in milliseconds for `PX`: at least 1, and a huge `d` (a token signed with an absurd
/// `exp`) clamped to [`MAX_PX`], never truncated to a short TTL.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_PX)
}

fn encode(credential: &CachedCredential) -> Result<String, StoreError> {
    serde_json::to_string(credential).map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// A cache entry as Redis holds it: the record under the grant's key and, on a Cluster, one
/// index entry per revocation id of the credential ([`CachedCredential::revocation_ids`])
/// naming that key, so that revoking it deletes the entry (what refuses a revoked record is
/// its revocation epoch, see `plain_trip`; the index frees the memory at once).
struct CacheWrite {
    key: String,
    value: String,
    ttl_ms: u64,
    /// Index keys (Cluster only; empty on a single server).
    index: Vec<String>,
    /// The epoch `value` was stamped with because the exchange read none: the commit sets it
    /// with `HSETNX` (see `plain_trip`).
    fresh_epoch: Option<String>,
    /// The revocations hash, which holds the epoch.
    revocations: String,
}

impl CacheWrite {
    /// On one server: the `HSETNX` of a fresh epoch, if the record has one, then the `SET`.
    fn add_to(self, tx: &mut Commit) {
        if let Some(epoch) = &self.fresh_epoch {
            tx.establish_epoch(self.revocations, epoch);
        }
        tx.set(self.key, self.value, self.ttl_ms);
    }

    /// On a Cluster: the record, its index entries and a fresh epoch (other slots)
    /// concurrently. A revocation made while the credential was being minted is not seen by the
    /// index, but it replaced the epoch this record carries, so the record is not served.
    async fn send(self, conn: Conn) -> Result<(), RedisError> {
        let ttl = self.ttl_ms;
        let set = |key: String, value: String| {
            let mut conn = conn.clone();
            async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(ttl)
                    .exec_async(&mut conn)
                    .await
            }
        };
        let mut sets = vec![set(self.key.clone(), self.value)];
        for index_key in self.index {
            sets.push(set(index_key, self.key.clone()));
        }
        let establish = async {
            if let Some(epoch) = &self.fresh_epoch {
                // Reply ignored, as on one server: if this fails or loses to a revocation's
                // epoch, the record is simply never served.
                let _: Result<(), RedisError> = redis::cmd("HSETNX")
                    .arg(&self.revocations)
                    .arg(plain_trip::EPOCH_FIELD)
                    .arg(epoch)
                    .exec_async(&mut conn.clone())
                    .await;
            }
        };
        let (stored, ()) =
            futures_util::future::join(futures_util::future::try_join_all(sets), establish).await;
        stored.map(|_| ())
    }
}

fn decode(value: Value) -> Option<CachedCredential> {
    match value {
        Value::BulkString(bytes) => serde_json::from_slice(&bytes).ok(),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn claim_and_lookup(
        &self,
        claim: Option<&JtiClaim>,
        cache_key: Option<&CacheKey>,
    ) -> Result<(ClaimOutcome, Option<CachedCredential>), StoreError> {
        if claim.is_none() && cache_key.is_none() {
            return Ok((ClaimOutcome::Fresh, None));
        }
        let mut call = self.claim_script.prepare_invoke();
        match claim {
            Some(c) => call.key(self.keys.jti(c)).arg(millis(c.ttl)),
            None => call.arg(""),
        };
        match cache_key {
            Some(k) => call.key(self.keys.credential(k)).arg("1"),
            None => call.arg("0"),
        };
        let (replayed, cached): (i64, Value) = self
            .run("claim", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        // Fresh only on the script's explicit 0, as everywhere: any other answer fails closed.
        let outcome = if replayed == 0 {
            ClaimOutcome::Fresh
        } else {
            ClaimOutcome::Replayed
        };
        Ok((outcome, decode(cached)))
    }

    async fn cache_put(
        &self,
        key: &CacheKey,
        credential: &CachedCredential,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let write = self.cache_write(key, credential, ttl)?;
        if self.connector.is_cluster() {
            return self
                .run("cache put", |conn| async move { write.send(conn).await })
                .await;
        }
        let mut tx = Commit::default();
        write.add_to(&mut tx);
        self.send_commit("cache put", tx).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let marker = self.keys.state_marker();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&marker)
            .arg(new_epoch()) // unique and never reused, as a generation must be
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&marker);
        let pipe = &pipe;
        let (generation,): (Option<String>,) = self
            .run("ping", |mut conn| async move {
                pipe.query_async(&mut conn).await
            })
            .await?;
        // Set just before it was read: missing only if deleted in between (the next check sees).
        if let Some(generation) = generation {
            self.state.observe(&generation);
        }
        self.check_evictions().await;
        // Not ready until the kill switches of an older build are enforced (`migrate`).
        if !self.kill_switches_moved.load(Ordering::Acquire) {
            let _one_move = self.moving_kill_switches.lock().await;
            if !self.kill_switches_moved.load(Ordering::Acquire) {
                self.migrate_kill_switches().await.map_err(|e| {
                    StoreError::Unavailable(format!(
                        "moving kill switches stored by an older build: {e}"
                    ))
                })?;
                self.kill_switches_moved.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    fn state_losses(&self) -> u64 {
        self.state.losses()
    }

    fn may_evict(&self) -> bool {
        self.may_evict.load(Ordering::Acquire)
    }

    fn keeps_audit_stream(&self) -> bool {
        self.settings.audit_stream
    }

    /// With `hits_in_one_round_trip`, on one server, the stream is written by the same script
    /// that claims the `jti`. Otherwise (and always on a Cluster, where the stream lives on
    /// another slot) a hit is recorded by the commit.
    fn records_hits_first(&self, key: &CacheKey, now: UnixSeconds) -> bool {
        self.settings.hits_in_one_round_trip
            && self.settings.audit_stream
            && !self.connector.is_cluster()
            && self.hints.probably_cached(key, now)
    }

    async fn commit(
        &self,
        event: &EventJson,
        cache: Option<CachePut<'_>>,
    ) -> Result<(), StoreError> {
        if !self.settings.audit_stream {
            return match cache {
                Some(put) => self.cache_put(put.key, put.credential, put.ttl).await,
                None => Ok(()),
            };
        }
        let event = event.as_bytes();
        if let Some(put) = &cache {
            self.seen_cached(put.key, put.credential.expires_at);
        }
        let cache = match cache {
            Some(put) => Some(self.cache_write(put.key, put.credential, put.ttl)?),
            None => None,
        };
        if self.connector.is_cluster() {
            return self.commit_cluster(event, cache).await;
        }
        let mut tx = Commit::default();
        tx.append(self.keys.stream(), self.settings.audit_stream_maxlen, event);
        if let Some(write) = cache {
            write.add_to(&mut tx);
        }
        self.send_commit("audit stream append", tx).await
    }

    async fn commit_opaque(
        &self,
        event: &EventJson,
        opaque: &OpaqueRecord,
    ) -> Result<(), StoreError> {
        let put = || self.lifecycle_opaque_put(&opaque.digest, &opaque.record, opaque.ttl);
        if !self.settings.audit_stream {
            return put().await;
        }
        let event = event.as_bytes();
        if self.connector.is_cluster() {
            let (appended, stored) =
                futures_util::future::join(self.commit_cluster(event, None), put()).await;
            return appended.and(stored);
        }
        let mut tx = Commit::default();
        tx.append(self.keys.stream(), self.settings.audit_stream_maxlen, event);
        tx.set(
            self.keys.opaque(&opaque.digest),
            opaque.record.clone(),
            millis(opaque.ttl),
        );
        self.send_commit("audit stream append", tx).await
    }

    async fn revoke(&self, credential_id: &str, ttl: Duration) -> Result<(), StoreError> {
        let key = self.keys.revoked(credential_id);
        self.run("revoke", |mut conn| async move {
            redis::cmd("SET")
                .arg(key)
                .arg("1")
                .arg("PX")
                .arg(millis(ttl))
                .exec_async(&mut conn)
                .await
        })
        .await
    }

    async fn is_revoked(&self, credential_id: &str) -> Result<bool, StoreError> {
        let key = self.keys.revoked(credential_id);
        self.run("revocation check", |mut conn| async move {
            redis::cmd("EXISTS").arg(key).query_async(&mut conn).await
        })
        .await
    }

    async fn rate_limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let mut call = self.rate_script.prepare_invoke();
        call.key(self.keys.rate(key)).arg(millis(window));
        let (count, remaining_ms): (u64, u64) = self
            .run("rate limit", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        Ok(RateDecision::from_count(
            count,
            limit,
            Duration::from_millis(remaining_ms),
        ))
    }

    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        self.lifecycle_revocations().await
    }

    async fn revocations_for(&self, ids: &[String]) -> Result<Vec<Revocation>, StoreError> {
        self.lifecycle_revocations_for(ids).await
    }

    async fn put_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        self.lifecycle_put_revocation(revocation).await
    }

    async fn rate_gcra(&self, limit: &RateLimit) -> Result<RateDecision, StoreError> {
        self.lifecycle_rate_gcra(limit).await
    }

    async fn opaque_put(
        &self,
        digest: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.lifecycle_opaque_put(digest, record, ttl).await
    }

    async fn opaque_get(&self, digest: &str) -> Result<Option<String>, StoreError> {
        self.lifecycle_opaque_get(digest).await
    }

    async fn opaque_delete(&self, digest: &str) -> Result<(), StoreError> {
        self.lifecycle_opaque_delete(digest).await
    }

    async fn claim_guarded(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
        rate: Option<&RateLimit>,
        hit: Option<&HitRecord<'_>>,
        revocation_ids: &[String],
    ) -> Result<Guarded, StoreError> {
        self.lifecycle_claim_guarded(claims, cache_key, rate, hit, revocation_ids)
            .await
    }
}

impl RedisStore {
    /// Notes that `key` holds a credential until `expires_at`, for `records_hits_first`: only
    /// under `hits_in_one_round_trip`, the one reader of the hints.
    fn seen_cached(&self, key: &CacheKey, expires_at: UnixSeconds) {
        if self.settings.hits_in_one_round_trip {
            self.hints.cached(key, expires_at);
        }
    }

    fn cache_write(
        &self,
        key: &CacheKey,
        credential: &CachedCredential,
        ttl: Duration,
    ) -> Result<CacheWrite, StoreError> {
        let cluster = self.connector.is_cluster();
        let index = match cluster {
            true => credential
                .revocation_ids()
                .iter()
                .map(|id| self.keys.cache_index(id))
                .collect(),
            false => Vec::new(),
        };
        // The revocations hash had no epoch when this exchange read it (a fresh or flushed
        // Redis): stamp the record with a new one, which the commit sets if it is still absent.
        let fresh_epoch = credential.revocation_epoch.is_none().then(new_epoch);
        let value = match &fresh_epoch {
            Some(epoch) => encode(&CachedCredential {
                revocation_epoch: Some(epoch.clone()),
                ..credential.clone()
            })?,
            None => encode(credential)?,
        };
        Ok(CacheWrite {
            key: self.keys.credential(key),
            value,
            ttl_ms: millis(ttl),
            index,
            fresh_epoch,
            revocations: self.keys.revocations(),
        })
    }

    /// On a Cluster the stream and the credential live on different slots: send both at once
    /// (one round trip of latency, to two nodes). The credential is cached even if the append
    /// fails, but it is not released then, and a later cache hit is audited on its own.
    async fn commit_cluster(
        &self,
        event: &[u8],
        cache: Option<CacheWrite>,
    ) -> Result<(), StoreError> {
        let stream = self.keys.stream();
        let maxlen = self.settings.audit_stream_maxlen;
        self.run("audit stream append", |conn| async move {
            let mut xadd_conn = conn.clone();
            let append = async move {
                commit::xadd(stream, maxlen, event)
                    .exec_async(&mut xadd_conn)
                    .await
            };
            let put = async move {
                match cache {
                    Some(write) => write.send(conn).await,
                    None => Ok(()),
                }
            };
            let (appended, stored) = futures_util::future::join(append, put).await;
            appended.and(stored)
        })
        .await
    }
}

#[cfg(test)]
mod described_tests {
    use super::*;
    use redis::FromRedisValue;

    #[test]
    fn a_reply_that_does_not_convert_is_named_not_quoted() {
        let reply = Value::BulkString(b"{\"jwt\":\"eyJhbGciOiJFUzI1NiJ9.secret\"}".to_vec());
        let e: RedisError = <(String, u64)>::from_redis_value(reply).unwrap_err().into();
        assert!(e.to_string().contains("secret"), "redis-rs quotes it: {e}");
        let said = described(&e);
        assert!(!said.contains("secret"), "{said}");
        assert_eq!(said, "an answer of an unexpected shape");
    }
}
