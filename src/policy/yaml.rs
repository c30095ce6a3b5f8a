//! The YAML layer of the loader: strict parser options, a span-carrying YAML tree for the parts of
//! a policy that are free-form (matchers, nested claims), and the conversion of parser errors into
//! single-line [`LoadError`]s.
//!
//! Owns no policy semantics: it only says what the YAML *is* and where it was written.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter, Options, Spanned};

use super::error::LoadError;
use crate::domain::IssuerName;

/// A 1-based line and column in a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    /// Used when a whole file is at fault, or a location is unknown.
    pub const START: Pos = Pos { line: 1, column: 1 };

    pub fn of<T>(spanned: &Spanned<T>) -> Pos {
        Pos::from_location(spanned.referenced)
    }

    pub fn from_location(loc: serde_saphyr::Location) -> Pos {
        if loc.line() == 0 {
            return Pos::START;
        }
        Pos {
            line: loc.line(),
            column: loc.column().max(1),
        }
    }
}

/// A YAML node with its position: what matchers and nested claims are compiled from.
pub(crate) type Node = Spanned<Yaml>;

/// Any YAML value, with spans kept on every nested node and mapping key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Entries in file order (duplicate keys are refused by the parser).
    Map(Vec<(Spanned<String>, Node)>),
}

impl Yaml {
    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Yaml::Null => "null",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) | Yaml::UInt(_) | Yaml::Float(_) => "a number",
            Yaml::String(_) => "a string",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
        }
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_none<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Yaml, E> {
        Ok(Yaml::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Yaml, E> {
        Ok(Yaml::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Yaml, E> {
        Ok(Yaml::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Yaml, E> {
        Ok(Yaml::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Yaml, E> {
        Ok(Yaml::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Yaml::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Yaml::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlVisitor)
    }
}

/// Parser options for every policy file: duplicate keys are errors (the default), only YAML 1.2
/// booleans (`yes` stays a string), `0755` stays a string, and merge keys are refused so that
/// what a reviewer reads is what is loaded.
fn options() -> Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        merge_keys: serde_saphyr::MergeKeyPolicy::Error,
        with_snippet: false,
    }
}

/// Parses `text` strictly into `T`, or one [`LoadError`] pointing at the offending node.
pub(crate) fn parse<T: de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, LoadError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let err = err.without_snippet();
        let pos = err.location().map(Pos::from_location).unwrap_or(Pos::START);
        let message = DefaultMessageFormatter.format_message(err);
        LoadError::at(file, pos, humane(&single_line(&message)))
    })
}

/// Rewords the parser messages that talk to developers rather than policy authors.
fn humane(message: &str) -> String {
    match message.strip_prefix("duplicate mapping key: ") {
        Some(rest) => {
            let key = rest
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(rest);
            format!("duplicate key `{key}` (each key may appear once)")
        }
        None => message.to_string(),
    }
}

/// Parser messages may span lines; a load error is one line.
fn single_line(message: &str) -> String {
    let joined: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    joined
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A humantime duration (`15m`, `1h`) within `range`; otherwise a problem at its position that
/// names the field and says what is allowed (`bounds`, e.g. "between 1s and 24h").
pub(crate) fn duration_in(
    s: &Spanned<String>,
    field: &str,
    range: RangeInclusive<Duration>,
    bounds: &str,
    problems: &mut Vec<(Pos, String)>,
) -> Option<Duration> {
    let problem = match humantime::parse_duration(&s.value) {
        Ok(d) if range.contains(&d) => return Some(d),
        Ok(_) => format!("`{field}` must be {bounds}, found `{}`", s.value),
        Err(e) => format!("invalid duration `{}`: {e} (write e.g. `15m`)", s.value),
    };
    problems.push((Pos::of(s), problem));
    None
}

/// An issuer name declared in `issuers.yaml`; otherwise a problem listing the declared names.
pub(crate) fn known_issuer(
    s: &Spanned<String>,
    known: &BTreeSet<IssuerName>,
    problems: &mut Vec<(Pos, String)>,
) -> Option<IssuerName> {
    match s.value.parse::<IssuerName>() {
        Ok(name) if known.contains(&name) => Some(name),
        _ => {
            let names: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
            let declared = if names.is_empty() {
                "(none declared)".to_string()
            } else {
                names.join(", ")
            };
            let msg = format!(
                "unknown issuer `{}`, expected one of the names in issuers.yaml: {declared}",
                s.value
            );
            problems.push((Pos::of(s), msg));
            None
        }
    }
}
