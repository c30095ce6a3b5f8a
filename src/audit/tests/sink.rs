//! `JsonlAuditSink`: the chain it writes, how it continues across restarts, and when it refuses
//! to open.

use std::collections::HashSet;
use std::sync::Arc;

use super::*;
use crate::audit::{verify_chain, AuditError};

#[tokio::test]
async fn chain_is_intact_after_many_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    write_events(&path, 0, 50).await;
    assert_eq!(verify_chain(&path).unwrap().events, 50);
}

#[tokio::test]
async fn each_line_holds_the_event_fields_between_the_chain_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    write_events(&path, 7, 8).await;
    let line = &read_lines(&path)[0];
    assert!(line.starts_with(r#"{"seq":1,"prev_hash":"0000"#), "{line}");
    let record: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(record["exchange_id"], "ex-7");
    assert_eq!(record["decision"], "allow");
    let event: AuditEvent = serde_json::from_value(record).unwrap();
    assert_eq!(event, super::event(7));
}

#[test]
fn no_event_field_collides_with_a_chain_field() {
    let full = AuditEvent {
        client_addr: Some(String::new()),
        policy: Some(String::new()),
        policy_file: Some(String::new()),
        policy_set_version: Some(String::new()),
        token_jti: Some(String::new()),
        token_sha256: Some(String::new()),
        audience: Some(String::new()),
        scopes_requested: vec![String::new()],
        credential_id: Some(String::new()),
        credential_expires_at: Some(0),
        cache: Some(crate::audit::CacheUse::Hit),
        trace: Some(serde_json::Value::Null),
        observations: Some(serde_json::Value::Null),
        ..event(0)
    };
    let value = serde_json::to_value(full).unwrap();
    for chain_field in ["seq", "prev_hash", "hash"] {
        assert!(value.get(chain_field).is_none(), "{chain_field}");
    }
}

#[tokio::test]
async fn reopening_continues_the_chain_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    write_events(&path, 0, 3).await;
    let hash_before = verify_chain(&path).unwrap().last_hash;
    write_events(&path, 3, 5).await;

    let report = verify_chain(&path).unwrap();
    assert_eq!(report.events, 5);
    let fourth: serde_json::Value = serde_json::from_str(&read_lines(&path)[3]).unwrap();
    assert_eq!(fourth["seq"], 4);
    assert_eq!(fourth["prev_hash"], hash_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_all_land_in_one_intact_chain() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let sink = Arc::new(JsonlAuditSink::open(&path, FsyncPolicy::Always).unwrap());
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    sink.append(&event(t * PER_TASK + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    drop(sink);

    let total = TASKS * PER_TASK;
    assert_eq!(verify_chain(&path).unwrap().events, total as u64);
    let ids: HashSet<String> = read_lines(&path)
        .iter()
        .map(|l| serde_json::from_str::<AuditEvent>(l).unwrap().exchange_id)
        .collect();
    assert_eq!(ids.len(), total, "every event exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_one_sync_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let (sink, faults) = super::disk::open_flaky(&path);
    let sink = Arc::new(sink);
    let tasks: Vec<_> = (0..256)
        .map(|n| {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move { sink.append(&event(n)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let syncs = faults.syncs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(syncs < 128, "{syncs} syncs for 256 concurrent appends");
    drop(sink);
    assert_eq!(verify_chain(&path).unwrap().events, 256);
}

#[tokio::test]
async fn partial_last_line_refuses_to_open_and_points_at_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    write_events(&path, 0, 3).await;
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();

    let err = JsonlAuditSink::open(&path, FsyncPolicy::Always)
        .err()
        .unwrap();
    assert!(matches!(err, AuditError::DamagedTail { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("ferry audit verify"), "{message}");
    assert!(message.contains("move the file aside"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..bytes.len() - 10]);
}

#[tokio::test]
async fn unparseable_last_record_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    write_events(&path, 0, 3).await;
    let mut lines = read_lines(&path);
    lines.push(r#"{"seq":4,"oops":true}"#.to_owned());
    write_lines(&path, &lines);

    let err = JsonlAuditSink::open(&path, FsyncPolicy::Always)
        .err()
        .unwrap();
    assert!(matches!(err, AuditError::DamagedTail { .. }), "{err}");
}

#[tokio::test]
async fn tail_is_found_when_the_last_line_spans_several_read_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let sink = JsonlAuditSink::open(&path, FsyncPolicy::Never).unwrap();
    sink.append(&event(0)).await.unwrap();
    let big = AuditEvent {
        trace: Some(serde_json::Value::String("x".repeat(40_000))),
        ..event(1)
    };
    sink.append(&big).await.unwrap();
    drop(sink);
    write_events(&path, 2, 3).await;
    assert_eq!(verify_chain(&path).unwrap().events, 3);
}

#[test]
fn second_open_of_the_same_file_is_refused_while_the_first_is_alive() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let first = JsonlAuditSink::open(&path, FsyncPolicy::Never).unwrap();
    let err = JsonlAuditSink::open(&path, FsyncPolicy::Never)
        .err()
        .unwrap();
    assert!(matches!(err, AuditError::Locked { .. }), "{err}");
    drop(first);
    JsonlAuditSink::open(&path, FsyncPolicy::Never).unwrap();
}

#[cfg(unix)]
#[test]
fn new_trail_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let _sink = JsonlAuditSink::open(&path, FsyncPolicy::Always).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn fsync_policy_reads_lowercase_names_and_defaults_to_always() {
    let never: FsyncPolicy = serde_json::from_str(r#""never""#).unwrap();
    assert_eq!(never, FsyncPolicy::Never);
    assert_eq!(FsyncPolicy::default(), FsyncPolicy::Always);
    assert_eq!(
        serde_json::to_string(&FsyncPolicy::Always).unwrap(),
        r#""always""#
    );
}
