//! Strict JSON: a serde visitor that builds a `serde_json::Value` and refuses a repeated key in
//! any object, however deeply nested.
//!
//! Why: two parsers that resolve `{"sub":"a","sub":"b"}` differently (first wins / last wins)
//! let an attacker show one identity to the verifier and another to a downstream reader. This
//! module only parses; it knows nothing about tokens.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JsonError {
    #[error("an object repeats a key")]
    DuplicateKey,
    #[error("not UTF-8 JSON holding one object")]
    Invalid,
}

/// Parses `bytes` as UTF-8 JSON whose top level is an object without repeated keys anywhere.
pub(crate) fn parse_strict_json(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JsonError::Invalid)?;
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Strict {
        duplicate: &duplicate,
    }
    .deserialize(&mut de);
    if duplicate.get() {
        return Err(JsonError::DuplicateKey);
    }
    match (parsed, de.end()) {
        (Ok(Value::Object(map)), Ok(())) => Ok(map),
        _ => Err(JsonError::Invalid),
    }
}

/// The seed carries a flag rather than a magic error string, so a duplicate is told apart from
/// other syntax errors without matching on messages.
#[derive(Clone, Copy)]
struct Strict<'a> {
    duplicate: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One search per key: the entry both tells a repeat and is where the value goes.
            match object.entry(key) {
                Entry::Occupied(_) => {
                    self.duplicate.set(true);
                    return Err(de::Error::custom("duplicate key"));
                }
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(self)?);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_duplicate_keys_are_refused() {
        let nested = br#"{"a":{"b":[{"c":1,"c":2}]}}"#;
        assert_eq!(parse_strict_json(nested), Err(JsonError::DuplicateKey));
        assert_eq!(
            parse_strict_json(br#"{"a":1,"a":1}"#),
            Err(JsonError::DuplicateKey)
        );
    }

    #[test]
    fn non_objects_trailing_data_and_bad_utf8_are_invalid() {
        for bad in [&b"[1]"[..], b"\"x\"", b"{} {}", b"{\"a\":\"\xff\"}", b""] {
            assert_eq!(parse_strict_json(bad), Err(JsonError::Invalid), "{bad:?}");
        }
        assert!(parse_strict_json(br#"{"a":{"b":[1,2.5,null,true]}}"#).is_ok());
    }
}
