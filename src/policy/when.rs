//! `when:` — a CEL expression that must evaluate to `true` (POLICY.md "A trust policy").
//!
//! Compiled once at load (a syntax error or an unknown variable is a load error at the
//! expression's line); evaluated with `claims` (the verified payload), `normalized` (the
//! normalised CI claims, `issuer::normalize`), `request` (`audience`, `scopes`, `ttl_seconds`) and
//! `issuer` (the issuer name). Security invariant: any evaluation error, and any result other
//! than the boolean `true`, is a failed condition, so a broken expression can only deny.

use std::sync::Arc;

use cel::{Context, Program, Value};
use serde_json::json;

use crate::exchange::Requested;
use crate::verify::VerifiedToken;

use super::yaml::Pos;

/// The only variables an expression may name.
const VARIABLES: [&str; 4] = ["claims", "normalized", "request", "issuer"];

/// A compiled `when:` with its source and position.
#[derive(Debug, Clone)]
pub(crate) struct When {
    pub source: String,
    pub program: Arc<Program>,
    pub pos: Pos,
}

impl When {
    /// Compiles `source`; the error is one line, for `FILE:LINE:COL: message`.
    pub fn compile(source: &str, pos: Pos) -> Result<When, String> {
        let program = Program::compile(source).map_err(|e| {
            let detail: Vec<String> = e
                .errors
                .iter()
                .map(|e| format!("{} (at expression column {})", e.msg, e.pos.1 + 1))
                .collect();
            format!("invalid CEL in `when`: {}", detail.join("; "))
        })?;
        let references = program.references();
        let bound = comprehension_variables(source);
        let unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|v| !VARIABLES.contains(v) && !bound.iter().any(|b| b == v))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "`when` names unknown variable `{}`; it may use {}",
                unknown.join("`, `"),
                VARIABLES.map(|v| format!("`{v}`")).join(", ")
            ));
        }
        Ok(When {
            source: source.to_string(),
            program: Arc::new(program),
            pos,
        })
    }

    /// `Ok(true)` only when the expression yields the boolean `true`; `Err` says why not.
    pub fn eval(&self, token: &VerifiedToken, requested: &Requested) -> Result<bool, String> {
        let mut ctx = Context::default();
        let request = json!({
            "audience": requested.audience.as_ref().map(|a| a.to_string()),
            "scopes": requested.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "ttl_seconds": requested.ttl.map(|t| t.as_secs()),
        });
        let bind = |ctx: &mut Context, name: &str, v: serde_json::Value| {
            ctx.add_variable(name, v)
                .map_err(|e| format!("cannot bind `{name}`: {e}"))
        };
        bind(
            &mut ctx,
            "claims",
            serde_json::Value::Object(token.claims.clone()),
        )?;
        bind(
            &mut ctx,
            "normalized",
            serde_json::Value::Object(token.normalized.clone()),
        )?;
        bind(&mut ctx, "request", request)?;
        bind(&mut ctx, "issuer", json!(token.issuer.as_str()))?;
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("evaluated to {other:?}, not a boolean")),
            Err(e) => Err(format!("evaluation error: {e}")),
        }
    }
}

/// Variables bound by the comprehension macros (`list.all(x, ...)`, `exists`, `exists_one`,
/// `map`, `filter`): they are references too, but not free ones.
fn comprehension_variables(source: &str) -> Vec<String> {
    let re = regex::Regex::new(
        r"\b(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,",
    )
    .expect("a valid regex");
    re.captures_iter(source).map(|c| c[1].to_string()).collect()
}
