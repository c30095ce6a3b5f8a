//! Evaluating one compiled policy's conditions against a verified token, in the order POLICY.md
//! gives (subject, audience, claims, then `normalized`, any_of), stopping at the first that
//! fails. Pure.

use serde_json::Value;

use crate::exchange::{ConditionFailure, ConditionResult, DecideContext, Requested};
use crate::verify::VerifiedToken;

use super::model::{AnyOf, Condition, Policy, Target};
use super::when::When;
use super::yaml::Pos;

/// `None` when every condition holds; otherwise the first that failed, for the trace.
pub(crate) fn evaluate(
    p: &Policy,
    token: &VerifiedToken,
    ctx: &DecideContext,
    requested: &Requested,
) -> Option<ConditionFailure> {
    if let Some(f) = p.subject.as_ref().and_then(|c| check(c, token)) {
        return Some(f);
    }
    match &p.audience {
        Some(c) => {
            if let Some(f) = check(c, token) {
                return Some(f);
            }
        }
        None => {
            // No `audience:` in the policy: the token must be meant for this broker.
            let aud = ctx.broker_audience.as_str();
            if !token.audiences.iter().any(|a| a == aud) {
                return Some(ConditionFailure {
                    path: "audience".to_string(),
                    line: Pos::START.line,
                    column: Pos::START.column,
                    expected: format!(
                        "{} (the broker's audience; the policy has no `audience:`)",
                        Value::from(aud)
                    ),
                    actual: Some(audiences(token)),
                });
            }
        }
    }
    if let Some(f) = p.claims.iter().find_map(|c| check(c, token)) {
        return Some(f);
    }
    if let Some(f) = p.any_of.as_ref().and_then(|a| any_of(a, token)) {
        return Some(f);
    }
    p.when.as_ref().and_then(|w| {
        let r = when_row(w, token, requested);
        (!r.passed).then_some(ConditionFailure {
            path: r.path,
            line: r.line,
            column: r.column,
            expected: r.expected,
            actual: r.actual,
        })
    })
}

/// The `when` row: passes only on `true`; an error is shown as the actual value.
fn when_row(w: &When, token: &VerifiedToken, requested: &Requested) -> ConditionResult {
    let (passed, actual) = match w.eval(token, requested) {
        Ok(b) => (b, Value::Bool(b)),
        Err(e) => (false, Value::String(e)),
    };
    ConditionResult {
        path: "when".to_string(),
        line: w.pos.line,
        column: w.pos.column,
        passed,
        expected: format!("CEL {} == true", Value::from(w.source.as_str())),
        actual: Some(actual),
    }
}

fn any_of(a: &AnyOf, token: &VerifiedToken) -> Option<ConditionFailure> {
    let mut failures = Vec::with_capacity(a.groups.len());
    for g in &a.groups {
        match g.conditions.iter().find_map(|c| check(c, token)) {
            None => return None,
            Some(f) => failures.push(f),
        }
    }
    if failures.len() == 1 {
        return failures.pop();
    }
    // Several groups failed: point at `any_of` and say how each one failed.
    let each: Vec<String> = failures
        .iter()
        .map(|f| format!("{}: {}", f.path, f.expected))
        .collect();
    Some(ConditionFailure {
        path: "any_of".to_string(),
        line: a.pos.line,
        column: a.pos.column,
        expected: format!("one group to hold ({})", each.join("; ")),
        actual: None,
    })
}

/// The first of `conditions` that fails on `token` (delegation's actor rules use this).
pub(crate) fn first_failure(
    conditions: &[Condition],
    token: &VerifiedToken,
) -> Option<ConditionFailure> {
    conditions.iter().find_map(|c| check(c, token))
}

/// Every one of `conditions` with its outcome on `token` (explain rows for an actor rule).
pub(crate) fn condition_rows(
    conditions: &[Condition],
    token: &VerifiedToken,
) -> Vec<ConditionResult> {
    conditions.iter().map(|c| row(c, token)).collect()
}

/// Whether one condition holds (guardrail deny rules use this).
pub(crate) fn holds(c: &Condition, token: &VerifiedToken) -> bool {
    check(c, token).is_none()
}

/// `None` when the condition holds.
fn check(c: &Condition, token: &VerifiedToken) -> Option<ConditionFailure> {
    match &c.target {
        Target::Subject => (!c.matcher.matches_str(&token.subject))
            .then(|| failure(c, Some(Value::from(token.subject.as_str())))),
        Target::Audience => (!token.audiences.iter().any(|a| c.matcher.matches_str(a)))
            .then(|| failure(c, Some(audiences(token)))),
        Target::Claim(path) => {
            let value = claim(token, path);
            (!c.matcher.matches(value)).then(|| failure(c, value.cloned()))
        }
        Target::Normalized(key) => {
            let value = token.normalized.get(*key);
            (!c.matcher.matches(value)).then(|| failure(c, value.cloned()))
        }
    }
}

fn failure(c: &Condition, actual: Option<Value>) -> ConditionFailure {
    ConditionFailure {
        path: c.path.clone(),
        line: c.pos.line,
        column: c.pos.column,
        expected: c.matcher.to_string(),
        actual,
    }
}

fn claim<'a>(token: &'a VerifiedToken, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = token.claims.get(first)?;
    for key in rest {
        value = value.as_object()?.get(key)?;
    }
    Some(value)
}

fn audiences(token: &VerifiedToken) -> Value {
    Value::from(token.audiences.clone())
}

/// Every condition of `p` with its outcome, in evaluation order, without stopping at the first
/// failure: the full trace behind `ferry policy explain` and the audit record of a denial. The
/// summary row `any_of` passes when one group held.
pub(crate) fn evaluate_all(
    p: &Policy,
    token: &VerifiedToken,
    ctx: &DecideContext,
    requested: &Requested,
) -> Vec<ConditionResult> {
    let mut out: Vec<ConditionResult> = p.subject.iter().map(|c| row(c, token)).collect();
    match &p.audience {
        Some(c) => out.push(row(c, token)),
        None => {
            let aud = ctx.broker_audience.as_str();
            out.push(ConditionResult {
                path: "audience".to_string(),
                line: Pos::START.line,
                column: Pos::START.column,
                passed: token.audiences.iter().any(|a| a == aud),
                expected: format!("{} (the broker's audience)", Value::from(aud)),
                actual: Some(audiences(token)),
            });
        }
    }
    out.extend(p.claims.iter().map(|c| row(c, token)));
    if let Some(a) = &p.any_of {
        let mut held = 0;
        let mut rows = Vec::new();
        for g in &a.groups {
            let before = rows.len();
            rows.extend(g.conditions.iter().map(|c| row(c, token)));
            held += usize::from(rows[before..].iter().all(|r: &ConditionResult| r.passed));
        }
        out.push(ConditionResult {
            path: "any_of".to_string(),
            line: a.pos.line,
            column: a.pos.column,
            passed: held > 0,
            expected: format!("one of {} groups to hold", a.groups.len()),
            actual: Some(Value::from(format!("{held} held"))),
        });
        out.extend(rows);
    }
    out.extend(p.when.iter().map(|w| when_row(w, token, requested)));
    out
}

fn row(c: &Condition, token: &VerifiedToken) -> ConditionResult {
    let failed = check(c, token);
    let actual = match &c.target {
        Target::Subject => Some(Value::from(token.subject.as_str())),
        Target::Audience => Some(audiences(token)),
        Target::Claim(path) => claim(token, path).cloned(),
        Target::Normalized(key) => token.normalized.get(*key).cloned(),
    };
    ConditionResult {
        path: c.path.clone(),
        line: c.pos.line,
        column: c.pos.column,
        passed: failed.is_none(),
        expected: c.matcher.to_string(),
        actual,
    }
}
