//! What the sink does when the disk fails under it: the batch fails, the sink is poisoned, and
//! the file keeps exactly the acknowledged records (or, if even that fails, refuses to reopen).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::disk::open_flaky;
use super::*;
use crate::audit::verify_chain;
use crate::audit::AuditError;
use crate::audit::AuditSink;

#[tokio::test]
async fn failed_write_fails_the_append_and_poisons_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let (sink, faults) = open_flaky(&path);
    sink.append(&event(0)).await.unwrap();
    assert_eq!(sink.health(), Ok(()));

    faults.write.store(true, Ordering::SeqCst);
    let err = sink.append(&event(1)).await.unwrap_err();
    assert!(matches!(err, AuditError::WriteFailed(_)), "{err}");

    faults.write.store(false, Ordering::SeqCst);
    let err = sink.append(&event(2)).await.unwrap_err();
    assert!(matches!(err, AuditError::Poisoned(_)), "{err}");
    assert!(
        sink.health().is_err(),
        "a poisoned sink must report itself unhealthy"
    );
}

#[tokio::test]
async fn failed_write_leaves_only_acknowledged_records_and_restart_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let (sink, faults) = open_flaky(&path);
    for n in 0..3 {
        sink.append(&event(n)).await.unwrap();
    }
    faults.write.store(true, Ordering::SeqCst);
    sink.append(&event(3)).await.unwrap_err();
    drop(sink);

    assert_eq!(verify_chain(&path).unwrap().events, 3);
    write_events(&path, 4, 5).await;
    assert_eq!(verify_chain(&path).unwrap().events, 4);
}

#[tokio::test]
async fn failed_sync_drops_the_unsynced_batch_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let (sink, faults) = open_flaky(&path);
    sink.append(&event(0)).await.unwrap();
    faults.sync.store(true, Ordering::SeqCst);
    let err = sink.append(&event(1)).await.unwrap_err();
    assert!(matches!(err, AuditError::WriteFailed(_)), "{err}");
    drop(sink);

    assert_eq!(verify_chain(&path).unwrap().events, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_waiter_of_a_failed_batch_gets_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let (sink, faults) = open_flaky(&path);
    let sink = Arc::new(sink);
    sink.append(&event(0)).await.unwrap();
    faults.sync.store(true, Ordering::SeqCst);

    let tasks: Vec<_> = (1..=32)
        .map(|n| {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move { sink.append(&event(n)).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    drop(sink);
    assert_eq!(verify_chain(&path).unwrap().events, 1);
}

#[tokio::test]
async fn partial_line_left_by_a_failed_rollback_blocks_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    let (sink, faults) = open_flaky(&path);
    sink.append(&event(0)).await.unwrap();
    faults.write.store(true, Ordering::SeqCst);
    faults.truncate.store(true, Ordering::SeqCst);
    sink.append(&event(1)).await.unwrap_err();
    drop(sink);

    let err = JsonlAuditSink::open(&path, FsyncPolicy::Always)
        .err()
        .unwrap();
    assert!(matches!(err, AuditError::DamagedTail { .. }), "{err}");
    assert_eq!(verify_chain(&path).unwrap_err().line, 2);
}
