//! JSON Schema for the files of a policy directory (`ferry policy schema`), generated from the
//! same Rust types the loader deserializes, so the schema cannot drift from what loads. The
//! free-form parts (matchers, nested claims) are spanned YAML trees in the loader; their schema
//! is written here once, as [`Expected`] and [`Claims`].

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::issuer::normalize::NORMALIZED_KEYS;

use super::file::PolicyFile;
use super::guardrails::GuardrailsFile;
use super::issuers::IssuersFile;
use super::testcases::TestFile;

/// An expected value: a plain scalar (exact, type-strict) or one matcher object.
pub(crate) struct Expected;

impl JsonSchema for Expected {
    fn schema_name() -> Cow<'static, str> {
        "Expected".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let me = generator.subschema_for::<Expected>().to_value();
        let one = |word: &str, schema: Value| {
            json!({ "type": "object", "additionalProperties": false, "required": [word],
                    "properties": { word: schema } })
        };
        let scalar = json!({ "type": ["string", "number", "integer", "boolean"] });
        json_schema!({
            "description": "A plain value (exact, type-strict) or a matcher object",
            "oneOf": [
                scalar,
                one("glob", json!({ "type": "string" })),
                one("regex", json!({ "type": "string" })),
                one("one_of", json!({ "type": "array", "minItems": 1, "items": scalar })),
                one("not", me.clone()),
                one("any_of", json!({ "type": "array", "minItems": 1, "items": me.clone() })),
                one("exists", json!({ "type": "boolean" })),
                one("contains", me.clone()),
            ]
        })
    }
}

/// Claim name -> expected value, or nested claims (a mapping whose keys are not matcher words).
pub(crate) struct Claims;

impl JsonSchema for Claims {
    fn schema_name() -> Cow<'static, str> {
        "Claims".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let expected = generator.subschema_for::<Expected>();
        let nested = generator.subschema_for::<Claims>();
        json_schema!({
            "type": "object",
            "additionalProperties": { "anyOf": [expected.to_value(), nested.to_value()] }
        })
    }
}

/// Normalised claim name -> expected value (flat: the vocabulary of `issuer::normalize`).
pub(crate) struct Normalized;

impl JsonSchema for Normalized {
    fn schema_name() -> Cow<'static, str> {
        "Normalized".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let expected = generator.subschema_for::<Expected>().to_value();
        let properties: serde_json::Map<String, Value> = NORMALIZED_KEYS
            .iter()
            .map(|k| (k.to_string(), expected.clone()))
            .collect();
        json_schema!({
            "description": "Normalised CI claims, the same on every provider (docs/normalized-claims.md)",
            "type": "object",
            "additionalProperties": false,
            "properties": properties
        })
    }
}

/// `{ "policy": ..., "issuers": ..., "guardrails": ..., "test": ... }`: one schema per file kind.
pub fn schemas() -> Value {
    json!({
        "policy": schemars::schema_for!(PolicyFile),
        "issuers": schemars::schema_for!(IssuersFile),
        "guardrails": schemars::schema_for!(GuardrailsFile),
        "test": schemars::schema_for!(TestFile),
    })
}
