//! Tests of the JSONL sink and the chain verifier against real files in temp directories.
//! Shared helpers live here; each file covers one behaviour family.

mod disk;
mod failure;
mod sink;
mod tamper;

use std::path::{Path, PathBuf};

use super::{AuditEvent, AuditSink, FsyncPolicy, JsonlAuditSink, Outcome};

/// A realistic event; `n` makes each one distinct.
pub(super) fn event(n: usize) -> AuditEvent {
    AuditEvent {
        time: "2025-01-01T00:00:00.000Z".to_owned(),
        exchange_id: format!("ex-{n}"),
        request_id: format!("req-{n}"),
        decision: Some(Outcome::Allow),
        reason: "granted".to_owned(),
        issuer: Some("https://token.actions.githubusercontent.com".to_owned()),
        subject: Some("repo:acme/app:ref:refs/heads/main".to_owned()),
        scopes_granted: vec!["deploy:read".to_owned()],
        ..AuditEvent::default()
    }
}

pub(super) fn trail_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("audit").join("trail.jsonl")
}

/// Opens `path`, appends events `from..to` one after another, and closes the sink.
pub(super) async fn write_events(path: &Path, from: usize, to: usize) {
    let sink = JsonlAuditSink::open(path, FsyncPolicy::Never).unwrap();
    for n in from..to {
        sink.append(&event(n)).await.unwrap();
    }
}

pub(super) fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(super) fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}
