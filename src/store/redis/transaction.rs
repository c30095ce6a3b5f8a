//! The commit on one server: a `MULTI`/`EXEC` transaction of plain commands, sent as one write
//! and answered as one (one round trip), run by `redis-server` as one unit.
//!
//! A Lua script did this before. Replayed alone against `redis-server` on the 2-core bench
//! machine, the script cost it 18.6 µs per commit and the transaction 10.4 µs (the
//! `redis-server` column of `benches/redis_load.sh` shows the same in a whole run), and the
//! commit has no decision to make: append the audit event, store the record. A transaction does not stop at a failing command
//! the way a script does, so [`RedisStore::transact`] reads each reply: if the append failed,
//! the commit fails (nothing is released) and the records its `SET`s stored are deleted, so
//! that no later cache hit serves a credential whose minting was never streamed. Memory
//! pressure (`maxmemory`) refuses the whole `EXEC` before any command runs.

use redis::{Pipeline, Value};

use super::RedisStore;
use crate::store::StoreError;

/// One commit's commands, in order: the stream append (when there is one) first, then the
/// records.
pub(super) struct Transaction {
    pipe: Pipeline,
    /// `true` when the first command is the `XADD`.
    appends: bool,
    /// The keys of the `SET`s, in order.
    stored: Vec<String>,
}

impl Default for Transaction {
    fn default() -> Self {
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        Transaction {
            pipe,
            appends: false,
            stored: Vec::new(),
        }
    }
}

impl Transaction {
    /// `XADD stream MAXLEN ~ maxlen * event <json>`. Must come before any `set`.
    pub(super) fn append(&mut self, stream: String, maxlen: u64, event: String) {
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

    fn len(&self) -> usize {
        usize::from(self.appends) + self.stored.len()
    }
}

/// `XADD stream MAXLEN ~ maxlen * event <json>`: an audit event appended to the stream.
pub(super) fn xadd(stream: String, maxlen: u64, event: String) -> redis::Cmd {
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

/// What the replies of a transaction call for.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// A command failed; `undo` are the keys to delete (stored, though the append failed).
    Failed {
        error: String,
        undo: Vec<String>,
    },
}

fn outcome(tx: &Transaction, replies: &[Value]) -> Outcome {
    if replies.len() != tx.len() {
        return Outcome::Failed {
            error: format!(
                "the transaction answered {} replies for {} commands",
                replies.len(),
                tx.len()
            ),
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
    /// Runs `tx` (one round trip); `Ok` only when every command succeeded. When the append
    /// failed, deletes what the transaction stored (one more round trip, on that path only).
    pub(super) async fn transact(
        &self,
        what: &'static str,
        tx: Transaction,
    ) -> Result<(), StoreError> {
        let pipe = &tx.pipe;
        let replies: Option<Vec<Value>> = self
            .run(
                what,
                |mut conn| async move { pipe.query_async(&mut conn).await },
            )
            .await?;
        let Some(replies) = replies else {
            return Err(StoreError::Unavailable(format!(
                "redis {what}: the transaction was not run"
            )));
        };
        match outcome(&tx, &replies) {
            Outcome::Done => Ok(()),
            Outcome::Failed { error, undo } => {
                if !undo.is_empty() {
                    // Best effort: the commit has failed either way.
                    let _ = self
                        .run(what, |mut conn| async move {
                            redis::cmd("DEL").arg(undo).exec_async(&mut conn).await
                        })
                        .await;
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

    fn commit() -> Transaction {
        let mut tx = Transaction::default();
        tx.append("audit".into(), 10, "{}".into());
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
    fn a_reply_count_that_does_not_match_fails_the_commit() {
        assert!(matches!(
            outcome(&commit(), &[Value::Okay]),
            Outcome::Failed { .. }
        ));
        let mut put = Transaction::default();
        put.set("cred".into(), "record".into(), 1000);
        assert_eq!(outcome(&put, &[Value::Okay]), Outcome::Done);
    }
}
