//! `[store.redis]` settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://HOST:PORT/DB`, `rediss://…` (TLS through rustls), or
    /// `redis+cluster://HOST:PORT,HOST:PORT` for a Redis Cluster. `--redis URL` sets it.
    pub url: Option<String>,
    /// Redis Cluster seed nodes (`redis://HOST:PORT` each); when set, `url` is ignored.
    pub nodes: Vec<String>,
    /// PEM CA certificate(s) that `rediss://` servers must chain to, instead of the system
    /// roots (for a private CA).
    pub tls_ca_file: Option<PathBuf>,
    /// Prepended to every key, so several deployments can share one Redis.
    pub prefix: String,
    /// Bound on every store operation, reconnects included; past it the exchange gets 503.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Append every audit event to the `<prefix>audit` stream (in addition to the JSONL file).
    pub audit_stream: bool,
    /// `XADD … MAXLEN ~ N`: roughly how many events the stream keeps (an event is about 1 KB,
    /// so the default holds about 100 MB; raise it if the shipper may lag for longer).
    pub audit_stream_maxlen: u64,
    /// Serve a likely cache hit in one round trip instead of two: the first round trip is then
    /// a Lua script that also appends the hit's audit event. Off by default: the script costs
    /// `redis-server` about 4.5 × the instructions of the two round trips of plain commands
    /// (README, "Performance on Redis"). Turn it on when Redis latency
    /// matters more than its CPU. A single server only (a Cluster keeps the stream elsewhere).
    pub hits_in_one_round_trip: bool,
    /// How often a replica checks that Redis still holds its state marker, to notice a flush
    /// or a restart without persistence (`ferry_store_state_lost_total`, an `error` log line).
    /// `0s` turns the periodic check off; `/readyz` still makes it.
    #[serde(with = "humantime_serde")]
    pub state_check_interval: Duration,
}

/// The longest `command_timeout` accepted. A revocation on a Cluster takes up to about six of
/// them before it answers (its script, the wait of two in `lifecycle`, the cache index read and
/// delete, the audit commit), and `ferry admin` waits 60 s for an answer by default
/// (`--timeout`), which outlasts that; an exchange held longer than this by one store call has
/// failed anyway.
pub const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisSettings {
    /// Both timeouts above zero, `command_timeout` at most [`MAX_COMMAND_TIMEOUT`], and a
    /// prefix without braces: Ferry puts each key's Cluster hash tag after the prefix, and a
    /// brace in the prefix would take its place (`{}` hashes whole keys to scattered slots, so
    /// every script fails with `CROSSSLOT`; `{ferry}` puts every key on one node).
    pub fn check(&self) -> Result<(), String> {
        if self.prefix.contains(['{', '}']) {
            return Err(format!(
                "store.redis.prefix `{}` has a brace; Ferry adds the hash tags itself",
                self.prefix
            ));
        }
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(
                "store.redis.command_timeout and connect_timeout must be above zero".into(),
            );
        }
        if self.command_timeout > MAX_COMMAND_TIMEOUT {
            return Err(format!(
                "store.redis.command_timeout is {}; at most {} is accepted",
                humantime::format_duration(self.command_timeout),
                humantime::format_duration(MAX_COMMAND_TIMEOUT)
            ));
        }
        Ok(())
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            nodes: Vec::new(),
            tls_ca_file: None,
            prefix: "ferry:".into(),
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            audit_stream: true,
            audit_stream_maxlen: 100_000,
            hits_in_one_round_trip: false,
            state_check_interval: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_timeout_is_above_zero_and_at_most_five_seconds() {
        let with = |command_timeout| RedisSettings {
            command_timeout,
            ..RedisSettings::default()
        };
        assert!(with(MAX_COMMAND_TIMEOUT).check().is_ok());
        let long = with(MAX_COMMAND_TIMEOUT + Duration::from_millis(1))
            .check()
            .unwrap_err();
        assert!(long.contains("at most 5s"), "{long}");
        assert!(with(Duration::ZERO).check().is_err());
    }

    #[test]
    fn a_prefix_with_a_brace_is_refused() {
        let with = |prefix: &str| RedisSettings {
            prefix: prefix.into(),
            ..RedisSettings::default()
        };
        assert!(with("team-a:ferry:").check().is_ok());
        for braced in ["ferry{}:", "{ferry}:", "ferry}"] {
            let refused = with(braced).check().unwrap_err();
            assert!(refused.contains("brace"), "{braced}: {refused}");
        }
    }
}
