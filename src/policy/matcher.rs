//! Compiled matchers (POLICY.md "Matchers"): what a claim, the subject or an audience is compared
//! with, and the pure check. Compiled once at load; evaluation never allocates on the happy path.
//!
//! Security invariants: a missing value fails every matcher except `exists: false`; glob and regex
//! match only strings; exact equality is type-strict (`"true"` is not `true`, `"5"` is not `5`).

use std::fmt;

use regex::Regex;
use serde_json::Value;

/// A plain YAML scalar used as an expected value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Bool(bool),
    /// Integers, and floats with no fractional part, compared exactly.
    Int(i128),
    Float(f64),
    String(String),
}

impl Scalar {
    /// Type-strict equality with a JSON claim value; numbers compare numerically (5 == 5.0).
    pub fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            (Scalar::String(a), Value::String(b)) => a == b,
            (Scalar::Int(_) | Scalar::Float(_), Value::Number(n)) => {
                match (self.as_number(), json_number(n)) {
                    (Number::Int(a), Number::Int(b)) => a == b,
                    (a, b) => a.as_f64() == b.as_f64(),
                }
            }
            _ => false,
        }
    }

    fn as_number(&self) -> Number {
        match self {
            Scalar::Int(i) => Number::Int(*i),
            Scalar::Float(f) => Number::from_f64(*f),
            _ => Number::Float(f64::NAN),
        }
    }

    /// Builds an integral float as `Int` so that `5.0` and `5` are the same expected value.
    pub fn number(f: f64) -> Scalar {
        match Number::from_f64(f) {
            Number::Int(i) => Scalar::Int(i),
            Number::Float(f) => Scalar::Float(f),
        }
    }
}

/// Numbers normalised so that integral values compare exactly (no rounding through f64 for
/// large ids such as `repository_id`).
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn from_f64(f: f64) -> Number {
        // 2^63 bounds keep the cast exact; beyond that, compare as floats.
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
            Number::Int(f as i128)
        } else {
            Number::Float(f)
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

fn json_number(n: &serde_json::Number) -> Number {
    if let Some(i) = n.as_i64() {
        Number::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Number::Int(i128::from(u))
    } else {
        Number::from_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::String(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

/// A pattern together with its compiled, anchored regex (globs compile to one too).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub source: String,
    pub regex: Regex,
}

/// One compiled matcher. Each variant is one POLICY.md matcher word; there is no state a
/// hand-written struct of optional fields could get wrong.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Exact(Scalar),
    Glob(Pattern),
    Regex(Pattern),
    OneOf(Vec<Scalar>),
    Not(Box<Matcher>),
    AnyOf(Vec<Matcher>),
    Exists(bool),
    Contains(Box<Matcher>),
}

impl Matcher {
    /// Whether the value (None when the claim is missing) satisfies the matcher.
    pub fn matches(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else {
            return match self {
                Matcher::Exists(want) => !want,
                Matcher::AnyOf(ms) => ms.iter().any(|m| m.matches(None)),
                _ => false,
            };
        };
        match self {
            Matcher::Exact(s) => s.equals(value),
            Matcher::Glob(p) | Matcher::Regex(p) => {
                value.as_str().is_some_and(|s| p.regex.is_match(s))
            }
            Matcher::OneOf(items) => items.iter().any(|s| s.equals(value)),
            Matcher::Not(m) => !m.matches(Some(value)),
            Matcher::AnyOf(ms) => ms.iter().any(|m| m.matches(Some(value))),
            Matcher::Exists(want) => *want,
            Matcher::Contains(m) => value
                .as_array()
                .is_some_and(|items| items.iter().any(|v| m.matches(Some(v)))),
        }
    }

    /// Fast path for the subject and audiences, which are strings, not JSON values.
    pub fn matches_str(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(Scalar::String(e)) => e == s,
            Matcher::Glob(p) | Matcher::Regex(p) => p.regex.is_match(s),
            _ => self.matches(Some(&Value::String(s.to_string()))),
        }
    }
}

/// Rendered for people, in traces: `glob "repo:acme/*"`, `one_of ["push"]`, `"123456789"`.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s}"),
            Matcher::Glob(p) => write!(f, "glob {}", Value::String(p.source.clone())),
            Matcher::Regex(p) => write!(f, "regex {}", Value::String(p.source.clone())),
            Matcher::OneOf(items) => write!(f, "one_of [{}]", join(items)),
            Matcher::Not(m) => write!(f, "not {m}"),
            Matcher::AnyOf(ms) => write!(f, "any_of [{}]", join(ms)),
            Matcher::Exists(b) => write!(f, "exists {b}"),
            Matcher::Contains(m) => write!(f, "contains {m}"),
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
