//! `normalized:` conditions, `normalized` in CEL and `normalized.KEY` grant sources: the same
//! block holds for a GitHub and a GitLab token of the same repository, and a generic OIDC issuer
//! never gets a repository from claims that merely look like GitHub's.

use std::path::Path;

use serde_json::{json, Value};

use crate::exchange::DenyReason;
use crate::issuer::{normalize::normalize, IssuerKind};
use crate::verify::VerifiedToken;

use super::decide::{allowed, denied, req, run, token};
use super::*;

const CI_ISSUERS: &str = "issuers:
  github:
    kind: github-actions
  gitlab:
    kind: gitlab
  corp:
    kind: oidc
    url: https://idp.example.com
";

/// One repository on main, whatever the CI: the block every policy below shares.
const MAIN_OF_REPO: &str = "normalized:
  repository_id: \"20\"
  ref: refs/heads/main
  runner_environment: { one_of: [hosted] }
";

fn policy(issuer: &str, extra: &str) -> String {
    format!(
        "issuer: {issuer}\naudience: https://ferry.internal\n{extra}grant:\n  audience: https://api\n  scopes: [deploy]\n  ttl: 10m\n"
    )
}

fn ci_set(policies: &[(&str, String)]) -> Result<PolicySet, LoadErrors> {
    let owned: Vec<(String, String)> = policies
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    PolicySet::from_sources(CI_ISSUERS, &owned, Path::new("tp"))
}

/// A token of `issuer` (of `kind`) whose normalised claims are computed as the verifier does.
fn ci_token(issuer: &str, kind: IssuerKind, sub: &str, claims: Value) -> VerifiedToken {
    let mut t = token(issuer, sub, claims);
    t.normalized = normalize(kind, &t.claims);
    t
}

fn github_run(repository_id: &str) -> VerifiedToken {
    ci_token(
        "github",
        IssuerKind::GithubActions,
        "repo:acme/api:ref:refs/heads/main",
        json!({"iss": "https://token.actions.githubusercontent.com", "repository": "acme/api",
               "repository_id": repository_id, "ref": "refs/heads/main",
               "runner_environment": "github-hosted", "run_id": "9001"}),
    )
}

fn gitlab_run(git_ref: &str) -> VerifiedToken {
    ci_token(
        "gitlab",
        IssuerKind::Gitlab,
        "project_path:acme/api:ref_type:branch:ref:main",
        json!({"iss": "https://gitlab.com", "project_path": "acme/api", "project_id": "20",
               "ref": git_ref, "ref_type": "branch", "runner_environment": "gitlab-hosted"}),
    )
}

#[test]
fn one_normalized_block_holds_for_github_and_gitlab_runs_of_the_repository() {
    let s = ci_set(&[
        ("gh.yaml", policy("github", MAIN_OF_REPO)),
        ("gl.yaml", policy("gitlab", MAIN_OF_REPO)),
    ])
    .unwrap();
    let r = req(Some("https://api"), "deploy", None);
    assert_eq!(
        allowed(run(&r, &github_run("20"), &s)).policy.as_str(),
        "gh"
    );
    assert_eq!(
        allowed(run(&r, &gitlab_run("main"), &s)).policy.as_str(),
        "gl"
    );
}

#[test]
fn a_normalized_mismatch_denies_and_the_trace_names_the_normalized_key() {
    let s = ci_set(&[("gh.yaml", policy("github", MAIN_OF_REPO))]).unwrap();
    let r = req(Some("https://api"), "deploy", None);
    allowed(run(&r, &github_run("20"), &s));
    let d = denied(run(&r, &github_run("21"), &s));
    assert_eq!(d.reason, DenyReason::ClaimMismatch);
    let failed = d.trace[0].failed.as_ref().unwrap();
    assert_eq!(failed.path, "normalized.repository_id");
    assert_eq!((failed.line, failed.column), (4, 18));
    assert_eq!(failed.actual, Some(json!("21")));
}

#[test]
fn a_gitlab_feature_branch_is_not_main() {
    let s = ci_set(&[("gl.yaml", policy("gitlab", MAIN_OF_REPO))]).unwrap();
    let r = req(Some("https://api"), "deploy", None);
    allowed(run(&r, &gitlab_run("main"), &s));
    let d = denied(run(&r, &gitlab_run("feature"), &s));
    let failed = d.trace[0].failed.as_ref().unwrap();
    assert_eq!(failed.path, "normalized.ref");
    assert_eq!(failed.actual, Some(json!("refs/heads/feature")));
}

#[test]
fn a_generic_oidc_token_that_looks_like_github_has_no_normalized_repository() {
    let s = ci_set(&[("corp.yaml", policy("corp", MAIN_OF_REPO))]).unwrap();
    let r = req(Some("https://api"), "deploy", None);
    let lookalike = ci_token(
        "corp",
        IssuerKind::Oidc,
        "svc",
        json!({"repository_id": "20", "ref": "refs/heads/main", "runner_environment": "github-hosted"}),
    );
    let d = denied(run(&r, &lookalike, &s));
    let failed = d.trace[0].failed.as_ref().unwrap();
    assert_eq!(
        (failed.path.as_str(), &failed.actual),
        ("normalized.repository_id", &None)
    );
}

#[test]
fn normalized_works_inside_any_of_and_in_when() {
    let extra = "any_of:\n  - normalized: { environment: production }\n  - normalized: { ref: refs/heads/main }\nwhen: 'normalized.provider == \"github-actions\" && normalized.run_id == \"9001\"'\n";
    let s = ci_set(&[("gh.yaml", policy("github", extra))]).unwrap();
    let r = req(Some("https://api"), "deploy", None);
    allowed(run(&r, &github_run("20"), &s));
    let mut other_run = github_run("20");
    other_run.normalized.insert("run_id".into(), json!("9002"));
    let d = denied(run(&r, &other_run, &s));
    assert_eq!(d.trace[0].failed.as_ref().unwrap().path, "when");
}

#[test]
fn grant_claims_copy_normalized_claims_into_the_credential() {
    let extra = "normalized: { provider: github-actions }\n";
    let text = policy("github", extra).replace(
        "  ttl: 10m\n",
        "  ttl: 10m\n  claims:\n    repo_id: normalized.repository_id\n    ci: normalized.provider\n    raw_ref: ref\n",
    );
    let s = ci_set(&[("gh.yaml", text)]).unwrap();
    let g = allowed(run(
        &req(Some("https://api"), "deploy", None),
        &github_run("20"),
        &s,
    ));
    assert_eq!(
        Value::Object(g.claims),
        json!({"repo_id": "20", "ci": "github-actions", "raw_ref": "refs/heads/main"})
    );
}

#[test]
fn unknown_normalized_keys_and_grant_sources_are_load_errors() {
    let e = ci_set(&[(
        "gh.yaml",
        policy("github", "normalized: { repo_id: \"20\" }\n"),
    )])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tp/gh.yaml:3:15: `repo_id` is not a normalised claim"),
        "{e}"
    );
    assert!(e.contains("`repository_id`"), "lists the vocabulary: {e}");
    let text = policy("github", "").replace(
        "  ttl: 10m\n",
        "  ttl: 10m\n  claims: { repo: normalized.repo }\n",
    );
    let e = ci_set(&[("gh.yaml", text)]).unwrap_err().to_string();
    assert!(
        e.contains("`normalized.repo`: `repo` is not a normalised claim"),
        "{e}"
    );
    let e = ci_set(&[("gh.yaml", policy("github", "normalized: [ref]\n"))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("maps normalised claim names"), "{e}");
}

#[test]
fn the_policy_schema_lists_exactly_the_normalized_vocabulary() {
    let schema = crate::policy::schemas();
    let policy = &schema["policy"];
    assert!(policy["properties"]["normalized"].is_object());
    let group = &policy["$defs"]["GroupFile"]["properties"]["normalized"];
    assert!(group.is_object(), "any_of groups take `normalized` too");
    let normalized = &policy["$defs"]["Normalized"];
    assert_eq!(normalized["additionalProperties"], false);
    let keys: Vec<&str> = normalized["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = crate::issuer::normalize::NORMALIZED_KEYS.to_vec();
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
}

#[test]
fn a_guardrail_deny_rule_can_match_normalized_claims_on_every_provider() {
    let guardrails = "deny:\n  - description: merge-request and fork pipelines never deploy, on any CI\n    normalized: { trigger: { one_of: [merge_request_event, pull_request_target] } }\n";
    let policies: Vec<(String, String)> = vec![
        ("gh.yaml".into(), policy("github", MAIN_OF_REPO)),
        ("gl.yaml".into(), policy("gitlab", MAIN_OF_REPO)),
    ];
    let s =
        PolicySet::from_sources_with_guardrails(CI_ISSUERS, guardrails, &policies, Path::new("tp"))
            .unwrap_or_else(|e| panic!("{e}"));
    let r = req(Some("https://api"), "deploy", None);
    allowed(run(&r, &gitlab_run("main"), &s));
    let mut mr = gitlab_run("main");
    mr.claims
        .insert("pipeline_source".into(), json!("merge_request_event"));
    mr.normalized = normalize(IssuerKind::Gitlab, &mr.claims);
    assert_eq!(denied(run(&r, &mr, &s)).reason, DenyReason::GuardrailDenied);
    let mut fork = github_run("20");
    fork.claims
        .insert("event_name".into(), json!("pull_request_target"));
    fork.normalized = normalize(IssuerKind::GithubActions, &fork.claims);
    assert_eq!(
        denied(run(&r, &fork, &s)).reason,
        DenyReason::GuardrailDenied
    );
}
