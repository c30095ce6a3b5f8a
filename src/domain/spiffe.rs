//! [`SpiffeId`] and [`TrustDomain`]: the SPIFFE identity of a workload, parsed strictly by the
//! SPIFFE ID specification (SPIFFE-ID.md §2), so that two spellings can never name one identity.
//!
//! `spiffe://<trust domain>[/<segment>...]`: the scheme is exactly `spiffe` (lower case); the
//! trust domain is 1-255 characters of `a-z 0-9 . - _` (no upper case, no port, no userinfo);
//! each path segment is non-empty, not `.` or `..`, of `a-z A-Z 0-9 . - _` (so no
//! percent-encoding, query or fragment); the whole ID is at most 2048 bytes. Pure; no I/O.

use std::fmt;
use std::str::FromStr;

const SCHEME: &str = "spiffe://";
/// SPIFFE-ID.md §2.1: a trust domain name is at most 255 bytes.
const MAX_TRUST_DOMAIN_BYTES: usize = 255;
/// SPIFFE-ID.md §2.3: a SPIFFE ID is at most 2048 bytes.
const MAX_ID_BYTES: usize = 2048;

/// Why a string is not a SPIFFE ID or a trust domain. Messages never echo the input (it may
/// come from an unverified token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("a SPIFFE ID must start with `spiffe://` (scheme in lower case)")]
    Scheme,
    #[error("a SPIFFE ID is at most 2048 bytes")]
    TooLong,
    #[error("the trust domain is empty")]
    EmptyTrustDomain,
    #[error("the trust domain is longer than 255 bytes")]
    TrustDomainTooLong,
    #[error("the trust domain must be lower case")]
    UpperCaseTrustDomain,
    #[error("a SPIFFE ID has no port and no userinfo")]
    PortOrUserinfo,
    #[error("a SPIFFE ID has no query and no fragment")]
    QueryOrFragment,
    #[error("a SPIFFE ID is never percent-encoded")]
    PercentEncoded,
    #[error("the trust domain may hold only a-z, 0-9, `.`, `-` and `_`")]
    TrustDomainChar,
    #[error("a path segment is empty (`//` or a trailing `/`)")]
    EmptySegment,
    #[error("a path segment is `.` or `..`")]
    DotSegment,
    #[error("a path segment may hold only a-z, A-Z, 0-9, `.`, `-` and `_`")]
    PathChar,
}

/// A trust domain name, e.g. `prod.example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `spiffe://<trust domain>`: the SPIFFE ID of the trust domain itself.
    pub fn id(&self) -> String {
        format!("{SCHEME}{}", self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(SpiffeIdError::EmptyTrustDomain);
        }
        if s.len() > MAX_TRUST_DOMAIN_BYTES {
            return Err(SpiffeIdError::TrustDomainTooLong);
        }
        for c in s.chars() {
            match c {
                'a'..='z' | '0'..='9' | '.' | '-' | '_' => {}
                'A'..='Z' => return Err(SpiffeIdError::UpperCaseTrustDomain),
                ':' | '@' => return Err(SpiffeIdError::PortOrUserinfo),
                '?' | '#' => return Err(SpiffeIdError::QueryOrFragment),
                '%' => return Err(SpiffeIdError::PercentEncoded),
                _ => return Err(SpiffeIdError::TrustDomainChar),
            }
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid SPIFFE ID, e.g. `spiffe://prod.example.org/ns/ci/sa/deployer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    /// Empty, or `/segment(/segment)*`.
    path: String,
}

impl SpiffeId {
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(SCHEME).ok_or(SpiffeIdError::Scheme)?;
        if s.len() > MAX_ID_BYTES {
            return Err(SpiffeIdError::TooLong);
        }
        let (domain, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let trust_domain = domain.parse()?;
        if !path.is_empty() {
            path[1..].split('/').try_for_each(check_segment)?;
        }
        Ok(Self {
            trust_domain,
            path: path.to_string(),
        })
    }
}

fn check_segment(segment: &str) -> Result<(), SpiffeIdError> {
    if segment.is_empty() {
        return Err(SpiffeIdError::EmptySegment);
    }
    if segment == "." || segment == ".." {
        return Err(SpiffeIdError::DotSegment);
    }
    for c in segment.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => {}
            '?' | '#' => return Err(SpiffeIdError::QueryOrFragment),
            '%' => return Err(SpiffeIdError::PercentEncoded),
            _ => return Err(SpiffeIdError::PathChar),
        }
    }
    Ok(())
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}{}", self.trust_domain, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_round_trip_with_their_trust_domain_and_path() {
        for (id, domain, path) in [
            ("spiffe://prod.example.org", "prod.example.org", ""),
            (
                "spiffe://prod.example.org/ns/ci/sa/deployer",
                "prod.example.org",
                "/ns/ci/sa/deployer",
            ),
            (
                "spiffe://a_b-c.9/Mixed.Case-_9",
                "a_b-c.9",
                "/Mixed.Case-_9",
            ),
            ("spiffe://td/...", "td", "/..."),
        ] {
            let parsed: SpiffeId = id.parse().unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(parsed.trust_domain().as_str(), domain);
            assert_eq!(parsed.path(), path);
            assert_eq!(parsed.to_string(), id);
        }
    }

    #[test]
    fn each_spiffe_id_rule_refuses_the_id_built_to_break_it() {
        let long_domain = format!("spiffe://{}", "a".repeat(256));
        let long_id = format!("spiffe://td/{}", "a".repeat(2048));
        for (id, expected) in [
            ("https://prod.example.org/ns/ci", SpiffeIdError::Scheme),
            ("SPIFFE://prod.example.org/ns/ci", SpiffeIdError::Scheme),
            ("spiffe:/prod.example.org", SpiffeIdError::Scheme),
            ("", SpiffeIdError::Scheme),
            ("spiffe://", SpiffeIdError::EmptyTrustDomain),
            ("spiffe:///ns/ci", SpiffeIdError::EmptyTrustDomain),
            (&long_domain, SpiffeIdError::TrustDomainTooLong),
            (&long_id, SpiffeIdError::TooLong),
            (
                "spiffe://Prod.example.org/ns",
                SpiffeIdError::UpperCaseTrustDomain,
            ),
            (
                "spiffe://prod.example.org:443/ns",
                SpiffeIdError::PortOrUserinfo,
            ),
            (
                "spiffe://user@prod.example.org/ns",
                SpiffeIdError::PortOrUserinfo,
            ),
            (
                "spiffe://prod.example.org?x=1",
                SpiffeIdError::QueryOrFragment,
            ),
            (
                "spiffe://prod.example.org/ns?x=1",
                SpiffeIdError::QueryOrFragment,
            ),
            (
                "spiffe://prod.example.org/ns#frag",
                SpiffeIdError::QueryOrFragment,
            ),
            (
                "spiffe://prod.example.org/ns/%2e%2e",
                SpiffeIdError::PercentEncoded,
            ),
            (
                "spiffe://prod%2eexample.org/ns",
                SpiffeIdError::PercentEncoded,
            ),
            (
                "spiffe://prod.example.org/ns/../admin",
                SpiffeIdError::DotSegment,
            ),
            ("spiffe://prod.example.org/./ns", SpiffeIdError::DotSegment),
            (
                "spiffe://prod.example.org/ns//ci",
                SpiffeIdError::EmptySegment,
            ),
            (
                "spiffe://prod.example.org/ns/ci/",
                SpiffeIdError::EmptySegment,
            ),
            ("spiffe://prod.example.org/", SpiffeIdError::EmptySegment),
            ("spiffe://prod.example.org/ns/c i", SpiffeIdError::PathChar),
            ("spiffe://prod.example.org/ns/cé", SpiffeIdError::PathChar),
            ("spiffe://prod.example.org/ns/a*b", SpiffeIdError::PathChar),
            (
                "spiffe://prod example.org/ns",
                SpiffeIdError::TrustDomainChar,
            ),
            ("spiffe://prod.exämple.org", SpiffeIdError::TrustDomainChar),
        ] {
            assert_eq!(id.parse::<SpiffeId>(), Err(expected), "{id}");
        }
    }

    #[test]
    fn trust_domain_names_follow_the_same_rules_without_scheme() {
        assert_eq!(
            "prod.example.org".parse::<TrustDomain>().unwrap().id(),
            "spiffe://prod.example.org"
        );
        for (name, expected) in [
            ("", SpiffeIdError::EmptyTrustDomain),
            ("Prod.example.org", SpiffeIdError::UpperCaseTrustDomain),
            ("spiffe://prod.example.org", SpiffeIdError::PortOrUserinfo),
            ("prod.example.org/ns", SpiffeIdError::TrustDomainChar),
        ] {
            assert_eq!(name.parse::<TrustDomain>(), Err(expected), "{name:?}");
        }
    }

    #[test]
    fn error_messages_never_echo_the_input() {
        let err = "spiffe://prod.example.org/ns/%2e%2e"
            .parse::<SpiffeId>()
            .unwrap_err();
        assert!(!err.to_string().contains("prod.example.org"));
    }
}
