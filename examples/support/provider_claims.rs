//! Claims builders for the other CI and cluster providers, shaped exactly as each provider sends
//! its tokens (names, nesting and JSON types), for the same fixed repository as
//! `Claims::github`: `acme/api` on `main`. Ids are strings where the provider sends strings
//! (GitLab) and numbers where it sends numbers (Buildkite's `build_number`, GitLab's
//! `runner_id`), so type-strict matching is exercised for free.

use serde_json::json;

use super::claims::{now, Claims};

/// The repository's commit every builder reports.
pub const SHA: &str = "714a629c0b401fdce83e847fc9589983fc6f46bc";
/// The CircleCI organisation and project of `Claims::circleci`.
pub const CIRCLECI_ORG: &str = "6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f";
pub const CIRCLECI_PROJECT: &str = "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b";

impl Claims {
    /// A GitLab CI ID token (`id_tokens:`) for a push pipeline on protected `main` of
    /// `acme/api` (project 20, group `acme` = namespace 72), deploying to `production`.
    pub fn gitlab(issuer_url: &str, audience: &str) -> Claims {
        let now = now();
        let host = issuer_url.split("://").nth(1).unwrap_or(issuer_url);
        Claims::from_value(json!({
            "namespace_id": "72",
            "namespace_path": "acme",
            "project_id": "20",
            "project_path": "acme/api",
            "user_id": "1",
            "user_login": "sasha",
            "user_email": "sasha@acme.example",
            "user_access_level": "maintainer",
            "pipeline_id": "574",
            "pipeline_source": "push",
            "job_id": "302",
            "ref": "main",
            "ref_type": "branch",
            "ref_path": "refs/heads/main",
            "ref_protected": "true",
            "environment": "production",
            "environment_protected": "true",
            "deployment_tier": "production",
            "environment_action": "start",
            "runner_id": 1,
            "runner_environment": "gitlab-hosted",
            "sha": SHA,
            "project_visibility": "private",
            "ci_config_ref_uri": format!("{host}/acme/api//.gitlab-ci.yml@refs/heads/main"),
            "ci_config_sha": SHA,
            "jti": uuid::Uuid::now_v7().to_string(),
            "iss": issuer_url,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
            "sub": "project_path:acme/api:ref_type:branch:ref:main",
            "aud": audience,
        }))
    }

    /// A Buildkite agent token (`buildkite-agent oidc request-token --claim organization_id
    /// --claim pipeline_id`) for step `deploy` of build 1234 of pipeline `acme/api` on `main`.
    pub fn buildkite(issuer_url: &str, audience: &str) -> Claims {
        let now = now();
        Claims::from_value(json!({
            "iss": issuer_url,
            "sub": format!("organization:acme:pipeline:api:ref:refs/heads/main:commit:{SHA}:step:deploy"),
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "organization_slug": "acme",
            "pipeline_slug": "api",
            "build_number": 1234,
            "build_branch": "main",
            "build_tag": null,
            "build_commit": SHA,
            "step_key": "deploy",
            "job_id": "0184990a-477b-4fa8-9968-496074483cee",
            "agent_id": "0184990a-4782-42b5-afc1-16715b10b8ff",
            "organization_id": "0184990a-5b1e-4c8c-8d0e-3c1e8b9f0a11",
            "pipeline_id": "0184990a-6c2f-4d9d-9e1f-4d2f9c0a1b22",
        }))
    }

    /// A CircleCI job token (`circleci run oidc get --claims '{"aud": ...}'`) of project
    /// [`CIRCLECI_PROJECT`] (github.com/acme/api) on `main`. The organisation id is taken from
    /// `issuer_url` (`https://oidc.circleci.com/org/ORG_ID`), else [`CIRCLECI_ORG`].
    pub fn circleci(issuer_url: &str, audience: &str) -> Claims {
        let now = now();
        let org = issuer_url
            .split_once("/org/")
            .map_or(CIRCLECI_ORG, |(_, org)| org);
        let project = CIRCLECI_PROJECT;
        Claims::from_value(json!({
            "iss": issuer_url,
            "sub": format!("org/{org}/project/{project}/user/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"),
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
            "oidc.circleci.com/project-id": project,
            "oidc.circleci.com/pipeline-definition-id": "0c5b2c8e-7d1f-4a5e-9b3c-2d4e6f8a0b1c",
            "oidc.circleci.com/pipeline-id": "3b9e1f2a-4c5d-4e6f-8a7b-9c0d1e2f3a4b",
            "oidc.circleci.com/context-ids": ["a74579f1-2e7d-451e-b009-5c082ad2729e"],
            "oidc.circleci.com/vcs-origin": "github.com/acme/api",
            "oidc.circleci.com/vcs-ref": "refs/heads/main",
            "oidc.circleci.com/ssh-rerun": false,
        }))
    }

    /// A projected service-account token of `ci/deployer`, running in pod `deployer-7c9d8b5f4-x2x9k`
    /// (Kubernetes 1.30: with `jti` and the node).
    pub fn kubernetes(issuer_url: &str, audience: &str) -> Claims {
        let now = now();
        Claims::from_value(json!({
            "aud": [audience],
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "iss": issuer_url,
            "jti": uuid::Uuid::now_v7().to_string(),
            "kubernetes.io": {
                "namespace": "ci",
                "node": { "name": "ip-10-0-1-17.ec2.internal", "uid": "2f4a0c1e-9b8d-4e7f-a6c5-3d2b1a0f9e8d" },
                "pod": { "name": "deployer-7c9d8b5f4-x2x9k", "uid": "8e2f6b1c-4d3a-4f5e-9c7b-1a0d2e3f4b5c" },
                "serviceaccount": { "name": "deployer", "uid": "5c0f4a2e-8d7b-4f6a-9c3e-1b2a3d4e5f60" }
            },
            "sub": "system:serviceaccount:ci:deployer",
        }))
    }

    /// A legacy secret-based service-account token: no `exp`, no `aud`, the fixed legacy issuer.
    pub fn kubernetes_legacy_secret() -> Claims {
        Claims::from_value(json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "ci",
            "kubernetes.io/serviceaccount/secret.name": "deployer-token-x7k2p",
            "kubernetes.io/serviceaccount/service-account.name": "deployer",
            "kubernetes.io/serviceaccount/service-account.uid": "5c0f4a2e-8d7b-4f6a-9c3e-1b2a3d4e5f60",
            "sub": "system:serviceaccount:ci:deployer",
        }))
    }

    /// The same run as [`Claims::github`] with GitHub's immutable subject form
    /// (`repo:OWNER@OWNER_ID/REPO@REPO_ID:...`).
    pub fn github_immutable(issuer_url: &str, audience: &str) -> Claims {
        Claims::github(issuer_url, audience)
            .subject("repo:acme@4242/api@123456789:ref:refs/heads/main")
    }
}
