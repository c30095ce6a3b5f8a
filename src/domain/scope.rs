//! OAuth scopes (RFC 6749 §3.3) and sets of them.
//!
//! `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`; a scope string is tokens separated by single
//! spaces. Anything else is refused, so a scope can never smuggle a quote, a backslash or a
//! control character into a credential or a log line.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error(
        "scope tokens are 1-256 characters of %x21 / %x23-5B / %x5D-7E (RFC 6749 section 3.3)"
    )]
    InvalidToken,
    #[error("a scope string is scope tokens separated by single spaces")]
    InvalidList,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if (1..=256).contains(&s.len()) && s.bytes().all(is_scope_char) {
            Ok(Self(s.to_string()))
        } else {
            Err(ScopeError::InvalidToken)
        }
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ordered set of scopes. Ordering makes the space-joined form canonical, which the
/// credential cache key and the audit trail rely on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses an RFC 6749 scope string. The empty string is the empty set.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut set = BTreeSet::new();
        for token in s.split(' ') {
            if token.is_empty() {
                return Err(ScopeError::InvalidList);
            }
            set.insert(token.parse()?);
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0.insert(scope);
    }

    /// Scopes in both sets.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Scopes in `self` that are not in `other`.
    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    /// The canonical space-separated form.
    pub fn to_scope_string(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(s.as_str());
        }
        out
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_scope_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_string_is_canonicalised_and_deduplicated() {
        let s = ScopeSet::parse("write:x read:y read:y").unwrap();
        assert_eq!(s.to_scope_string(), "read:y write:x");
        assert_eq!(ScopeSet::parse("").unwrap(), ScopeSet::new());
    }

    #[test]
    fn scope_tokens_outside_rfc6749_are_refused() {
        for bad in [
            "a  b",
            " a",
            "a ",
            "a\"b",
            "a\\b",
            "a\tb",
            "caf\u{e9}",
            "a\nb",
        ] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ScopeSet::parse("https://www.googleapis.com/auth/cloud-platform").is_ok());
    }
}
