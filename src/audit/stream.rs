//! Following the Redis audit stream (`ferry audit tail --redis URL`): every replica appends its
//! events to `<prefix>audit` (`store::redis`); this reads them as they come and prints them, as
//! a table for people or as JSON lines for scripts. Same URLs as `serve --redis` (a single
//! server, TLS, or a cluster).
//!
//! Plain `XREAD BLOCK`, no consumer group: tailing never acknowledges or hides events from a
//! SIEM shipper reading the same stream with `XREADGROUP`.

use std::io::Write;
use std::time::Duration;

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;

use super::gap::{parse_info, EntryId, Gap, Place, Read, StreamInfo};
use super::AuditEvent;
use crate::domain::{json_line, printable};
use crate::store::redis::{Connector, RedisSettings, Target};

/// Events read at once.
const BATCH: usize = 100;

/// Longer than the `XREAD` block, so a quiet stream is not mistaken for a dead server.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What to follow and how to print it.
pub struct TailOptions {
    /// The deployment's Redis settings (as `serve` reads them): URL or Cluster nodes, prefix,
    /// private CA.
    pub redis: RedisSettings,
    pub json: bool,
    /// Print the events already in the stream first (default: only new ones).
    pub from_start: bool,
}

/// Follows the stream until the process is stopped; reconnects after errors.
pub async fn tail(options: &TailOptions, out: &mut impl Write) -> Result<(), String> {
    let target = Target::parse(&options.redis)?;
    let connector = Connector::new(
        &target,
        options.redis.tls_ca_file.as_deref(),
        READ_TIMEOUT,
        Duration::from_secs(2),
    )?;
    let key = format!("{}audit", options.redis.prefix);
    // `None` until the live end is known (`XINFO STREAM`, once: a later read, after an empty
    // one or a reconnect, starts where this one left off, never at a newer end).
    let mut place = options.from_start.then(|| Place {
        last: EntryId::default(),
        position: None,
    });
    if !options.json {
        print_line(out, &header())?;
    }
    // Said once: that `XINFO STREAM` failed, so gaps are not checked.
    let mut info_failed = false;
    loop {
        let mut conn = match connector.get().await {
            Ok(conn) => conn,
            Err(e) => {
                say(&format!("{e}; retrying"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if place.is_none() {
            let end = live_end(&mut conn, &key).await;
            connector.note(end.is_ok());
            match end {
                Ok((end, refused)) => {
                    place = Some(end);
                    info_failed |= refused;
                }
                Err(e) => {
                    say(&format!("{e}; retrying"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let Some(place) = place.as_mut() else {
            continue;
        };
        // A blocked read only waits for the next event. What is printed comes from a read made
        // just before `XINFO STREAM`, so that the two agree on what the stream held (`gap`): a
        // blocked read is answered when the first event arrives, which a stopped or slow tail
        // may take in long after later ones were trimmed.
        let wait = StreamReadOptions::default().block(5_000).count(1);
        let take = StreamReadOptions::default().count(BATCH);
        let mut more = false;
        loop {
            let last = [place.last.to_string()];
            if !more {
                let waited: redis::RedisResult<StreamReadReply> =
                    conn.xread_options(&[&key], &last, &wait).await;
                connector.note(waited.is_ok());
                match waited {
                    Ok(reply) if reply.keys.iter().all(|k| k.ids.is_empty()) => continue,
                    Ok(_) => {}
                    Err(e) => {
                        say(&format!("{e}; reconnecting"));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
            let answer = conn.xread_options(&[&key], &last, &take).await;
            // A connection whose reads fail for the whole stall window is replaced (`connect`).
            connector.note(answer.is_ok());
            let reply: StreamReadReply = match answer {
                Ok(reply) => reply,
                Err(e) => {
                    say(&format!("{e}; reconnecting"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            };
            let entries: Vec<_> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
            let ids: Vec<EntryId> = entries
                .iter()
                .filter_map(|e| EntryId::parse(&e.id))
                .collect();
            more = entries.len() == BATCH;
            if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
                // Asked after the read: what it tells of the read holds whenever it is asked.
                let info = match stream_info(&mut conn, &key).await {
                    Ok(info) => info,
                    Err(e) => {
                        if !info_failed {
                            say(&format!("cannot check for trimmed events: {e}"));
                            info_failed = true;
                        }
                        None
                    }
                };
                let batch = Read {
                    first: *first,
                    last: *last,
                    count: ids.len() as u64,
                };
                if let Some(warning) = gap_warning(place.advance(batch, info.as_ref())) {
                    say(&warning);
                }
            }
            for entry in entries {
                let Some(json) = entry.get::<String>("event") else {
                    continue;
                };
                let line = if options.json {
                    json_line(&json)
                } else {
                    serde_json::from_str::<AuditEvent>(&json)
                        .map(|e| row(&e))
                        .unwrap_or_else(|_| printable(&json).into_owned())
                };
                print_line(out, &line)?;
            }
        }
    }
}

/// A line on standard error, escaped: a server's error text is printed too.
fn say(text: &str) {
    eprintln!("audit tail: {}", printable(text));
}

/// Where a tail without `--from-start` begins: the stream's newest id, by `XINFO STREAM` (which
/// also gives its position), or by `XREVRANGE` where an ACL refuses `XINFO` (no gap checks;
/// then also `true`, having said so).
async fn live_end(
    conn: &mut impl redis::aio::ConnectionLike,
    key: &str,
) -> redis::RedisResult<(Place, bool)> {
    match stream_info(conn, key).await {
        Ok(info) => Ok((Place::at_end(info.as_ref()), false)),
        Err(e) if e.code() == Some("NOPERM") => {
            say(&format!("{e}: cannot check for trimmed events"));
            let newest: Vec<(String, redis::Value)> = redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(conn)
                .await?;
            let last = newest
                .first()
                .and_then(|(id, _)| EntryId::parse(id))
                .unwrap_or_default();
            Ok((
                Place {
                    last,
                    position: None,
                },
                true,
            ))
        }
        Err(e) => Err(e),
    }
}

/// `XINFO STREAM key`; `None` when the stream does not exist (yet). An answer it cannot read is
/// an error, never taken for a missing stream (which would start the tail at the beginning).
async fn stream_info(
    conn: &mut impl redis::aio::ConnectionLike,
    key: &str,
) -> redis::RedisResult<Option<StreamInfo>> {
    let answer: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query_async(conn)
        .await;
    match answer {
        Ok(reply) => parse_info(reply).map(Some).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "XINFO STREAM answered without the fields of a stream",
            ))
        }),
        Err(e)
            if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError)
                && e.to_string().contains("no such key") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The line on standard error for what a read left out.
fn gap_warning(gap: Gap) -> Option<String> {
    const HINT: &str =
        "(raise store.redis.audit_stream_maxlen, or read with a consumer group that keeps up)";
    match gap {
        Gap::None => None,
        Gap::Trimmed(n) => Some(format!(
            "{n} event(s) were trimmed from the stream before they could be printed {HINT}"
        )),
        Gap::Unknown => Some(format!(
            "events may have been trimmed or deleted from the stream before they could be printed {HINT}"
        )),
        Gap::Restarted => Some(
            "the audit stream's count went backwards (Redis flushed, restarted empty, restored \
             or failed over to an older copy): events may be missing"
                .into(),
        ),
    }
}

fn print_line(out: &mut impl Write, line: &str) -> Result<(), String> {
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| e.to_string())
}

fn header() -> String {
    format!(
        "{:<24} {:<6} {:<22} {:<34} {:<14} {}",
        "TIME", "RESULT", "REASON", "SUBJECT", "POLICY", "CREDENTIAL"
    )
}

fn row(e: &AuditEvent) -> String {
    let decision = match e.decision {
        Some(super::Outcome::Allow) => "allow",
        Some(super::Outcome::Deny) => "deny",
        _ => "error",
    };
    format!(
        "{:<24} {:<6} {:<22} {:<34} {:<14} {}",
        printable(&e.time),
        decision,
        printable(&e.reason),
        printable(e.subject.as_deref().unwrap_or("-")),
        printable(e.policy.as_deref().unwrap_or("-")),
        printable(e.credential_id.as_deref().unwrap_or("-"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_shows_hostile_text_escaped() {
        let event = AuditEvent {
            subject: Some("x\u{1b}[2K\nforged row".into()),
            ..AuditEvent::default()
        };
        let line = row(&event);
        assert!(!line.contains('\u{1b}') && !line.contains('\n'), "{line:?}");
        assert!(line.contains("x\\u{1b}[2K\\u{a}forged row"), "{line}");
    }

    #[test]
    fn a_row_shows_the_outcome_and_never_more_than_the_event_holds() {
        let event = AuditEvent {
            time: "2026-01-01T00:00:00.000Z".into(),
            decision: Some(super::super::Outcome::Deny),
            reason: "token_replayed".into(),
            subject: Some("repo:acme/api:ref:refs/heads/main".into()),
            ..AuditEvent::default()
        };
        let line = row(&event);
        assert!(
            line.contains("deny") && line.contains("token_replayed"),
            "{line}"
        );
        assert!(line.ends_with(" -"), "no credential: {line}");
        assert_eq!(header().split_whitespace().count(), 6);
    }
}
