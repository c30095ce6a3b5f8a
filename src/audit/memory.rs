//! `MemoryAuditSink`: keeps events in a `Vec`, for tests and embedded demos. No chain, no file.
//!
//! `set_failing(true)` makes every append fail, so tests can check that an exchange whose audit
//! event cannot be recorded issues no credential; `fail_after(n)` fails every append once it
//! holds `n` events (a disk that fills up mid-exchange).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{AuditError, AuditEvent, AuditSink};

#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
    failing: AtomicBool,
    capacity: Mutex<Option<usize>>,
}

impl MemoryAuditSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every event appended so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// While `true`, `append` returns [`AuditError::Unavailable`] and records nothing.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Appends fail once the sink holds `n` events.
    pub fn fail_after(&self, n: usize) {
        *self.capacity.lock().unwrap_or_else(PoisonError::into_inner) = Some(n);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AuditEvent>> {
        // A test that panicked while holding the lock leaves a Vec that is still whole.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl AuditSink for MemoryAuditSink {
    async fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError::Unavailable);
        }
        let capacity = *self.capacity.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = self.lock();
        if capacity.is_some_and(|n| events.len() >= n) {
            return Err(AuditError::Unavailable);
        }
        events.push(event.clone());
        Ok(())
    }

    fn health(&self) -> Result<(), String> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("audit sink set to fail".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> AuditEvent {
        AuditEvent {
            exchange_id: id.to_owned(),
            ..AuditEvent::default()
        }
    }

    #[tokio::test]
    async fn memory_sink_keeps_events_in_order() {
        let sink = MemoryAuditSink::new();
        sink.append(&event("a")).await.unwrap();
        sink.append(&event("b")).await.unwrap();
        let ids: Vec<_> = sink.events().into_iter().map(|e| e.exchange_id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(sink.len(), 2);
    }

    #[tokio::test]
    async fn failing_memory_sink_refuses_and_records_nothing_until_restored() {
        let sink = MemoryAuditSink::new();
        sink.set_failing(true);
        let err = sink.append(&event("a")).await.unwrap_err();
        assert!(matches!(err, AuditError::Unavailable));
        assert!(sink.is_empty());
        sink.set_failing(false);
        sink.append(&event("b")).await.unwrap();
        assert_eq!(sink.len(), 1);
    }
}
