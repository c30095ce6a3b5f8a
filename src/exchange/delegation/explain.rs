//! Explain rows for the actor of a delegated request (`ferry policy explain`, audit traces of
//! denials). Pure.

use serde_json::{json, Value};

use super::rules::{check_may_act, matching_rule, presented_chain};
use crate::exchange::decision::ConditionResult;
use crate::policy::{condition_rows, Policy, Pos};
use crate::verify::VerifiedToken;

/// Explain rows for the actor under `p` (`ferry policy explain`, audit traces): the actor rule
/// that matches, or else the first one, condition by condition.
pub(in crate::exchange) fn rows(
    p: &Policy,
    subject: &VerifiedToken,
    actor: &VerifiedToken,
) -> Vec<ConditionResult> {
    let Some(spec) = &p.delegation else {
        return vec![ConditionResult {
            path: "delegation".to_string(),
            line: Pos::START.line,
            column: Pos::START.column,
            passed: false,
            expected: "a `delegation:` block (an actor_token was sent)".to_string(),
            actual: Some(Value::from(actor.subject.as_str())),
        }];
    };
    let (i, rule) = match matching_rule(spec, actor) {
        Ok(r) => (
            spec.actors
                .iter()
                .position(|a| std::ptr::eq(a, r))
                .unwrap_or(0),
            r,
        ),
        Err(_) => match spec.actors.first() {
            Some(r) => (0, r),
            None => return Vec::new(),
        },
    };
    let mut out = vec![ConditionResult {
        path: format!("delegation.actors[{i}].issuer"),
        line: rule.pos.line,
        column: rule.pos.column,
        passed: rule.issuer == actor.issuer,
        expected: Value::from(rule.issuer.to_string()).to_string(),
        actual: Some(Value::from(actor.issuer.to_string())),
    }];
    out.extend(condition_rows(&rule.conditions, actor));
    let depth = presented_chain(subject, actor).len();
    out.push(ConditionResult {
        path: "delegation.max_depth".to_string(),
        line: spec.pos.line,
        column: spec.pos.column,
        passed: depth <= spec.max_depth,
        expected: format!("at most {} actors in the `act` chain", spec.max_depth),
        actual: Some(Value::from(depth)),
    });
    if let Some(may_act) = subject.claims.get("may_act") {
        out.push(ConditionResult {
            path: "may_act".to_string(),
            line: Pos::START.line,
            column: Pos::START.column,
            passed: check_may_act(subject, actor).is_ok(),
            expected: may_act.to_string(),
            actual: Some(json!({ "sub": actor.subject, "iss": actor.claims.get("iss") })),
        });
    }
    out
}
