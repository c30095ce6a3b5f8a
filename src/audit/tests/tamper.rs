//! `verify_chain` finds each kind of tampering and names the first broken line.

use super::*;
use crate::audit::verify_chain;

const EVENTS: usize = 5;

/// A fresh intact trail of `EVENTS` events and its lines.
async fn trail() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = trail_path(&dir);
    write_events(&path, 0, EVENTS).await;
    let lines = read_lines(&path);
    (dir, path, lines)
}

fn broken_line(path: &Path) -> (u64, String) {
    let broken = verify_chain(path).unwrap_err();
    (broken.line, broken.reason)
}

#[tokio::test]
async fn untouched_trail_verifies() {
    let (_dir, path, _) = trail().await;
    let report = verify_chain(&path).unwrap();
    assert_eq!(report.events, EVENTS as u64);
}

#[tokio::test]
async fn edited_field_value_is_a_hash_mismatch_on_that_line() {
    let (_dir, path, mut lines) = trail().await;
    lines[2] = lines[2].replace("deploy:read", "deploy:admin");
    write_lines(&path, &lines);
    let (line, reason) = broken_line(&path);
    assert_eq!(line, 3);
    assert!(reason.contains("hash mismatch"), "{reason}");
}

#[tokio::test]
async fn deleted_middle_line_breaks_at_the_line_that_moved_up() {
    let (_dir, path, mut lines) = trail().await;
    lines.remove(2);
    write_lines(&path, &lines);
    let (line, reason) = broken_line(&path);
    assert_eq!(line, 3);
    assert!(reason.contains("seq 4 where 3 was expected"), "{reason}");
}

#[tokio::test]
async fn swapped_lines_break_at_the_first_of_them() {
    let (_dir, path, mut lines) = trail().await;
    lines.swap(1, 2);
    write_lines(&path, &lines);
    let (line, reason) = broken_line(&path);
    assert_eq!(line, 2);
    assert!(reason.contains("seq 3 where 2 was expected"), "{reason}");
}

#[tokio::test]
async fn relinked_line_with_right_seq_but_wrong_prev_hash_is_caught() {
    // A forger renumbers line 3 after deleting the real one, keeping its own hash valid.
    let (_dir, path, mut lines) = trail().await;
    let forged = lines[3].replace("\"seq\":4", "\"seq\":3");
    let body = format!("{}}}", &forged[..forged.len() - 75]);
    let hash = crate::domain::sha256_hex(body.as_bytes());
    lines[3] = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
    lines.remove(2);
    write_lines(&path, &lines);
    let (line, reason) = broken_line(&path);
    assert_eq!(line, 3);
    assert!(
        reason.contains("prev_hash does not match the hash of line 2"),
        "{reason}"
    );
}

#[tokio::test]
async fn truncated_last_line_is_reported_as_partial() {
    let (_dir, path, _) = trail().await;
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    let (line, reason) = broken_line(&path);
    assert_eq!(line, EVENTS as u64);
    assert!(reason.contains("partial last line"), "{reason}");
}

#[tokio::test]
async fn appended_garbage_is_reported_on_its_line() {
    let (_dir, path, mut lines) = trail().await;
    lines.push("this is not json".to_owned());
    write_lines(&path, &lines);
    let (line, reason) = broken_line(&path);
    assert_eq!(line, EVENTS as u64 + 1);
    assert!(reason.contains("not a chained record"), "{reason}");
}

#[tokio::test]
async fn first_line_must_start_from_the_genesis_hash() {
    let (_dir, path, mut lines) = trail().await;
    lines.remove(0);
    write_lines(&path, &lines);
    let (line, _) = broken_line(&path);
    assert_eq!(line, 1);
}

#[test]
fn empty_file_is_a_chain_of_zero_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.jsonl");
    std::fs::write(&path, "").unwrap();
    let report = verify_chain(&path).unwrap();
    assert_eq!(report.events, 0);
    assert_eq!(report.last_hash, crate::audit::record::GENESIS_HASH);
}

#[test]
fn missing_file_is_a_break_at_line_zero() {
    let dir = tempfile::tempdir().unwrap();
    let broken = verify_chain(&dir.path().join("absent.jsonl")).unwrap_err();
    assert_eq!(broken.line, 0);
    assert!(broken.to_string().starts_with("line 0: cannot read"));
}
