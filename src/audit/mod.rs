//! The audit trail: one [`AuditEvent`] per `/token` request, appended to an [`AuditSink`] before
//! any credential leaves the broker. If the append fails, no credential is issued.
//!
//! Layout: `event` (the event, the contract with the exchange service), `record` (the line
//! format below, the only code that knows it), `writer` (the group-commit thread), `jsonl`
//! ([`JsonlAuditSink`]: open, lock, tail), `verify` ([`verify_chain`]), `memory`
//! ([`MemoryAuditSink`] for tests), `stream` (following the Redis audit stream that
//! `store::redis` appends to, for `ferry audit tail`).
//!
//! # File format (for operators and SIEMs verifying the trail independently)
//!
//! UTF-8 JSON Lines. Every line, including the last, ends with `\n`. Line *N* (from 1) is:
//!
//! ```text
//! {"seq":N,"prev_hash":"<64 hex>",<event members>,"hash":"<64 hex>"}
//! ```
//!
//! * `seq` is 1 on the first line and grows by exactly 1 per line.
//! * `prev_hash` is the `hash` of line *N-1*; on line 1 it is 64 zeros.
//! * `hash` is the lowercase hex SHA-256 of the exact bytes *B* of the line without its hash
//!   member: *B* is the line with the final `,"hash":"<64 hex>"}` (75 bytes) replaced by `}`.
//!   No JSON canonicalisation is involved: hash the bytes as they are in the file.
//! * The event members are those of [`AuditEvent`]; none is named `seq`, `prev_hash` or `hash`.
//!
//! To verify: for each line, check it ends with `\n`; strip the 75-byte suffix, append `}`,
//! SHA-256 the result and compare with the suffix's hex; parse the result as JSON and check `seq`
//! and `prev_hash` against the previous line. In shell, for one line `L` (no newline):
//! `printf '%s}' "${L%,\"hash\":*}" | sha256sum`. [`verify_chain`] does all of it and names the
//! first broken line; `ferry audit verify FILE` prints that.
//!
//! The chain shows edits, deletions, reordering and truncation *inside* the file. Someone able
//! to rewrite the whole file can rewrite the chain too, so ship the lines (or at least the latest
//! `hash`, [`ChainReport::last_hash`]) off the host as they are written.
//!
//! # Durability and failure
//!
//! With [`FsyncPolicy::Always`] an append returns only after its record is synced to disk
//! (`fdatasync`), shared by every append in the same batch. A failed write or sync poisons the
//! sink until restart; the `writer` module doc says why it does not retry. An append that was
//! sent and then cancelled by its caller is still written.

mod error;
mod event;
mod gap;
mod jsonl;
mod memory;
mod record;
mod stream;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use error::AuditError;
pub use event::{AuditEvent, CacheUse, Outcome};
pub use jsonl::JsonlAuditSink;
pub use memory::MemoryAuditSink;
pub use record::EventJson;
pub use stream::{tail, TailOptions};
pub use verify::{verify_chain, ChainBreak, ChainReport};

/// Where audit events go. Implementations: [`JsonlAuditSink`], [`MemoryAuditSink`].
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Returns only after the event is written (and, with [`FsyncPolicy::Always`], synced to
    /// disk). An error means the event may not be recorded: the caller must not issue the
    /// credential.
    async fn append(&self, event: &AuditEvent) -> Result<(), AuditError>;

    /// [`AuditSink::append`] of an event the caller has serialized already (`json` is
    /// [`EventJson::new`] of `event`), so that a sink writing JSON does not serialize it again.
    async fn append_json(&self, event: &AuditEvent, json: &EventJson) -> Result<(), AuditError> {
        let _ = json;
        self.append(event).await
    }

    /// `Err` with a reason once the sink can no longer record (e.g. a failed write poisoned
    /// it); `/readyz` reports it so a load balancer stops sending exchanges here.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Serializes `event` once and appends it to `sink`; the bytes come back for the store's audit
/// stream, so the file and the stream record the same event.
pub async fn append_serialized(
    sink: &dyn AuditSink,
    event: &AuditEvent,
) -> Result<EventJson, AuditError> {
    let json = EventJson::new(event)?;
    sink.append_json(event, &json).await?;
    Ok(json)
}

/// Whether each batch of appends is synced to disk before the appenders are answered.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `fdatasync` after every batch: an acknowledged event survives a power loss.
    #[default]
    Always,
    /// Leave flushing to the OS: an acknowledged event survives a broker crash, not a power loss.
    Never,
}
