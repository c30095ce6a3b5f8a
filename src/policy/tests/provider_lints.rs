//! Per-provider lints: each fires on the policy real deployments get hurt by, at that node, and
//! stays quiet once the policy pins what it should.

use std::path::Path;

use super::*;

const KIND_ISSUERS: &str = "issuers:
  gh: { kind: github-actions }
  gl: { kind: gitlab }
  bk: { kind: buildkite }
  cci: { kind: circleci, url: 'https://oidc.circleci.com/org/6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f' }
  k8s: { kind: kubernetes, url: 'https://kubernetes.default.svc' }
";

/// The provider-lint warnings of one policy (`CODE at LINE:COL`).
fn lints(issuer: &str, conditions: &str) -> Vec<String> {
    let p = format!(
        "issuer: {issuer}\naudience: https://ferry.internal\n{conditions}grant: {{ audience: a, scopes: [x], ttl: 1m }}\n"
    );
    let policies = vec![("p.yaml".to_string(), p)];
    let s = PolicySet::from_sources(KIND_ISSUERS, &policies, Path::new("tp"))
        .unwrap_or_else(|e| panic!("{e}"));
    s.warnings()
        .iter()
        .filter(|l| l.code != "unused-issuer")
        .map(|l| format!("{} at {}:{}", l.code, l.line, l.column))
        .collect()
}

#[test]
fn github_classic_subject_without_ids_is_flagged_and_the_immutable_form_is_not() {
    let classic = "subject: { glob: 'repo:acme/api:*' }\n";
    assert_eq!(lints("gh", classic), ["github-no-numeric-id at 3:10"]);
    let with_id = format!("{classic}claims: {{ repository_id: '123456789' }}\n");
    assert!(lints("gh", &with_id).is_empty());
    let immutable = "subject: { glob: 'repo:acme@4242/api@123456789:*' }\n";
    assert!(
        lints("gh", immutable).is_empty(),
        "{:?}",
        lints("gh", immutable)
    );
    let either = "subject: { any_of: [{ glob: 'repo:acme/api:*' }, { glob: 'repo:acme@4242/api@123456789:*' }] }\n";
    assert_eq!(lints("gh", either), ["github-no-numeric-id at 3:10"]);
    let name_claim = "normalized: { repository: acme/api }\n";
    assert_eq!(lints("gh", name_claim), ["github-no-numeric-id at 3:27"]);
    let normalized_id = "normalized: { repository: acme/api, repository_id: '123456789' }\n";
    assert!(lints("gh", normalized_id).is_empty());
}

#[test]
fn gitlab_paths_without_project_or_namespace_id_are_flagged() {
    let by_path = "subject: { glob: 'project_path:acme/api:*' }\n";
    assert_eq!(lints("gl", by_path), ["gitlab-no-project-id at 3:10"]);
    let claim = "claims: { project_path: acme/api }\n";
    assert_eq!(lints("gl", claim), ["gitlab-no-project-id at 3:25"]);
    assert!(lints("gl", &format!("{by_path}claims: {{ project_id: '20' }}\n")).is_empty());
    assert!(lints(
        "gl",
        &format!("{by_path}normalized: {{ repository_id: '20' }}\n")
    )
    .is_empty());
}

#[test]
fn buildkite_policy_naming_no_organisation_is_flagged() {
    let any_org = "subject: { glob: 'organization:*:pipeline:deploy:*' }\n";
    assert_eq!(lints("bk", any_org), ["buildkite-no-organization at 1:1"]);
    let no_subject = "claims: { pipeline_slug: deploy }\n";
    assert_eq!(
        lints("bk", no_subject),
        ["buildkite-no-organization at 1:1"]
    );
    let org = "subject: { glob: 'organization:acme:pipeline:deploy:*' }\n";
    assert!(lints("bk", org).is_empty());
    let org_id = "claims: { organization_id: 0184990a-477b, pipeline_slug: deploy }\n";
    assert!(lints("bk", org_id).is_empty());
}

#[test]
fn circleci_policy_without_project_is_flagged() {
    let any_project = "subject: { glob: 'org/6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f/*' }\n";
    assert_eq!(lints("cci", any_project), ["circleci-no-project-id at 1:1"]);
    let project = "claims: { 'oidc.circleci.com/project-id': f1e2d3c4 }\n";
    assert!(lints("cci", project).is_empty());
    let in_subject =
        "subject: { glob: 'org/6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f/project/f1e2d3c4/*' }\n";
    assert!(lints("cci", in_subject).is_empty());
}

#[test]
fn kubernetes_subject_and_nested_claims_that_disagree_are_flagged() {
    let agree = "subject: system:serviceaccount:ci:deployer\nclaims:\n  kubernetes.io: { namespace: ci, serviceaccount: { name: deployer } }\n";
    assert!(lints("k8s", agree).is_empty(), "{:?}", lints("k8s", agree));
    let other_ns = agree.replace("namespace: ci", "namespace: prod");
    assert_eq!(
        lints("k8s", &other_ns),
        ["kubernetes-subject-mismatch at 5:31"]
    );
    let other_sa = agree.replace("name: deployer", "name: builder");
    assert_eq!(
        lints("k8s", &other_sa),
        ["kubernetes-subject-mismatch at 5:59"]
    );
    let glob = "subject: { glob: 'system:serviceaccount:ci:*' }\nclaims:\n  kubernetes.io: { namespace: ci, serviceaccount: { name: deployer } }\n";
    assert!(lints("k8s", glob).is_empty());
    let glob_other = glob.replace("namespace: ci", "namespace: prod");
    assert_eq!(
        lints("k8s", &glob_other),
        ["kubernetes-subject-mismatch at 5:31"]
    );
    let not_a_service_account = "subject: deployer\n";
    assert_eq!(
        lints("k8s", not_a_service_account),
        ["kubernetes-subject-mismatch at 3:10"]
    );
}

#[test]
fn a_normalized_key_the_kind_never_provides_is_flagged() {
    let k8s = "subject: system:serviceaccount:ci:deployer\nnormalized: { provider: kubernetes, repository_id: '20' }\n";
    assert_eq!(lints("k8s", k8s), ["normalized-unavailable at 4:52"]);
    let cci = "claims: { 'oidc.circleci.com/project-id': f1e2d3c4 }\nnormalized: { environment: production }\n";
    assert_eq!(lints("cci", cci), ["normalized-unavailable at 4:28"]);
    let gl = "claims: { project_id: '20' }\nnormalized: { environment: production, runner_environment: hosted }\n";
    assert!(lints("gl", gl).is_empty(), "{:?}", lints("gl", gl));
}
