//! CEL `when:`: compiled at load with errors at FILE:LINE, evaluated with `claims`, `request`,
//! `issuer` and `normalized` in scope; anything but `true` (an error included) denies.

use serde_json::json;

use crate::exchange::{explain, Candidates, DenyReason};

use super::decide::*;
use super::*;

fn guarded(when: &str) -> PolicySet {
    let p = pol(
        &format!("subject: svc-a\nwhen: '{when}'\n"),
        "https://api",
        "read, write",
        "5m",
    );
    set(&[("guarded.yaml", &p)]).unwrap_or_else(|e| panic!("{e}"))
}

fn attempt(n: &str) -> crate::verify::VerifiedToken {
    token(
        "corp",
        "svc-a",
        json!({ "run_attempt": n, "groups": ["ops"] }),
    )
}

#[test]
fn when_sees_claims_request_issuer_and_must_be_true() {
    let s = guarded(
        r#"claims.run_attempt == "1" && issuer == "corp" && request.scopes.all(x, x != "write") && size(normalized) == 0 && "ops" in claims.groups"#,
    );
    allowed(run(&req(None, "read", None), &attempt("1"), &s));
    let d = denied(run(&req(None, "read", None), &attempt("2"), &s));
    assert_eq!(d.reason, DenyReason::ClaimMismatch);
    let failed = d.trace[0].failed.clone().expect("a failure");
    assert_eq!((failed.path.as_str(), failed.line), ("when", 3));
    assert_eq!(failed.actual, Some(json!(false)));
    let d = denied(run(&req(None, "write", None), &attempt("1"), &s));
    assert_eq!(
        d.reason,
        DenyReason::ClaimMismatch,
        "request.scopes is in scope"
    );
}

#[test]
fn a_cel_evaluation_error_denies() {
    for when in [
        "claims.no_such_claim == \"x\"",
        "claims.run_attempt",
        "1 / 0 == 1",
    ] {
        let s = guarded(when);
        let e = explain(
            &req(None, "read", None),
            &attempt("1"),
            &s,
            &ctx(),
            NOW,
            Candidates::Issuer(None),
        );
        assert_eq!((e.decision, e.reason), ("deny", "claim_mismatch"), "{when}");
        let row = e.policies[0]
            .conditions
            .iter()
            .find(|c| c.path == "when")
            .expect("when row");
        assert!(!row.passed, "{when}");
        let actual = row.actual.clone().unwrap_or_default().to_string();
        assert!(
            actual.contains("error") || actual.contains("not a boolean"),
            "{when}: {actual}"
        );
    }
}

#[test]
fn cel_errors_fail_the_load_at_file_and_line() {
    let errs = errors_of(&policy_with("when: 'claims.x =='\n"));
    assert!(
        errs[0].starts_with("tp/p.yaml:2:7: invalid CEL in `when`"),
        "{errs:?}"
    );
    let errs = errors_of(&policy_with("when: 'token.sub == \"x\"'\n"));
    assert!(
        errs[0].starts_with("tp/p.yaml:2:7: `when` names unknown variable `token`"),
        "{errs:?}"
    );
    let errs = errors_of(&policy_with("when: [a]\n"));
    assert!(
        errs[0].contains("`when` takes a CEL expression as a string"),
        "{errs:?}"
    );
}
