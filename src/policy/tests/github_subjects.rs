//! GitHub's two subject forms: the classic `repo:OWNER/REPO:...` and the immutable
//! `repo:OWNER@OWNER_ID/REPO@REPO_ID:...` (opt-in per repository or organisation). A policy can
//! match either or both; only the immutable form survives a rename and re-registration.

use serde_json::json;

use super::decide::{allowed, denied, req, run, token};
use super::*;

const EITHER: &str = "issuer: github
audience: https://ferry.internal
subject:
  any_of:
    - { glob: 'repo:acme/api:ref:refs/heads/*' }
    - { glob: 'repo:acme@4242/api@123456789:ref:refs/heads/*' }
claims: { repository_id: '123456789' }
grant: { audience: https://api, scopes: [deploy], ttl: 10m }
";

const IMMUTABLE_ONLY: &str = "issuer: github
audience: https://ferry.internal
subject: { glob: 'repo:acme@4242/api@123456789:ref:refs/heads/*' }
grant: { audience: https://api, scopes: [deploy], ttl: 10m }
";

fn run_of(sub: &str) -> crate::verify::VerifiedToken {
    token("github", sub, json!({ "repository_id": "123456789" }))
}

#[test]
fn a_policy_can_match_the_classic_and_the_immutable_subject() {
    let s = set(&[("either.yaml", EITHER)]).unwrap();
    let r = req(Some("https://api"), "deploy", None);
    allowed(run(&r, &run_of("repo:acme/api:ref:refs/heads/main"), &s));
    allowed(run(
        &r,
        &run_of("repo:acme@4242/api@123456789:ref:refs/heads/main"),
        &s,
    ));
    denied(run(
        &r,
        &run_of("repo:acme@4243/api@123456789:ref:refs/heads/main"),
        &s,
    ));
}

#[test]
fn an_immutable_subject_policy_refuses_a_re_registered_name() {
    let s = set(&[("immutable.yaml", IMMUTABLE_ONLY)]).unwrap();
    let r = req(Some("https://api"), "deploy", None);
    allowed(run(
        &r,
        &run_of("repo:acme@4242/api@123456789:ref:refs/heads/main"),
        &s,
    ));
    // Same names, new owner account after a rename: the ids differ.
    let squatter = run_of("repo:acme@9999/api@555:ref:refs/heads/main");
    let d = denied(run(&r, &squatter, &s));
    assert_eq!(d.trace[0].failed.as_ref().unwrap().path, "subject");
    // The classic form of the same run does not match an immutable-only policy.
    denied(run(&r, &run_of("repo:acme/api:ref:refs/heads/main"), &s));
}
