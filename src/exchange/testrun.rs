//! `ferry policy test`: runs the cases of `tests/*.test.yaml` through the real `decide`, with no
//! network and no signatures (POLICY.md "Policy tests"). Pure apart from nothing: the caller
//! loads the files.

use std::time::Duration;

use crate::domain::{PolicyName, ScopeSet, UnixSeconds};
use crate::policy::testcases::{Expect, LocatedCase};
use crate::policy::PolicySet;

use super::offline::token_from_claims;
use super::{explain, Candidates, DecideContext, Explanation, Requested};

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
