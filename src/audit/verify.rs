//! `verify_chain`: reads a JSONL audit file start to end and reports the first broken link.
//!
//! Streams the file line by line (memory stays flat however long the trail is) and checks, for
//! each line: it ends with a newline, its hash matches its content, it is JSON, its `seq` is the
//! previous one plus one and its `prev_hash` is the previous line's hash. It never writes.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::record::{parse_record, ChainHead};

/// An intact chain: how many events it holds and the hash of the last one (the genesis hash for
/// an empty file). Recording `last_hash` somewhere else makes later rewrites of the whole file
/// detectable too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub events: u64,
    pub last_hash: String,
}

/// The first line at which the chain does not hold, counting from 1; 0 when the file could not
/// be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ChainBreak {}

impl ChainBreak {
    fn at(line: u64, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }

    fn io(path: &Path, err: &std::io::Error) -> Self {
        Self::at(0, format!("cannot read {}: {err}", path.display()))
    }
}

/// Verifies the whole hash chain in `path`. An empty file is a valid chain of 0 events.
pub fn verify_chain(path: &Path) -> Result<ChainReport, ChainBreak> {
    let file = File::open(path).map_err(|e| ChainBreak::io(path, &e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut head = ChainHead::genesis();
    let mut line = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| ChainBreak::io(path, &e))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.pop() != Some(b'\n') {
            return Err(ChainBreak::at(
                number,
                "partial last line (no newline): the file was truncated or a write was cut short",
            ));
        }
        head = next_link(&head, &line).map_err(|reason| ChainBreak::at(number, reason))?;
    }
    Ok(ChainReport {
        events: head.seq,
        last_hash: head.hash,
    })
}

/// Checks that `line` is a sound record that follows `head`, and returns the new head.
fn next_link(head: &ChainHead, line: &[u8]) -> Result<ChainHead, String> {
    let record = parse_record(line)?;
    let expected = head.seq + 1;
    if record.seq != expected {
        return Err(format!(
            "seq {} where {expected} was expected: a line was deleted, inserted or moved",
            record.seq
        ));
    }
    if record.prev_hash != head.hash {
        let what = if head.seq == 0 {
            "the genesis hash".to_owned()
        } else {
            format!("the hash of line {}", head.seq)
        };
        return Err(format!(
            "prev_hash does not match {what}: a line was deleted, inserted or moved"
        ));
    }
    Ok(ChainHead {
        seq: record.seq,
        hash: record.hash,
    })
}
