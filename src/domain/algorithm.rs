//! JWS algorithms Ferry accepts for subject tokens and uses for its own credentials.
//!
//! Security invariant: there is no variant for `none` or any HMAC algorithm, so no configuration
//! and no token header can ever select them (SECURITY.md rule 4).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlgorithmError {
    #[error("algorithm `{0}` is never accepted (unsigned and HMAC tokens are refused)")]
    Forbidden(String),
    #[error("unknown algorithm `{0}` (expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")]
    Unknown(String),
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The JWK key type (`kty`) a key must have to verify this algorithm.
    pub fn key_type(self) -> &'static str {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                "RSA"
            }
            Self::ES256 | Self::ES384 => "EC",
            Self::EdDSA => "OKP",
        }
    }
}

impl FromStr for Algorithm {
    type Err = AlgorithmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(alg) = Self::ALL.iter().find(|a| a.as_str() == s) {
            return Ok(*alg);
        }
        let upper = s.to_ascii_uppercase();
        if upper == "NONE" || upper.starts_with("HS") {
            return Err(AlgorithmError::Forbidden(s.to_string()));
        }
        Err(AlgorithmError::Unknown(s.to_string()))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_are_forbidden_not_unknown() {
        for s in ["none", "None", "HS256", "HS384", "HS512", "hs256"] {
            assert!(
                matches!(s.parse::<Algorithm>(), Err(AlgorithmError::Forbidden(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn every_algorithm_round_trips_through_its_name() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
        }
        assert!(matches!(
            "es256".parse::<Algorithm>(),
            Err(AlgorithmError::Unknown(_))
        ));
    }
}
