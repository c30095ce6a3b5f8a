//! The chained record: how one [`AuditEvent`](super::AuditEvent) becomes one JSONL line, and how
//! a line is taken apart again.
//!
//! This file is the only place that knows the byte layout described in the module doc of
//! [`crate::audit`]; the writer, the tail reader and `verify_chain` all go through it, so they
//! cannot disagree. It does no I/O.

use serde::Deserialize;

use crate::domain::sha256_hex;

use super::AuditEvent;

/// `prev_hash` of the first record: 64 zeros.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// What precedes the hex digest at the end of every line.
const HASH_OPEN: &[u8] = b",\"hash\":\"";
/// What follows the hex digest: the record's closing brace. The newline is not part of the line.
const HASH_CLOSE: &[u8] = b"\"}";
const HEX_LEN: usize = 64;
const SUFFIX_LEN: usize = HASH_OPEN.len() + HEX_LEN + HASH_CLOSE.len();

/// The end of the chain so far: the next record gets `seq + 1` and `prev_hash = hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainHead {
    pub(crate) seq: u64,
    pub(crate) hash: String,
}

impl ChainHead {
    pub(crate) fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// An event serialized once, on the caller's thread, as a JSON object: the exchange service
/// hands the same bytes to the audit file and to the store's audit stream. Only
/// [`EventJson::new`] builds one, so the bytes always start with `{`.
#[derive(Debug, Clone)]
pub struct EventJson(Vec<u8>);

impl EventJson {
    pub fn new(event: &AuditEvent) -> Result<Self, serde_json::Error> {
        serde_json::to_vec(event).map(Self)
    }

    /// The JSON object, as `serde_json::to_vec(event)` gave it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn from_raw(object: &str) -> Self {
        assert!(object.starts_with('{') && object.ends_with('}'));
        Self(object.as_bytes().to_vec())
    }

    /// Everything after the object's `{`: its members and the closing `}`.
    fn members(&self) -> &[u8] {
        self.0.get(1..).unwrap_or(b"}")
    }
}

/// Appends the line for `event` to `buf`, newline included; `head` advances to the new record.
///
/// The event's own `{` is dropped and `"seq"` and `"prev_hash"` are written in front of its
/// members. Work per record: one SHA-256 over the body, no allocation beyond `buf` growth and
/// the hex string.
pub(crate) fn append_record(buf: &mut Vec<u8>, head: &mut ChainHead, event: &EventJson) {
    let seq = head.seq + 1;
    let start = buf.len();
    buf.extend_from_slice(b"{\"seq\":");
    buf.extend_from_slice(seq.to_string().as_bytes());
    buf.extend_from_slice(b",\"prev_hash\":\"");
    buf.extend_from_slice(head.hash.as_bytes());
    buf.push(b'"');
    match event.members() {
        b"}" => buf.push(b'}'),
        members => {
            buf.push(b',');
            buf.extend_from_slice(members);
        }
    }
    let hash = sha256_hex(&buf[start..]);
    buf.pop(); // the body's final `}`, replaced by the hash member and a new `}`
    buf.extend_from_slice(HASH_OPEN);
    buf.extend_from_slice(hash.as_bytes());
    buf.extend_from_slice(HASH_CLOSE);
    buf.push(b'\n');
    *head = ChainHead { seq, hash };
}

/// The fields of a record that link it into the chain; the event's fields are ignored.
#[derive(Debug, Deserialize)]
struct Link {
    seq: u64,
    prev_hash: String,
}

/// A line (without its newline) taken apart and checked against its own hash.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParsedRecord {
    pub(crate) seq: u64,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

/// Splits `line` into body and stated hash, recomputes the hash over the body and parses the
/// link fields. Errors are the human-readable reason a verifier reports.
pub(crate) fn parse_record(line: &[u8]) -> Result<ParsedRecord, String> {
    let (body_without_close, stated) = split_hash(line)?;
    let mut body = Vec::with_capacity(body_without_close.len() + 1);
    body.extend_from_slice(body_without_close);
    body.push(b'}');
    let actual = sha256_hex(&body);
    if actual != stated {
        return Err(format!(
            "hash mismatch (record says {stated}, content hashes to {actual}): the line was edited"
        ));
    }
    let link: Link =
        serde_json::from_slice(&body).map_err(|e| format!("record is not valid JSON: {e}"))?;
    if !is_lower_hex_digest(link.prev_hash.as_bytes()) {
        return Err("prev_hash is not 64 lowercase hex digits".to_owned());
    }
    Ok(ParsedRecord {
        seq: link.seq,
        prev_hash: link.prev_hash,
        hash: actual,
    })
}

/// `line` minus its `,"hash":"<hex>"}` suffix, and the hex.
fn split_hash(line: &[u8]) -> Result<(&[u8], &str), String> {
    let not_a_record = || "not a chained record (no trailing \"hash\" member)".to_owned();
    if line.len() < SUFFIX_LEN + 1 || !line.starts_with(b"{") {
        return Err(not_a_record());
    }
    let (body, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let (open, rest) = suffix.split_at(HASH_OPEN.len());
    let (hex, close) = rest.split_at(HEX_LEN);
    if open != HASH_OPEN || close != HASH_CLOSE || !is_lower_hex_digest(hex) {
        return Err(not_a_record());
    }
    // is_lower_hex_digest guarantees ASCII.
    let hex = std::str::from_utf8(hex).map_err(|_| not_a_record())?;
    Ok((body, hex))
}

fn is_lower_hex_digest(s: &[u8]) -> bool {
    s.len() == HEX_LEN && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_for(head: &mut ChainHead, event_json: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        append_record(&mut buf, head, &EventJson::from_raw(event_json));
        assert_eq!(buf.pop(), Some(b'\n'));
        buf
    }

    #[test]
    fn record_layout_is_seq_prev_hash_event_fields_then_hash() {
        let mut head = ChainHead::genesis();
        let line = line_for(&mut head, r#"{"reason":"granted"}"#);
        let body = format!(r#"{{"seq":1,"prev_hash":"{GENESIS_HASH}","reason":"granted"}}"#);
        let expected = format!(
            r#"{},"hash":"{}"}}"#,
            &body[..body.len() - 1],
            sha256_hex(body.as_bytes())
        );
        assert_eq!(String::from_utf8(line).unwrap(), expected);
        assert_eq!(head.seq, 1);
        assert_eq!(head.hash, sha256_hex(body.as_bytes()));
    }

    #[test]
    fn written_record_parses_back_with_its_links() {
        let mut head = ChainHead::genesis();
        line_for(&mut head, r#"{"a":1}"#);
        let first_hash = head.hash.clone();
        let line = line_for(&mut head, r#"{"a":2}"#);
        let parsed = parse_record(&line).unwrap();
        assert_eq!(parsed.seq, 2);
        assert_eq!(parsed.prev_hash, first_hash);
        assert_eq!(parsed.hash, head.hash);
    }

    #[test]
    fn empty_event_object_still_makes_valid_json() {
        let mut head = ChainHead::genesis();
        let line = line_for(&mut head, "{}");
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["seq"], 1);
        assert_eq!(parse_record(&line).unwrap().seq, 1);
    }

    #[test]
    fn edited_byte_is_a_hash_mismatch() {
        let mut head = ChainHead::genesis();
        let mut line = line_for(&mut head, r#"{"reason":"granted"}"#);
        let pos = line.iter().position(|b| *b == b'g').unwrap();
        line[pos] = b'G';
        assert!(parse_record(&line).unwrap_err().contains("hash mismatch"));
    }

    #[test]
    fn lines_without_the_hash_suffix_are_not_records() {
        for junk in ["", "garbage", "{}", r#"{"seq":1,"hash":"abc"}"#] {
            let err = parse_record(junk.as_bytes()).unwrap_err();
            assert!(err.contains("not a chained record"), "{junk}: {err}");
        }
    }
}
