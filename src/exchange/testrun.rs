//! `ferry policy test`: runs the cases of `tests/*.test.yaml` through the real `decide`, with no
//! network and no signatures (POLICY.md "Policy tests"). Pure apart from nothing: the caller
//! loads the files.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{PolicyName, ScopeSet, UnixSeconds};
use crate::policy::testcases::{Expect, LocatedCase};
use crate::policy::PolicySet;

use serde_json::{Map, Value};

use super::offline::{token_from_claims, OfflineTokenError};
use super::{explain, ActorToken, Candidates, DecideContext, Explanation, Requested};

/// One case's result.
#[derive(Debug)]
pub struct CaseOutcome {
    /// `FILE:LINE` of the case.
    pub location: String,
    /// The policy the test file is about.
    pub policy: String,
    pub name: String,
    pub passed: bool,
    /// What happened, e.g. `allow by deploy-api` or `deny: claim_mismatch`.
    pub got: String,
    pub expected: String,
    /// The full trace, for failures.
    pub trace: Option<Explanation>,
}

/// Runs every case of one test file against `set`.
pub fn run_cases(
    set: &PolicySet,
    policy: &str,
    cases: &[LocatedCase],
    ctx: &DecideContext,
    now: UnixSeconds,
) -> Vec<CaseOutcome> {
    cases
        .iter()
        .map(|c| run_case(set, policy, c, ctx, now))
        .collect()
}

fn run_case(
    set: &PolicySet,
    policy: &str,
    c: &LocatedCase,
    ctx: &DecideContext,
    now: UnixSeconds,
) -> CaseOutcome {
    let location = format!("{}:{}", c.file.display(), c.line);
    let expected = match &c.case.expect {
        Expect::Allow => format!("allow by {policy}"),
        Expect::Deny(code) => format!("deny: {code}"),
    };
    let outcome = |passed: bool, got: String, trace: Option<Explanation>| CaseOutcome {
        location: location.clone(),
        policy: policy.to_string(),
        name: c.case.name.clone(),
        passed,
        got,
        expected: expected.clone(),
        trace,
    };
    let requested = match requested(&c.case.request) {
        Ok(r) => r,
        Err(e) => return outcome(false, format!("invalid request: {e}"), None),
    };
    let home = policy
        .parse::<PolicyName>()
        .ok()
        .and_then(|n| set.position(&n))
        .map(|i| set.policy(i).issuer.clone());
    let token = match token_from_claims(
        set,
        c.case.claims.clone(),
        home.as_ref(),
        &ctx.broker_audience,
        now,
    ) {
        Ok(t) => t,
        Err(e) => {
            let passed = c.case.expect == Expect::Deny(e.code().to_string());
            return outcome(passed, format!("deny: {} ({e})", e.code()), None);
        }
    };
    let requested = match with_actor(set, requested, c.case.actor.as_ref(), ctx, now) {
        Ok(r) => r,
        Err((code, e)) => {
            let passed = c.case.expect == Expect::Deny(code.clone());
            return outcome(passed, format!("deny: {code} ({e})"), None);
        }
    };
    let trace = explain(&requested, &token, set, ctx, now, Candidates::Issuer(None));
    let got = match trace.decision {
        "allow" => format!(
            "allow by {}",
            trace.policy.as_ref().map(|p| p.as_str()).unwrap_or("?")
        ),
        _ => format!("deny: {}", trace.reason),
    };
    let passed = got == expected;
    outcome(passed, got, (!passed).then_some(trace))
}

/// The case's actor token (from bare claims, like the subject's), if it has one.
fn with_actor(
    set: &PolicySet,
    requested: Requested,
    actor: Option<&Map<String, Value>>,
    ctx: &DecideContext,
    now: UnixSeconds,
) -> Result<Requested, (String, OfflineTokenError)> {
    let Some(claims) = actor else {
        return Ok(requested);
    };
    let actor = token_from_claims(set, claims.clone(), None, &ctx.broker_audience, now)
        .map_err(|e| (format!("actor_{}", e.code()), e))?;
    Ok(Requested {
        actor: Some(ActorToken(Arc::new(actor))),
        ..requested
    })
}

fn requested(r: &crate::policy::testcases::TestRequest) -> Result<Requested, String> {
    Ok(Requested {
        audience: r
            .audience
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| format!("audience: {e}"))?,
        scopes: ScopeSet::parse(r.scope.as_deref().unwrap_or_default())
            .map_err(|e| format!("scope: {e}"))?,
        ttl: r.ttl_seconds.map(Duration::from_secs),
        policy: r
            .policy
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| format!("policy: {e}"))?,
        actor: None,
    })
}
