//! Each provider's mapping, on payloads shaped exactly as the provider sends them.

use serde_json::{json, Map, Value};

use super::{normalize, NORMALIZED_KEYS};
use crate::issuer::IssuerKind;

fn of(kind: IssuerKind, claims: Value) -> Value {
    let Value::Object(map) = claims else {
        panic!("claims must be an object")
    };
    Value::Object(normalize(kind, &map))
}

#[test]
fn github_claims_map_to_every_key_and_the_run_url() {
    let n = of(
        IssuerKind::GithubActions,
        json!({
            "iss": "https://token.actions.githubusercontent.com",
            "sub": "repo:acme/api:ref:refs/heads/main", "repository": "acme/api",
            "repository_id": "123456789", "repository_owner": "acme", "repository_owner_id": "4242",
            "ref": "refs/heads/main", "ref_type": "branch", "sha": "a1b2c3",
            "workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
            "environment": "production", "event_name": "push", "run_id": "9001",
            "run_attempt": "2", "runner_environment": "github-hosted"
        }),
    );
    assert_eq!(
        n,
        json!({
            "provider": "github-actions", "repository": "acme/api", "repository_id": "123456789",
            "owner": "acme", "owner_id": "4242", "ref": "refs/heads/main", "ref_type": "branch",
            "sha": "a1b2c3",
            "workflow": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
            "environment": "production", "trigger": "push", "run_id": "9001",
            "run_url": "https://github.com/acme/api/actions/runs/9001/attempts/2",
            "runner_environment": "hosted"
        })
    );
}

#[test]
fn github_enterprise_run_url_comes_from_its_issuer() {
    let n = of(
        IssuerKind::GithubActions,
        json!({"iss": "https://ghe.acme.com/_services/token", "repository": "acme/api",
               "run_id": "7", "runner_environment": "self-hosted"}),
    );
    assert_eq!(
        n["run_url"],
        "https://ghe.acme.com/acme/api/actions/runs/7/attempts/1"
    );
    assert_eq!(n["runner_environment"], "self-hosted");
}

#[test]
fn gitlab_short_ref_becomes_the_full_ref_and_ids_stay_strings() {
    let mut claims = json!({
        "iss": "https://gitlab.com", "sub": "project_path:acme/api:ref_type:branch:ref:main",
        "namespace_id": "72", "namespace_path": "acme", "project_id": "20",
        "project_path": "acme/api", "pipeline_id": "574", "pipeline_source": "push",
        "ref": "main", "ref_type": "branch", "ref_path": "refs/heads/main",
        "ref_protected": "true", "environment": "production", "runner_id": 1,
        "runner_environment": "gitlab-hosted", "sha": "714a629c",
        "ci_config_ref_uri": "gitlab.com/acme/api//.gitlab-ci.yml@refs/heads/main"
    });
    let n = of(IssuerKind::Gitlab, claims.clone());
    assert_eq!(
        n,
        json!({
            "provider": "gitlab", "repository": "acme/api", "repository_id": "20",
            "owner": "acme", "owner_id": "72", "ref": "refs/heads/main", "ref_type": "branch",
            "sha": "714a629c",
            "workflow": "gitlab.com/acme/api//.gitlab-ci.yml@refs/heads/main",
            "environment": "production", "trigger": "push", "run_id": "574",
            "run_url": "https://gitlab.com/acme/api/-/pipelines/574", "runner_environment": "hosted"
        })
    );
    claims.as_object_mut().unwrap().remove("ref_path");
    claims["ref"] = json!("v1.2.0");
    claims["ref_type"] = json!("tag");
    assert_eq!(
        of(IssuerKind::Gitlab, claims)["ref"],
        "refs/tags/v1.2.0",
        "older GitLab without ref_path"
    );
}

#[test]
fn buildkite_pipeline_stands_for_the_repository_and_numbers_become_strings() {
    let n = of(
        IssuerKind::Buildkite,
        json!({
            "iss": "https://agent.buildkite.com",
            "sub": "organization:acme:pipeline:api:ref:refs/heads/main:commit:9f31:step:deploy",
            "organization_slug": "acme", "pipeline_slug": "api", "build_number": 1234,
            "build_branch": "main", "build_tag": null, "build_commit": "9f31",
            "step_key": "deploy", "organization_id": "0184-org", "pipeline_id": "0184-pipe"
        }),
    );
    assert_eq!(
        n,
        json!({
            "provider": "buildkite", "repository": "acme/api", "repository_id": "0184-pipe",
            "owner": "acme", "owner_id": "0184-org", "ref": "refs/heads/main",
            "ref_type": "branch", "sha": "9f31", "run_id": "1234",
            "run_url": "https://buildkite.com/acme/api/builds/1234"
        })
    );
}

#[test]
fn buildkite_tag_build_is_a_tag_ref() {
    let n = of(
        IssuerKind::Buildkite,
        json!({"build_branch": "v2.0.0", "build_tag": "v2.0.0"}),
    );
    assert_eq!(
        (&n["ref"], &n["ref_type"]),
        (&json!("refs/tags/v2.0.0"), &json!("tag"))
    );
}

#[test]
fn circleci_ids_come_from_its_namespaced_claims_and_the_subject() {
    let n = of(
        IssuerKind::Circleci,
        json!({
            "iss": "https://oidc.circleci.com/org/6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f",
            "sub": "org/6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f/project/f1e2d3c4/user/u-1",
            "oidc.circleci.com/project-id": "f1e2d3c4",
            "oidc.circleci.com/pipeline-id": "p-77",
            "oidc.circleci.com/pipeline-definition-id": "def-1",
            "oidc.circleci.com/vcs-origin": "github.com/acme/api",
            "oidc.circleci.com/vcs-ref": "refs/heads/main",
            "oidc.circleci.com/context-ids": ["ctx-1"], "oidc.circleci.com/ssh-rerun": false
        }),
    );
    assert_eq!(
        n,
        json!({
            "provider": "circleci", "repository": "github.com/acme/api",
            "repository_id": "f1e2d3c4", "owner_id": "6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f",
            "ref": "refs/heads/main", "ref_type": "branch", "workflow": "def-1", "run_id": "p-77"
        })
    );
}

#[test]
fn kubernetes_and_oidc_give_only_the_provider() {
    let claims = json!({"sub": "system:serviceaccount:ci:deployer", "repository": "acme/api",
                        "kubernetes.io": {"namespace": "ci"}});
    assert_eq!(
        of(IssuerKind::Kubernetes, claims.clone()),
        json!({"provider": "kubernetes"})
    );
    assert_eq!(of(IssuerKind::Oidc, claims), json!({"provider": "oidc"}));
}

#[test]
fn the_kind_chooses_the_mapping_not_the_token() {
    // A generic OIDC issuer sending GitHub-looking claims gets no repository: only a
    // `github-actions` issuer is trusted to say what `repository` means.
    let claims = json!({"repository": "acme/api", "repository_id": "1", "run_id": "2"});
    assert_eq!(
        of(IssuerKind::Oidc, claims.clone()),
        json!({"provider": "oidc"})
    );
    assert_eq!(of(IssuerKind::GithubActions, claims)["repository_id"], "1");
}

#[test]
fn unusable_values_are_absent_never_empty() {
    let n = of(
        IssuerKind::GithubActions,
        json!({"repository": "", "repository_id": 12.5, "ref": true, "sha": {"x": 1},
               "runner_environment": "moon-hosted", "environment": null}),
    );
    assert_eq!(n, json!({"provider": "github-actions"}));
}

#[test]
fn provided_keys_are_what_each_mapping_produces_from_a_full_token() {
    let full = |kind| -> Value {
        let every = NORMALIZED_KEYS.map(|k| (k.to_string(), json!("x")));
        let mut claims: Map<String, Value> = every.into_iter().collect();
        for (k, v) in [
            ("iss", "https://token.actions.githubusercontent.com"),
            ("sub", "org/o-1/project/p-1/user/u-1"),
            ("ref_type", "branch"),
            ("ref_path", "refs/heads/main"),
            ("build_branch", "main"),
            ("runner_environment", "self-hosted"),
        ] {
            claims.insert(k.to_string(), json!(v));
        }
        for k in [
            "repository_owner",
            "repository_owner_id",
            "workflow_ref",
            "event_name",
            "project_path",
            "project_id",
            "namespace_path",
            "namespace_id",
            "pipeline_id",
            "pipeline_source",
            "ci_config_ref_uri",
            "organization_slug",
            "pipeline_slug",
            "organization_id",
            "build_commit",
            "build_source",
            "build_number",
        ] {
            claims.insert(k.to_string(), json!("x"));
        }
        for k in [
            "project-id",
            "pipeline-id",
            "pipeline-definition-id",
            "vcs-origin",
        ] {
            claims.insert(format!("oidc.circleci.com/{k}"), json!("x"));
        }
        claims.insert("oidc.circleci.com/vcs-ref".into(), json!("refs/heads/main"));
        of(kind, Value::Object(claims))
    };
    for kind in IssuerKind::ALL {
        let produced = full(kind);
        let mut keys: Vec<&str> = produced
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut provided = super::provided_keys(kind).to_vec();
        keys.sort_unstable();
        provided.sort_unstable();
        assert_eq!(keys, provided, "{kind:?}");
    }
}

#[test]
fn only_vocabulary_keys_are_produced() {
    let claims: Map<String, Value> = serde_json::from_value(json!({
        "iss": "https://gitlab.com", "project_path": "a/b", "project_id": "1", "ref": "main",
        "ref_type": "branch", "pipeline_id": "3", "extra": "x"
    }))
    .unwrap();
    for kind in IssuerKind::ALL {
        for key in normalize(kind, &claims).keys() {
            assert!(NORMALIZED_KEYS.contains(&key.as_str()), "{kind:?}: {key}");
        }
    }
}
