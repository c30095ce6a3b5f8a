//! Moving state that older builds kept elsewhere, once per replica start.
//!
//! Builds before kill switches had their own hash kept them in the revocations hash, beside the
//! revocations by id (fields `subject:<glob>` and `policy:<name>`). This build reads kill
//! switches only from `P{killswitches}`, so one left there would be listed by `ferry admin` but
//! never enforced. A replica's state check (`ping`: at start when the periodic check is on, and
//! on every `/readyz`) moves every such field before it reports ready, and fails (so the replica
//! stays unready) until the move has succeeded once:
//! - copy with `HSETNX` (an entry this build already set wins);
//! - then delete from the old hash only if the field still holds the value copied
//!   ([`DELETE_IF_UNCHANGED`]), so an entry an older replica rewrote meanwhile is not lost; it
//!   stays for the next start (and the copy, set first, is the one enforced).
//!
//! An entry already past `keep_until` is dropped, not copied. Every step is idempotent, and
//! only one move runs at a time per replica. Replicas of an older build still running stop
//! enforcing a moved switch, so an upgrade should finish before relying on one.

use std::sync::LazyLock;

use super::lua::Lua;
use super::RedisStore;
use crate::domain::unix_now;
use crate::store::{Revocation, StoreError};

/// Fields per `HSCAN` step.
const SCAN_COUNT: usize = 1000;

/// KEYS: [revocations, revocations:expiry]; ARGV: [field, the value copied]. Deletes the field
/// (and its expiry score) only if it still holds that value; returns 0 if it holds another,
/// 1 if it is gone (deleted now, or by another replica's move).
const DELETE_IF_UNCHANGED_LUA: &str = r"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return 1 end
if held ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
";

static DELETE_IF_UNCHANGED: LazyLock<Lua> = LazyLock::new(|| Lua::new(DELETE_IF_UNCHANGED_LUA));

impl RedisStore {
    /// Moves the kill switches an older build left in the revocations hash; returns how many
    /// were copied into the kill-switch hash.
    pub(super) async fn migrate_kill_switches(&self) -> Result<usize, StoreError> {
        let old = self.keys.revocations();
        let mut cursor = 0u64;
        let mut found = Vec::new();
        loop {
            let key = old.clone();
            let (next, flat): (u64, Vec<String>) = self
                .run("kill switch migration", |mut conn| async move {
                    redis::cmd("HSCAN")
                        .arg(key)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            found.extend(flat.chunks_exact(2).filter_map(|pair| {
                let is_switch = pair[0].starts_with("subject:") || pair[0].starts_with("policy:");
                is_switch.then(|| (pair[0].clone(), pair[1].clone()))
            }));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let now = unix_now();
        let mut moved = 0;
        for (field, value) in found {
            let live = match serde_json::from_str::<Revocation>(&value) {
                Ok(r) if r.kind.is_kill_switch() => r.is_live(now),
                // Left where it is; the admin listing, which parses the whole hash, reports it.
                Ok(_) => {
                    tracing::warn!(field = %field, "an old entry named like a kill switch is not one; not moved");
                    continue;
                }
                Err(_) => {
                    tracing::warn!(field = %field, "an old kill switch entry is unreadable; not moved");
                    continue;
                }
            };
            if live {
                let (key, f, v) = (self.keys.kill_switches(), field.clone(), value.clone());
                let set: i64 = self
                    .run("kill switch migration", |mut conn| async move {
                        redis::cmd("HSETNX")
                            .arg(key)
                            .arg(f)
                            .arg(v)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                moved += set as usize;
            }
            let mut call = DELETE_IF_UNCHANGED.prepare_invoke();
            call.key(old.clone())
                .key(self.keys.revocation_expiry())
                .arg(&field)
                .arg(&value);
            let deleted: i64 = self
                .run("kill switch migration", |mut conn| async move {
                    call.invoke_async(&mut conn).await
                })
                .await?;
            if deleted == 0 {
                tracing::warn!(field = %field, "an old kill switch changed while it was moved; left for the next start");
            }
        }
        if moved > 0 {
            tracing::info!(
                moved,
                "kill switches stored by an older build were moved to their own hash"
            );
        }
        Ok(moved)
    }
}
