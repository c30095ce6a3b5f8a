//! The audit trail: [`AuditEvent`]s appended to a sink before any credential leaves the broker.

mod event;

pub use event::{AuditEvent, CacheUse, Outcome};

mod shim;
pub use shim::*;
