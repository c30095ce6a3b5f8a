//! Moving state that older builds kept elsewhere, once per replica start.
//!
//! Builds before kill switches had their own hash kept them in the revocations hash, beside the
//! revocations by id (fields `subject:<glob>` and `policy:<name>`). This build reads kill
//! switches only from `P{killswitches}`, so one left there would be listed by `ferry admin` but
//! never enforced. The first successful state check of a replica moves every such field: copy
//! with `HSETNX` (an entry this build already set wins), then delete from the old hash. Both
//! steps are idempotent, so replicas starting together, or a move cut short by a fault and
//! retried at the next check, leave one copy. An entry already past `keep_until` is dropped, not
//! copied. Replicas of an older build still running stop enforcing a moved switch, so an upgrade
//! should finish before relying on one.

use redis::Value;

use super::RedisStore;
use crate::domain::unix_now;
use crate::store::{Revocation, StoreError};

/// Fields per `HSCAN` step.
const SCAN_COUNT: usize = 1000;

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
                // Not a kill switch this build can read: left where it is, and the admin
                // listing, which parses the whole hash, reports it.
                _ => {
                    tracing::warn!(field = %field, "an old kill switch entry is unreadable; not moved");
                    continue;
                }
            };
            if live {
                let (key, f, v) = (self.keys.kill_switches(), field.clone(), value);
                self.run("kill switch migration", |mut conn| async move {
                    redis::cmd("HSETNX")
                        .arg(key)
                        .arg(f)
                        .arg(v)
                        .query_async::<Value>(&mut conn)
                        .await
                })
                .await?;
                moved += 1;
            }
            let (key, expiry) = (old.clone(), self.keys.revocation_expiry());
            self.run("kill switch migration", |mut conn| async move {
                redis::pipe()
                    .cmd("HDEL")
                    .arg(key)
                    .arg(&field)
                    .ignore()
                    .cmd("ZREM")
                    .arg(expiry)
                    .arg(&field)
                    .ignore()
                    .exec_async(&mut conn)
                    .await
            })
            .await?;
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
