//! Names that identify configuration objects and audiences.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("issuer name `{0}` must be 1-64 characters of a-z, 0-9, `-` or `_`, starting with a letter or digit")]
    Issuer(String),
    #[error("policy name `{0}` must be 1-128 characters of A-Z, a-z, 0-9, `.`, `-` or `_`, starting with a letter or digit")]
    Policy(String),
    #[error("audience must be 1-1024 visible characters without spaces")]
    Audience,
}

macro_rules! string_newtype {
    ($name:ident, $check:expr, $err:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_string()))
                } else {
                    let err: fn(&str) -> NameError = $err;
                    Err(err(s))
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn starts_alnum(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

string_newtype!(
    IssuerName,
    |s| {
        (1..=64).contains(&s.len())
            && starts_alnum(s)
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    },
    |s| NameError::Issuer(s.to_string())
);

string_newtype!(
    PolicyName,
    |s| {
        (1..=128).contains(&s.len())
            && starts_alnum(s)
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    },
    |s| NameError::Policy(s.chars().take(64).collect())
);

// An audience is compared by exact string equality, so the only rules are the ones that keep it
// printable and bounded: visible ASCII or any non-control Unicode, no whitespace.
string_newtype!(
    Audience,
    |s| (1..=1024).contains(&s.len()) && s.chars().all(|c| !c.is_whitespace() && !c.is_control()),
    |_| NameError::Audience
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_names_are_lowercase_identifiers() {
        assert!("github".parse::<IssuerName>().is_ok());
        assert!("ci-cluster_2".parse::<IssuerName>().is_ok());
        for bad in ["", "GitHub", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(bad.parse::<IssuerName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_names_are_file_stems() {
        assert!("deploy-api".parse::<PolicyName>().is_ok());
        assert!("Deploy.API_v2".parse::<PolicyName>().is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "../x"] {
            assert!(bad.parse::<PolicyName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn audiences_refuse_whitespace_and_control_characters() {
        assert!(
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x"
                .parse::<Audience>()
                .is_ok()
        );
        for bad in ["", "a b", "a\nb", "a\u{0}b"] {
            assert!(bad.parse::<Audience>().is_err(), "{bad:?}");
        }
    }
}
