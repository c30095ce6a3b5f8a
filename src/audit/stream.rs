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

use super::AuditEvent;
use crate::domain::{json_line, printable};
use crate::store::redis::{Connector, RedisSettings, Target};

/// Longer than the `XREAD` block, so a quiet stream is not mistaken for a dead server.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What to follow and how to print it.
pub struct TailOptions {
    pub url: String,
    pub prefix: String,
    pub json: bool,
    /// Print the events already in the stream first (default: only new ones).
    pub from_start: bool,
    /// Private CA for `rediss://` (as `store.redis.tls_ca_file`).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

/// Follows the stream until the process is stopped; reconnects after errors.
pub async fn tail(options: &TailOptions, out: &mut impl Write) -> Result<(), String> {
    let settings = RedisSettings {
        url: Some(options.url.clone()),
        ..RedisSettings::default()
    };
    let target = Target::parse(&settings)?;
    let connector = Connector::new(
        &target,
        options.tls_ca_file.as_deref(),
        READ_TIMEOUT,
        Duration::from_secs(2),
    )?;
    let key = format!("{}audit", options.prefix);
    let mut last = if options.from_start { "0" } else { "$" }.to_string();
    if !options.json {
        print_line(out, &header())?;
    }
    loop {
        let mut conn = match connector.get().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("audit tail: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if last == "$" {
            // The live end as a real id, once: a later read (after an empty one, or after a
            // reconnect) then starts where this one left off, never at a newer end.
            let newest: redis::RedisResult<Vec<(String, redis::Value)>> = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await;
            connector.note(newest.is_ok());
            match newest {
                Ok(newest) => {
                    last = newest.into_iter().next().map_or("0-0".into(), |(id, _)| id);
                }
                Err(e) => {
                    eprintln!("audit tail: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let read = StreamReadOptions::default().block(5_000).count(100);
        loop {
            let answer = conn.xread_options(&[&key], &[&last], &read).await;
            // A connection whose reads fail for the whole stall window is replaced (`connect`).
            connector.note(answer.is_ok());
            let reply: StreamReadReply = match answer {
                Ok(reply) => reply,
                Err(e) => {
                    eprintln!("audit tail: {e}; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            };
            for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                last = entry.id.clone();
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
