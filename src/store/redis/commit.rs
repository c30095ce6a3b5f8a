//! The commit on one server: plain commands pipelined, sent as one write and answered as one
//! (one round trip): append the audit event with `XADD`, store the record with `SET PX`.
//!
//! Neither a Lua script nor `MULTI`/`EXEC`: the commit has no decision to make, and both cost
//! `redis-server` more than the commands (callgrind, `benches/redis_instructions.sh`: a
//! transaction's `MULTI`, `EXEC` and queueing cost about a quarter of what a miss asks of it).
//! Nothing needs the commands isolated from other clients': what matters is that nothing is
//! released unless the append succeeded, and that no record stays cached whose minting was never
//! streamed. So [`RedisStore::send_commit`] reads each reply: if the append failed, the commit
//! fails (nothing is released) and the records its `SET`s stored are deleted. Under `maxmemory`
//! the append and the `SET`s are refused alike.
//!
//! A record cached while the revocations hash has no epoch (a fresh or flushed Redis) carries a
//! new one, which the commit sets with `HSETNX` (`plain_trip` explains why this is safe in any
//! order against a concurrent revocation).

use redis::{Pipeline, Value};

use super::RedisStore;
use crate::store::StoreError;

/// One commit's commands, in order: the stream append (when there is one) first, then the
/// records.
pub(super) struct Commit {
    pipe: Pipeline,
    /// `true` when the first command is the `XADD`.
    appends: bool,
    /// The keys of the `SET`s, in order.
    stored: Vec<String>,
}

impl Default for Commit {
    fn default() -> Self {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        Commit {
            pipe,
            appends: false,
            stored: Vec::new(),
        }
    }
}

impl Commit {
    /// `XADD stream MAXLEN ~ maxlen * event <json>`. Must come before any `set`.
    pub(super) fn append(&mut self, stream: String, maxlen: u64, event: &[u8]) {
        debug_assert!(self.stored.is_empty(), "the append comes first");
        self.pipe.add_command(xadd(stream, maxlen, event));
        self.appends = true;
    }

    /// `SET key value PX ttl_ms`.
    pub(super) fn set(&mut self, key: String, value: String, ttl_ms: u64) {
        self.pipe
            .cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("PX")
            .arg(ttl_ms);
        self.stored.push(key);
    }

    /// `HSETNX revocations ~epoch epoch`, its reply ignored: the epoch a record of this commit
    /// was stamped with, for when the hash had none.
    pub(super) fn establish_epoch(&mut self, revocations: String, epoch: &str) {
        self.pipe
            .cmd("HSETNX")
            .arg(revocations)
            .arg(super::plain_trip::EPOCH_FIELD)
            .arg(epoch)
            .ignore();
    }

    fn len(&self) -> usize {
        usize::from(self.appends) + self.stored.len()
    }
}

/// `XADD stream MAXLEN ~ maxlen * event <json>`: an audit event appended to the stream.
pub(super) fn xadd(stream: String, maxlen: u64, event: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(maxlen)
        .arg("*")
        .arg("event")
        .arg(event);
    cmd
}

/// What the replies of a commit call for.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// A command failed; `undo` are the keys to delete (stored, though the append failed).
    Failed {
        error: String,
        undo: Vec<String>,
    },
}

fn outcome(tx: &Commit, replies: &[Value]) -> Outcome {
    if replies.len() != tx.len() {
        return Outcome::Failed {
            error: format!("{} replies to {} commands", replies.len(), tx.len()),
            undo: Vec::new(),
        };
    }
    let error = |v: &Value| match v {
        Value::ServerError(e) => Some(e.to_string()),
        _ => None,
    };
    let (append, sets) = replies.split_at(usize::from(tx.appends));
    if let Some(e) = append.first().and_then(error) {
        let undo = tx
            .stored
            .iter()
            .zip(sets)
            .filter(|(_, reply)| error(reply).is_none())
            .map(|(key, _)| key.clone())
            .collect();
        return Outcome::Failed { error: e, undo };
    }
    match sets.iter().find_map(error) {
        Some(e) => Outcome::Failed {
            error: e,
            undo: Vec::new(),
        },
        None => Outcome::Done,
    }
}

impl RedisStore {
    /// Sends `tx` (one round trip); `Ok` only when every command succeeded. When the append
    /// failed, deletes what the commit stored (one more round trip, on that path only).
    pub(super) async fn send_commit(
        &self,
        what: &'static str,
        tx: Commit,
    ) -> Result<(), StoreError> {
        let pipe = &tx.pipe;
        let replies: Vec<Value> = self
            .run(
                what,
                |mut conn| async move { pipe.query_async(&mut conn).await },
            )
            .await?;
        match outcome(&tx, &replies) {
            Outcome::Done => Ok(()),
            Outcome::Failed { error, undo } => {
                if !undo.is_empty() {
                    // Best effort: the commit has failed either way. If the delete fails too,
                    // the entry stays cached: a later hit serves it with an audit record of its
                    // own, but the stream lacks the record of its minting (the file has it).
                    let undone = self
                        .run(what, |mut conn| async move {
                            redis::cmd("DEL").arg(undo).exec_async(&mut conn).await
                        })
                        .await;
                    if let Err(e) = undone {
                        tracing::warn!(error = %e, "a failed commit's cache entry could not be deleted");
                    }
                }
                Err(StoreError::Unavailable(format!("redis {what}: {error}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed command's reply, as the server sends it.
    fn failure() -> Value {
        let reply = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        let value = redis::parse_redis_value(reply).unwrap();
        assert!(matches!(value, Value::ServerError(_)));
        value
    }

    fn commit() -> Commit {
        let mut tx = Commit::default();
        tx.append("audit".into(), 10, b"{}");
        tx.set("cred".into(), "record".into(), 1000);
        tx
    }

    #[test]
    fn a_commit_is_done_only_when_every_command_succeeded() {
        let tx = commit();
        assert_eq!(
            outcome(&tx, &[Value::BulkString(b"1-0".to_vec()), Value::Okay]),
            Outcome::Done
        );
        let Outcome::Failed { undo, .. } =
            outcome(&tx, &[Value::BulkString(b"1-0".to_vec()), failure()])
        else {
            panic!("a failed SET fails the commit");
        };
        assert!(undo.is_empty(), "the event was streamed: nothing to undo");
    }

    #[test]
    fn a_failed_append_fails_the_commit_and_undoes_what_was_stored() {
        let Outcome::Failed { error, undo } = outcome(&commit(), &[failure(), Value::Okay]) else {
            panic!("a failed XADD fails the commit");
        };
        assert!(error.contains("WRONGTYPE"), "{error}");
        assert_eq!(undo, ["cred"]);
    }

    #[test]
    fn setting_a_fresh_epoch_adds_no_reply_to_read() {
        let mut tx = Commit::default();
        tx.append("audit".into(), 10, b"{}");
        tx.establish_epoch("revocations".into(), "e1");
        tx.set("cred".into(), "record".into(), 1000);
        let packed = String::from_utf8_lossy(&tx.pipe.get_packed_pipeline()).into_owned();
        assert!(packed.contains("HSETNX"), "{packed}");
        assert_eq!(
            outcome(&tx, &[Value::BulkString(b"1-0".to_vec()), Value::Okay]),
            Outcome::Done
        );
    }

    #[test]
    fn a_reply_count_that_does_not_match_fails_the_commit() {
        assert!(matches!(
            outcome(&commit(), &[Value::Okay]),
            Outcome::Failed { .. }
        ));
        let mut put = Commit::default();
        put.set("cred".into(), "record".into(), 1000);
        assert_eq!(outcome(&put, &[Value::Okay]), Outcome::Done);
    }
}
