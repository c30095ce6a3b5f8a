//! `RedisStore`'s credential-lifecycle state: the revocation hash, GCRA rate limits, opaque
//! credential records, and [`GUARDED`], the script that makes them part of an exchange's first
//! round trip.
//!
//! On a single server `GUARDED` reads the kill switches and the revocations of the presented
//! credentials, steps the rate limit, claims the `jti` and reads the cache in one command, so an
//! exchange still costs two round trips. It serves what plain commands cannot decide (several
//! claims all or nothing, GCRA, recording a likely hit); a plain exchange takes `plain_trip`.
//! On a Cluster the two revocation hashes live on their own slots: their `HGETALL`/`HMGET` are
//! sent concurrently with the script (one round trip of latency), as `commit` does with the
//! stream. Neither reads the revocations by id whole: an
//! exchange costs the same with ten thousand revoked credentials as with none. A single server
//! also looks up the cached credential's own ids beside the `GET`; a Cluster cannot (another
//! slot), so there the revocation epoch, read beside the script, vouches for a cached record
//! (as on the plain trip), and revoking also deletes the cache entry through its index.
//!
//! GCRA (`store::limit`) runs here with the server's clock (`TIME`), so replicas with skewed
//! clocks still share one budget exactly.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Value;

use super::lua::Lua;
use super::plain_trip::{new_epoch, serves, takes_plain_trip, EPOCH_FIELD};
use super::{decode, millis, RedisStore};
use crate::domain::unix_now;
use crate::store::{
    CacheKey, ClaimOutcome, Guarded, HitRecord, JtiClaim, RateDecision, RateLimit, Revocation,
    StoreError,
};

/// KEYS: [revocations?, kill switches?, gcra?, jti_1 .. jti_n, credential?, stream?]; ARGV:
/// ['-' when the first two keys are absent, else p, revocation id_1 .. id_p], then rate limit
/// or '', period ms, n, claim ttl ms 1 .. n, '1' to look up, hit event head or '', now (unix s),
/// grant ttl s, stream maxlen.
/// Returns `{revocations (flat field/value list: every kill switch, and the revocations among
/// the ids and the cached credential's own — by its id and its minting exchange, read from the
/// record), retry after ms (0 = allowed), {replayed 0|1 per claim}, cached, hit recorded 0|1,
/// revocation epoch or false}` (the epoch, the ids and the cached ids in one `HMGET`).
/// A cached record whose id or minting exchange cannot be read is answered as no record (never
/// served unchecked).
/// A refused rate step claims nothing, so the client may retry with the same token. Several
/// claims (a delegation's subject and actor) are all or nothing: when any was seen before, none
/// is recorded; one claim is a plain `SET NX`.
///
/// With a hit event head (`store::HitRecord`), the hit's audit event is appended to the stream
/// here when the hit is sure to be served — no kill switch at all and no revocation of a
/// presented credential, every claim fresh, and the cached credential reusable by the same
/// integer test as `CachedCredential::reusable` — with the cached `credential_id` and
/// `expires_at` appended to the head (read by one anchored match on the record's first fields,
/// whose order `CachedCredential` fixes; an id that is not plain `[A-Za-z0-9_-]` does not
/// match). Anything less leaves the hit to the client's checks and the commit.
const GUARDED_LUA: &str = r#"
local i = 1
local revs = {}
local o = 1
local p = -1
if ARGV[1] ~= '-' then
  p = tonumber(ARGV[1])
  revs = redis.call('HGETALL', KEYS[2])
  o = 1 + p
  i = 3
end
local function arg(k) return ARGV[o + k - 1] end
if arg(2) ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local period = tonumber(arg(3))
  local interval = period / tonumber(arg(2))
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if now < allow_at then return {revs, math.max(1, math.ceil(allow_at - now)), {}, false, 0, false} end
  redis.call('SET', KEYS[i], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
  i = i + 1
end
local n = tonumber(arg(4))
local replayed = {}
if n == 1 then
  replayed[1] = redis.call('SET', KEYS[i], '1', 'NX', 'PX', arg(5)) and 0 or 1
elseif n > 1 then
  local any = false
  for j = 1, n do
    replayed[j] = redis.call('EXISTS', KEYS[i + j - 1])
    if replayed[j] == 1 then any = true end
  end
  if not any then
    for j = 1, n do redis.call('SET', KEYS[i + j - 1], '1', 'PX', arg(4 + j)) end
  end
end
i = i + n
local cached = false
if arg(5 + n) == '1' then cached = redis.call('GET', KEYS[i]) end
local cid, exp
if cached then
  cid, exp = string.match(cached,
    '^{"credential_id":"([%w%-_]+)","issued_at":%-?%d+,"expires_at":(%-?%d+),')
end
local epoch = false
if p >= 0 then
  -- One HMGET: the revocation epoch, the presented ids, the cached credential's own.
  local ids = {'~epoch'}
  for j = 1, p do ids[#ids + 1] = ARGV[1 + j] end
  if cached and not cid then cached = false end
  if cached then
    ids[#ids + 1] = 'credential:' .. cid
    -- The record ends with it: match only its tail (an unanchored match would scan it all).
    local eid = string.match(string.sub(cached, -80), ',"exchange_id":"([%w%-]+)"}$')
    if eid then
      ids[#ids + 1] = 'exchange:' .. eid
    elseif string.find(cached, '"exchange_id":', 1, true) then
      -- An exchange id the pattern cannot read: it could not be checked, so never served.
      cached = false
    end
  end
  local found = redis.call('HMGET', KEYS[1], unpack(ids))
  epoch = found[1]
  for j = 2, #ids do
    if found[j] then revs[#revs + 1] = ids[j]; revs[#revs + 1] = found[j] end
  end
end
local recorded = 0
local head = arg(6 + n)
if cached and cid and head and head ~= '' and #revs == 0 then
  local fresh = true
  for j = 1, n do if replayed[j] ~= 0 then fresh = false end end
  if fresh then
    local remaining = tonumber(exp) - tonumber(arg(7 + n))
    local allowed = tonumber(arg(8 + n))
    if remaining <= allowed and remaining * 2 >= allowed and remaining >= 1 then
      local event = head .. ',"credential_id":"' .. cid .. '","credential_expires_at":' .. exp .. '}'
      redis.call('XADD', KEYS[i + 1], 'MAXLEN', '~', arg(9 + n), '*', 'event', event)
      recorded = 1
    end
  end
end
return {revs, 0, replayed, cached, recorded, epoch}
"#;

/// Stores a revocation by credential or exchange id and gives the hash a new random epoch
/// ([`EPOCH_FIELD`]). KEYS: [revocations, revocations:expiry]; ARGV: [field, revocation JSON,
/// keep_until, now, new epoch]. Prunes up to 1,000 expired fields first (by the expiry set, so
/// the cost does not grow with the hash).
const REVOKE_LUA: &str = r"
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], '~epoch', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
";

static REVOKE: LazyLock<Lua> = LazyLock::new(|| Lua::new(REVOKE_LUA));

/// Sets a kill switch and prunes the expired ones the caller read, each only if it still holds
/// the value read (another replica may have set it again since) and never the one being set.
/// `KEYS[1]` the kill switches; `ARGV[1]`, `ARGV[2]` the field and value to set; then pairs of
/// an expired field and the value it held.
const KILL_SWITCH_LUA: &str = r"
for i = 3, #ARGV, 2 do
  if ARGV[i] ~= ARGV[1] and redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

static KILL_SWITCH: LazyLock<Lua> = LazyLock::new(|| Lua::new(KILL_SWITCH_LUA));

static GUARDED: LazyLock<Lua> = LazyLock::new(|| Lua::new(GUARDED_LUA));

/// Parses `HGETALL` output (field, value, field, value, ...) into live revocations, leaving out
/// the revocation epoch ([`EPOCH_FIELD`]). An entry that does not parse is an error: a
/// revocation must never be skipped silently.
pub(super) fn parse_revocations(flat: Vec<String>) -> Result<Vec<Revocation>, StoreError> {
    let now = unix_now();
    let mut out = Vec::with_capacity(flat.len() / 2);
    for pair in flat.chunks(2) {
        let [field, value] = pair else {
            return Err(StoreError::Unavailable(
                "unreadable revocations: a field without a value".into(),
            ));
        };
        if field == EPOCH_FIELD {
            continue;
        }
        let r: Revocation = serde_json::from_str(value)
            .map_err(|e| StoreError::Unavailable(format!("unreadable revocation entry: {e}")))?;
        if r.is_live(now) {
            out.push(r);
        }
    }
    Ok(out)
}

impl RedisStore {
    /// Every live revocation: both hashes, whole (the admin listing).
    pub(super) async fn lifecycle_revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let (points, switches) = futures_util::future::join(
            self.hgetall(self.keys.revocations()),
            self.hgetall(self.keys.kill_switches()),
        )
        .await;
        let mut flat = points?;
        flat.extend(switches?);
        parse_revocations(flat)
    }

    /// Every live kill switch and the live revocations among `ids`: two commands, sent together.
    pub(super) async fn lifecycle_revocations_for(
        &self,
        ids: &[String],
    ) -> Result<Vec<Revocation>, StoreError> {
        let (switches, named) = futures_util::future::join(
            self.hgetall(self.keys.kill_switches()),
            self.hmget_pairs(ids),
        )
        .await;
        let mut flat = switches?;
        flat.extend(named?);
        parse_revocations(flat)
    }

    /// What a Cluster's first round trip reads beside the script: the kill switches, the
    /// revocations among `ids`, and the revocation epoch (see `plain_trip`).
    async fn revocations_and_epoch(
        &self,
        ids: &[String],
    ) -> Result<(Vec<Revocation>, Option<String>), StoreError> {
        let with_epoch: Vec<String> = std::iter::once(EPOCH_FIELD.to_string())
            .chain(ids.iter().cloned())
            .collect();
        let (switches, found) = futures_util::future::join(
            self.hgetall(self.keys.kill_switches()),
            self.hmget_revocations(&with_epoch),
        )
        .await;
        let (epoch, named) = epoch_and_pairs(ids, found?)?;
        let mut flat = switches?;
        flat.extend(named);
        Ok((parse_revocations(flat)?, epoch))
    }

    async fn hgetall(&self, key: String) -> Result<Vec<String>, StoreError> {
        self.run("revocations", |mut conn| async move {
            redis::cmd("HGETALL").arg(key).query_async(&mut conn).await
        })
        .await
    }

    /// `HMGET` of the revocations by id, as the field/value pairs found.
    async fn hmget_pairs(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        pairs(ids, self.hmget_revocations(ids).await?)
    }

    /// `HMGET` of `fields` of the revocations hash, one answer per field (none without fields).
    async fn hmget_revocations(
        &self,
        fields: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keys.revocations();
        self.run("revocations", |mut conn| async move {
            redis::cmd("HMGET")
                .arg(key)
                .arg(fields)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// A kill switch: [`KILL_SWITCH`], which sets it in its short hash and prunes the expired
    /// ones read just before (switches are few and rare). A revocation by id: [`REVOKE`], which
    /// moves the epoch on; on a Cluster it then also deletes the revoked credential's cache
    /// entry through its index (the memory, and replicas of earlier builds, which do not check
    /// the epoch there).
    ///
    /// On a Cluster either one returns only after the exchanges that began before it have
    /// ended. A Cluster reads the kill switches, the epoch and the cache entry concurrently,
    /// from different nodes, so an exchange that read them before the write may read an entry
    /// written after it (a credential revoked while it was being minted, its record stamped
    /// with the old epoch). Every such exchange began its store calls before the write, and
    /// each call is bounded by `command_timeout`: after two of them (its first round trip and
    /// its commit) its store calls are over, and the revocation returns. One server needs no wait: an
    /// exchange there reads the entry before the epoch and the kill switches (`plain_trip`), or
    /// all of them in one script.
    pub(super) async fn lifecycle_put_revocation(&self, r: &Revocation) -> Result<(), StoreError> {
        let value = serde_json::to_string(r).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let field = r.id();
        if r.kind.is_kill_switch() {
            self.put_kill_switch(field, value).await?;
            self.outwait_exchanges_in_flight().await;
            return Ok(());
        }
        let index = self.keys.cache_index(&field);
        let mut call = REVOKE.prepare_invoke();
        call.key(self.keys.revocations())
            .key(self.keys.revocation_expiry())
            .arg(&field)
            .arg(value)
            .arg(r.keep_until)
            .arg(unix_now())
            .arg(new_epoch());
        self.run("revoke", |mut conn| async move {
            call.invoke_async::<i64>(&mut conn).await.map(|_| ())
        })
        .await?;
        if self.connector.is_cluster() {
            self.outwait_exchanges_in_flight().await;
            // The entry is on another slot; its index names by now one written during the
            // wait too.
            let entry: Option<String> = self
                .run("revoke", |mut conn| {
                    let index = index.clone();
                    async move { redis::cmd("GET").arg(index).query_async(&mut conn).await }
                })
                .await?;
            if let Some(entry) = entry {
                self.run("revoke", |mut conn| async move {
                    redis::cmd("DEL").arg(entry).exec_async(&mut conn).await
                })
                .await?;
            }
        }
        Ok(())
    }

    /// On a Cluster, two `command_timeout`s: an exchange's two round trips (see
    /// `lifecycle_put_revocation`). Nothing on one server.
    async fn outwait_exchanges_in_flight(&self) {
        if self.connector.is_cluster() {
            tokio::time::sleep(2 * self.settings.command_timeout).await;
        }
    }

    async fn put_kill_switch(&self, field: String, value: String) -> Result<(), StoreError> {
        let key = self.keys.kill_switches();
        let flat = self.hgetall(key.clone()).await?;
        let mut call = KILL_SWITCH.prepare_invoke();
        call.key(key).arg(&field).arg(value);
        for [old_field, old_value] in expired_kill_switches(&flat, &field, unix_now()) {
            call.arg(old_field).arg(old_value);
        }
        self.run("revoke", |mut conn| async move {
            call.invoke_async::<i64>(&mut conn).await.map(|_| ())
        })
        .await
    }

    pub(super) async fn lifecycle_rate_gcra(
        &self,
        limit: &RateLimit,
    ) -> Result<RateDecision, StoreError> {
        let guarded = self
            .guarded_script(&[], None, Some(limit), None, None)
            .await?;
        Ok(guarded.rate)
    }

    pub(super) async fn lifecycle_opaque_put(
        &self,
        digest: &str,
        record: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let (key, record) = (self.keys.opaque(digest), record.to_string());
        self.run("opaque put", |mut conn| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(record)
                .arg("PX")
                .arg(millis(ttl))
                .exec_async(&mut conn)
                .await
        })
        .await
    }

    pub(super) async fn lifecycle_opaque_get(
        &self,
        digest: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = self.keys.opaque(digest);
        self.run("opaque get", |mut conn| async move {
            redis::cmd("GET").arg(key).query_async(&mut conn).await
        })
        .await
    }

    pub(super) async fn lifecycle_opaque_delete(&self, digest: &str) -> Result<(), StoreError> {
        let key = self.keys.opaque(digest);
        self.run("opaque delete", |mut conn| async move {
            redis::cmd("DEL").arg(key).exec_async(&mut conn).await
        })
        .await
    }

    pub(super) async fn lifecycle_claim_guarded(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
        rate: Option<&RateLimit>,
        hit: Option<&HitRecord<'_>>,
        revocation_ids: &[String],
    ) -> Result<Guarded, StoreError> {
        let hit = hit.filter(|_| self.settings.audit_stream);
        if takes_plain_trip(self.connector.is_cluster(), claims, rate, hit) {
            return self
                .plain_first_trip(claims.first(), cache_key, revocation_ids)
                .await;
        }
        if !self.connector.is_cluster() {
            return self
                .guarded_script(claims, cache_key, rate, Some(revocation_ids), hit)
                .await;
        }
        // A script's keys must share one slot: the exchange's (its cache entry, its rate
        // counter, its subject's `jti`). Claims of other slots (an actor token's) are sent
        // beside it, concurrently: one round trip of latency, not atomic with the rest. An
        // exchange refused for a replay or by the rate limit gives back the claims it took
        // (`release_claims`), as the single server's script never takes them.
        let anchor = cache_key
            .map(|k| &k.slot)
            .or(rate.map(|r| &r.slot))
            .or(claims.first().map(|c| &c.slot));
        let (local, other): (Vec<_>, Vec<_>) = claims
            .iter()
            .enumerate()
            .partition(|(_, c)| Some(&c.slot) == anchor);
        let local_claims: Vec<JtiClaim> = local.iter().map(|(_, c)| (*c).clone()).collect();
        let (revocations, guarded, others) = futures_util::future::join3(
            self.revocations_and_epoch(revocation_ids),
            self.guarded_script(&local_claims, cache_key, rate, None, None),
            self.claim_each(other.iter().map(|(_, c)| *c)),
        )
        .await;
        let mut guarded = guarded?;
        let (revocations, epoch) = revocations?;
        guarded.revocations = revocations;
        // The script cannot look up the record's ids (another slot): the epoch vouches for it,
        // as on the plain trip. The two are read concurrently, from two nodes, so either may be
        // read first. That still refuses a record revoked before this exchange began: the
        // revocation had replaced the epoch by then, and an epoch never comes back.
        guarded.cached = guarded.cached.filter(|r| serves(r, epoch.as_deref()));
        guarded.revocation_epoch = epoch;
        // Replayed until answered: a claim no reply covers fails closed.
        let mut outcomes = vec![ClaimOutcome::Replayed; claims.len()];
        for ((i, _), o) in local.iter().zip(&guarded.claims) {
            outcomes[*i] = *o;
        }
        let others = others?;
        for ((i, _), o) in other.iter().zip(&others) {
            outcomes[*i] = *o;
        }
        let refused = !guarded.rate.allowed || outcomes.contains(&ClaimOutcome::Replayed);
        if refused {
            // What this exchange set: the script's claims only when it ran them all (it sets
            // none when the rate step refuses or one of them is replayed), and each other
            // slot's claim that `SET NX` answered.
            let script_set =
                guarded.rate.allowed && guarded.claims.iter().all(|o| *o == ClaimOutcome::Fresh);
            let taken = local.iter().filter(|_| script_set).map(|(_, c)| *c).chain(
                other
                    .iter()
                    .zip(&others)
                    .filter(|(_, o)| **o == ClaimOutcome::Fresh)
                    .map(|((_, c), _)| *c),
            );
            self.release_claims(taken).await;
        }
        guarded.claims = outcomes;
        Ok(guarded)
    }

    /// Deletes the `jti` records a refused exchange set, so that the token it did not use may
    /// be presented again (a rate-limited client retries with the same tokens). Best effort: a
    /// record left behind refuses the token later, which fails closed. Only records this
    /// exchange set are deleted, never one another exchange of the same token set.
    async fn release_claims<'a>(&self, taken: impl Iterator<Item = &'a JtiClaim>) {
        let keys: Vec<String> = taken.map(|c| self.keys.jti(c)).collect();
        if keys.is_empty() {
            return;
        }
        let released = self
            .run("release claims", |conn| async move {
                let each = keys.into_iter().map(|key| {
                    let mut conn = conn.clone();
                    async move { redis::cmd("DEL").arg(key).exec_async(&mut conn).await }
                });
                futures_util::future::join_all(each)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "a refused exchange's jti records could not be released; its tokens stay used");
        }
    }

    /// `SET NX PX` for each claim, concurrently (claims on other Cluster slots).
    async fn claim_each<'a>(
        &self,
        claims: impl Iterator<Item = &'a JtiClaim>,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        let sets: Vec<(String, u64)> = claims.map(|c| (self.keys.jti(c), millis(c.ttl))).collect();
        if sets.is_empty() {
            return Ok(Vec::new());
        }
        self.run("claim", |conn| async move {
            let each = sets.into_iter().map(|(key, ttl)| {
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
                        // Fresh only on `OK`, as on the plain trip: anything else fails closed.
                        .map(|set| match set.as_deref() {
                            Some("OK") => ClaimOutcome::Fresh,
                            _ => ClaimOutcome::Replayed,
                        })
                }
            });
            futures_util::future::join_all(each)
                .await
                .into_iter()
                .collect()
        })
        .await
    }

    async fn guarded_script(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
        rate: Option<&RateLimit>,
        revocation_ids: Option<&[String]>,
        hit: Option<&HitRecord<'_>>,
    ) -> Result<Guarded, StoreError> {
        let mut call = GUARDED.prepare_invoke();
        match revocation_ids {
            Some(ids) => {
                call.key(self.keys.revocations())
                    .key(self.keys.kill_switches())
                    .arg(ids.len());
                for id in ids {
                    call.arg(id);
                }
            }
            None => {
                call.arg("-");
            }
        }
        match rate {
            Some(l) => call
                .key(self.keys.gcra(l))
                .arg(l.limit.max(1))
                .arg(millis(l.period)),
            None => call.arg("").arg(""),
        };
        call.arg(claims.len());
        for c in claims {
            call.key(self.keys.jti(c)).arg(millis(c.ttl));
        }
        match cache_key {
            Some(k) => call.key(self.keys.credential(k)).arg("1"),
            None => call.arg("0"),
        };
        // A hit head is sent only with a cache key (the stream is the key after it).
        if let Some(hit) = hit.filter(|_| cache_key.is_some()) {
            call.key(self.keys.stream())
                .arg(hit.event_head)
                .arg(hit.now)
                .arg(hit.ttl_seconds)
                .arg(self.settings.audit_stream_maxlen);
        }
        let (flat, retry_ms, replayed, cached, recorded, epoch): (
            Vec<String>,
            u64,
            Vec<i64>,
            Value,
            i64,
            Option<String>,
        ) = self
            .run("claim", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        if retry_ms == 0 && replayed.len() != claims.len() {
            return Err(StoreError::Unavailable(
                "redis claim: the script answered the wrong number of claims".into(),
            ));
        }
        // A refused rate step claims nothing: every claim stays fresh for a retry. Otherwise a
        // claim is fresh only on the script's explicit 0: any other answer fails closed.
        let outcome = |i: usize| match replayed.get(i) {
            _ if retry_ms > 0 => ClaimOutcome::Fresh,
            Some(0) => ClaimOutcome::Fresh,
            _ => ClaimOutcome::Replayed,
        };
        let cached = decode(cached);
        if let (Some(key), Some(c)) = (cache_key, &cached) {
            self.seen_cached(key, c.expires_at);
        }
        Ok(Guarded {
            revocations: parse_revocations(flat)?,
            rate: RateDecision {
                allowed: retry_ms == 0,
                retry_after: Duration::from_millis(retry_ms),
            },
            claims: (0..claims.len()).map(outcome).collect(),
            cached,
            hit_recorded: recorded == 1,
            revocation_epoch: epoch,
        })
    }
}

/// The expired entries of the kill switches read (`HGETALL` output) as field and value, for
/// `KILL_SWITCH` to prune: never `setting`, the field about to be set again.
fn expired_kill_switches<'a>(
    flat: &'a [String],
    setting: &'a str,
    now: crate::domain::UnixSeconds,
) -> impl Iterator<Item = [&'a String; 2]> + 'a {
    flat.chunks(2).filter_map(move |pair| match pair {
        [field, value]
            if field != setting
                && serde_json::from_str::<Revocation>(value).is_ok_and(|old| !old.is_live(now)) =>
        {
            Some([field, value])
        }
        _ => None,
    })
}

/// The field/value pairs of the `ids` an `HMGET` found. A reply of another length than the
/// fields asked for fails: cut short, it would drop revocations (and serve a revoked credential).
pub(super) fn pairs(ids: &[String], found: Vec<Option<String>>) -> Result<Vec<String>, StoreError> {
    if found.len() != ids.len() {
        return Err(StoreError::Unavailable(format!(
            "redis revocations: {} values for {} fields",
            found.len(),
            ids.len()
        )));
    }
    Ok(ids
        .iter()
        .zip(found)
        .filter_map(|(id, v)| v.map(|v| [id.clone(), v]))
        .flatten()
        .collect())
}

/// The revocation epoch and the field/value pairs of the `ids` found, from an `HMGET` of the
/// epoch field followed by `ids` (see [`pairs`]).
pub(super) fn epoch_and_pairs(
    ids: &[String],
    mut found: Vec<Option<String>>,
) -> Result<(Option<String>, Vec<String>), StoreError> {
    if found.len() != ids.len() + 1 {
        return Err(StoreError::Unavailable(format!(
            "redis revocations: {} values for {} fields",
            found.len(),
            ids.len() + 1
        )));
    }
    let epoch = found.remove(0);
    Ok((epoch, pairs(ids, found)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hmget_reply_of_the_wrong_length_fails_rather_than_dropping_revocations() {
        let ids = vec!["credential:a".to_string(), "exchange:b".to_string()];
        let found = vec![None, Some("{}".to_string())];
        assert_eq!(pairs(&ids, found.clone()).unwrap(), ["exchange:b", "{}"]);
        assert!(pairs(&ids, vec![None]).is_err(), "cut short");
        assert!(pairs(&ids, vec![None; 3]).is_err(), "too long");
        let with_epoch = [vec![Some("e1".to_string())], found].concat();
        let (epoch, named) = epoch_and_pairs(&ids, with_epoch).unwrap();
        assert_eq!(epoch.as_deref(), Some("e1"));
        assert_eq!(named, ["exchange:b", "{}"]);
        assert!(
            epoch_and_pairs(&ids, Vec::new()).is_err(),
            "no epoch either"
        );
        assert!(epoch_and_pairs(&ids, vec![None; 2]).is_err(), "one short");
    }

    #[test]
    fn the_scripts_name_the_revocation_epoch_as_the_store_does() {
        // Lua spells the field out; a rename on one side only would silently unhinge the epoch.
        let field = format!("'{EPOCH_FIELD}'");
        assert!(GUARDED_LUA.contains(&field), "GUARDED reads it");
        assert!(REVOKE_LUA.contains(&field), "REVOKE replaces it");
    }

    #[test]
    fn a_kill_switch_write_prunes_only_other_expired_switches() {
        let entry = |value: &str, keep_until: i64| {
            format!(
                r#"{{"kind":"subject","value":"{value}","created_at":1,"block_until":1,"keep_until":{keep_until}}}"#
            )
        };
        let flat = vec![
            "subject:old/*".to_string(),
            entry("old/*", 5),
            "subject:evil/*".to_string(),
            entry("evil/*", 5),
            "subject:live/*".to_string(),
            entry("live/*", 500),
        ];
        let pruned: Vec<&str> = expired_kill_switches(&flat, "subject:evil/*", 100)
            .map(|[field, _]| field.as_str())
            .collect();
        assert_eq!(
            pruned,
            ["subject:old/*"],
            "not the one being set, not a live one"
        );
        let [_, value] = expired_kill_switches(&flat, "x", 100).next().unwrap();
        assert_eq!(value, &flat[1], "with the value read, for the compare");
    }

    #[test]
    fn the_revocation_epoch_is_not_a_revocation() {
        let live = r#"{"kind":"credential","value":"c1","created_at":1,"block_until":1,"keep_until":9999999999}"#;
        let flat = vec![
            EPOCH_FIELD.to_string(),
            "0123abcd".to_string(),
            "credential:c1".to_string(),
            live.to_string(),
        ];
        let parsed = parse_revocations(flat).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].value, "c1");
        assert!(parse_revocations(vec!["credential:c1".into()]).is_err());
    }
}
