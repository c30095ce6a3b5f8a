//! The lifecycle fields of `grant:` (POLICY.md extension, see README "Credential lifecycle"):
//! `credential: jwt | opaque` and `rate_limit: N/PERIOD`.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::compile::Problem;
use super::yaml::Pos;

/// What kind of credential a grant mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CredentialKind {
    /// An RFC 9068 JWT access token (the default).
    #[default]
    Jwt,
    /// `fy_…`: 256 random bits and a checksum, stored only as a SHA-256 hash; resource servers
    /// use `/introspect`.
    Opaque,
}

/// `grant.rate_limit`: at most `limit` exchanges per `period` for each subject under the policy
/// (GCRA: a burst of `limit`, then one every `period / limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    pub limit: u32,
    pub period: Duration,
}

const MAX_LIMIT: u32 = 1_000_000;
const MAX_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

pub(super) fn credential_kind(
    c: &Spanned<String>,
    problems: &mut Vec<Problem>,
) -> Option<CredentialKind> {
    match c.value.as_str() {
        "jwt" => Some(CredentialKind::Jwt),
        "opaque" => Some(CredentialKind::Opaque),
        other => {
            problems.push((
                Pos::of(c),
                format!("unknown credential `{other}`, expected `jwt` or `opaque`"),
            ));
            None
        }
    }
}

/// Parses `60/min`, `10/s`, `1000/h`, `500/d` or `N/DURATION` (`100/15m`).
pub(super) fn rate_limit(s: &Spanned<String>, problems: &mut Vec<Problem>) -> Option<RateSpec> {
    match parse_rate(&s.value) {
        Ok(spec) => Some(spec),
        Err(why) => {
            problems.push((
                Pos::of(s),
                format!("invalid `grant.rate_limit` `{}`: {why}", s.value),
            ));
            None
        }
    }
}

fn parse_rate(text: &str) -> Result<RateSpec, String> {
    let (count, per) = text
        .split_once('/')
        .ok_or("write COUNT/PERIOD, e.g. `60/min`")?;
    let limit: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("`{count}` is not a whole number"))?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(format!("the count must be between 1 and {MAX_LIMIT}"));
    }
    let period = match per.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        other => humantime::parse_duration(other)
            .map_err(|_| format!("`{other}` is not a period (s, min, h, d or e.g. `15m`)"))?,
    };
    if period < Duration::from_secs(1) || period > MAX_PERIOD {
        return Err("the period must be between 1s and 24h".into());
    }
    Ok(RateSpec { limit, period })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_in_count_per_period_form() {
        let r = parse_rate("60/min").unwrap();
        assert_eq!((r.limit, r.period), (60, Duration::from_secs(60)));
        assert_eq!(
            parse_rate("100/15m").unwrap().period,
            Duration::from_secs(900)
        );
        assert_eq!(parse_rate("5/s").unwrap().limit, 5);
    }

    #[test]
    fn malformed_rate_limits_are_refused_with_a_reason() {
        for bad in [
            "60",
            "0/min",
            "x/min",
            "60/fortnight",
            "1/2d",
            "5/500ms",
            "-1/s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
