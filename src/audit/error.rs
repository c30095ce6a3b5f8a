//! The audit layer's one error type.
//!
//! The exchange service maps every variant to the same outcome: no credential is issued
//! (503 `temporarily_unavailable`, see SECURITY.md). The variants exist for the operator: each
//! message says what happened and, where there is one, what to do.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("audit log {} is locked by another process (two writers would fork the chain)", .path.display())]
    Locked { path: PathBuf },

    /// Opening found a partial or unparseable last line. Continuing would either hide the damage
    /// or start a second chain inside the same file, so the sink refuses to start.
    #[error(
        "audit log {path} ends in a damaged record ({reason}); refusing to continue its chain. \
         Run `ferry audit verify {path}` to find the first broken line, then move the file aside \
         so that a new chain starts in a fresh file",
        path = .path.display()
    )]
    DamagedTail { path: PathBuf, reason: String },

    #[error("serializing the audit event failed: {0}")]
    Serialize(#[from] serde_json::Error),

    /// This append's batch could not be written or synced. The sink is poisoned from now on.
    #[error("writing the audit log failed; the sink refuses further appends until restart: {0}")]
    WriteFailed(#[source] Arc<io::Error>),

    /// An earlier batch failed; see [`AuditError::WriteFailed`].
    #[error("the audit log is unusable after an earlier write failure; restart the broker: {0}")]
    Poisoned(#[source] Arc<io::Error>),

    /// The writer thread is gone (it panicked); nothing can be written.
    #[error("the audit writer thread has stopped")]
    WriterStopped,

    /// The sink cannot take events (the in-memory sink's simulated outage).
    #[error("the audit sink is unavailable")]
    Unavailable,
}
