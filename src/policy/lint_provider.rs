//! Per-provider lints, where real deployments get hurt (README "Lint"). Stable codes:
//! `github-no-numeric-id`, `gitlab-no-project-id`, `buildkite-no-organization`,
//! `circleci-no-project-id`, `kubernetes-subject-mismatch`, `normalized-unavailable`. Pure: a compiled policy and its
//! issuer's kind in, warnings out.

use std::path::Path;

use crate::issuer::IssuerKind;

use super::error::Lint;
use super::matcher::{Matcher, Scalar};
use super::model::{Condition, Policy, Target};

/// The lints of the policy's issuer kind.
pub(crate) fn check(p: &Policy, kind: IssuerKind, file: &Path) -> Vec<Lint> {
    let mut out = normalized_unavailable(p, kind, file);
    out.extend(by_kind(p, kind, file));
    out
}

fn by_kind(p: &Policy, kind: IssuerKind, file: &Path) -> Vec<Lint> {
    match kind {
        IssuerKind::GithubActions => github_no_numeric_id(p, file).into_iter().collect(),
        IssuerKind::Gitlab => gitlab_no_project_id(p, file).into_iter().collect(),
        IssuerKind::Buildkite => buildkite_no_organization(p, file).into_iter().collect(),
        IssuerKind::Circleci => circleci_no_project_id(p, file).into_iter().collect(),
        IssuerKind::Kubernetes => super::lint_kubernetes::subject_mismatch(p, file),
        // SPIFFE policies have lints of their own (`lint_spiffe`).
        IssuerKind::Oidc | IssuerKind::Spiffe | IssuerKind::Ferry => Vec::new(),
    }
}

/// A `normalized.KEY` condition that the issuer's kind never provides fails on every token
/// (only `{ exists: false }` holds on an absent key, and that says nothing).
fn normalized_unavailable(p: &Policy, kind: IssuerKind, file: &Path) -> Vec<Lint> {
    let provided = crate::issuer::normalize::provided_keys(kind);
    p.all_conditions()
        .filter_map(|c| match c.target {
            Target::Normalized(key) if !provided.contains(&key) => {
                let msg = format!(
                    "`{}`: issuers of kind `{}` never provide the normalised claim `{key}`, so                      this condition can never hold; match the provider's own claim instead",
                    c.path,
                    kind.as_str()
                );
                Some(Lint::at(file, c.pos, "normalized-unavailable", msg))
            }
            _ => None,
        })
        .collect()
}

/// A condition on the top-level claim `name`, or on the normalised claim `name`.
fn on(c: &Condition, claims: &[&str], normalized: &[&str]) -> bool {
    match &c.target {
        Target::Claim(path) => path.len() == 1 && claims.contains(&path[0].as_str()),
        Target::Normalized(key) => normalized.contains(key),
        _ => false,
    }
}

/// GitHub repository and owner names can be deleted and re-registered by someone else; the
/// numeric ids cannot. The immutable subject form (`repo:OWNER@OWNER_ID/REPO@REPO_ID:...`)
/// pins the ids itself.
fn github_no_numeric_id(p: &Policy, file: &Path) -> Option<Lint> {
    let ids = ["repository_id", "repository_owner_id"];
    if p.all_conditions()
        .any(|c| on(c, &ids, &["repository_id", "owner_id"]))
    {
        return None;
    }
    let pins = p.all_conditions().find(|c| {
        on(
            c,
            &["repository", "repository_owner"],
            &["repository", "owner"],
        ) || (c.target == Target::Subject && any_literal(&c.matcher, pins_github_name))
    })?;
    let msg = format!(
        "`{}` pins a GitHub repository or owner by name, but the policy checks neither \
         `repository_id` nor `repository_owner_id`; names can be re-registered, ids cannot \
         (or match the immutable subject `repo:OWNER@OWNER_ID/REPO@REPO_ID:...`)",
        pins.path
    );
    Some(Lint::at(file, pins.pos, "github-no-numeric-id", msg))
}

/// `repo:acme/api:...` pins names; `repo:acme@4242/api@123:...` pins the owner's id.
fn pins_github_name(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("repo:") else {
        return false;
    };
    let owner = rest.split(['/', ':']).next().unwrap_or_default();
    !has_numeric_id(owner)
}

/// `NAME@DIGITS`.
fn has_numeric_id(segment: &str) -> bool {
    segment
        .split_once('@')
        .is_some_and(|(_, id)| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
}

/// GitLab project and group paths can be renamed and re-registered; `project_id` and
/// `namespace_id` cannot.
fn gitlab_no_project_id(p: &Policy, file: &Path) -> Option<Lint> {
    let ids = ["project_id", "namespace_id"];
    if p.all_conditions()
        .any(|c| on(c, &ids, &["repository_id", "owner_id"]))
    {
        return None;
    }
    let pins = p.all_conditions().find(|c| {
        on(
            c,
            &["project_path", "namespace_path"],
            &["repository", "owner"],
        ) || (c.target == Target::Subject
            && any_literal(&c.matcher, |s| s.starts_with("project_path:")))
    })?;
    let msg = format!(
        "`{}` pins a GitLab project or group by path, but the policy checks neither \
         `project_id` nor `namespace_id`; paths can be renamed and re-registered, ids cannot",
        pins.path
    );
    Some(Lint::at(file, pins.pos, "gitlab-no-project-id", msg))
}

/// Every Buildkite organisation shares the issuer `https://agent.buildkite.com`: a policy that
/// names no organisation trusts every Buildkite customer's pipelines.
fn buildkite_no_organization(p: &Policy, file: &Path) -> Option<Lint> {
    let org = ["organization_slug", "organization_id"];
    let pinned = p.all_conditions().any(|c| {
        on(c, &org, &["owner", "owner_id"])
            || (c.target == Target::Subject
                && any_literal(&c.matcher, |s| {
                    s.strip_prefix("organization:")
                        .is_some_and(|r| !r.is_empty() && !r.starts_with(['*', '?', ':']))
                }))
    });
    if pinned {
        return None;
    }
    let msg = "the policy names no Buildkite organisation (`organization_id`, \
               `organization_slug` or a subject `organization:ORG:...`), and every \
               organisation shares the issuer https://agent.buildkite.com: any Buildkite \
               customer's pipeline could match"
        .to_string();
    Some(Lint::at(
        file,
        super::yaml::Pos::START,
        "buildkite-no-organization",
        msg,
    ))
}

/// A CircleCI issuer is one organisation; without a project id every project in it matches.
fn circleci_no_project_id(p: &Policy, file: &Path) -> Option<Lint> {
    let claim = ["oidc.circleci.com/project-id"];
    let pinned = p.all_conditions().any(|c| {
        on(c, &claim, &["repository_id"])
            || (c.target == Target::Subject
                && any_literal(&c.matcher, |s| {
                    s.split_once("/project/")
                        .is_some_and(|(_, r)| !r.is_empty() && !r.starts_with(['*', '?', '/']))
                }))
    });
    if pinned {
        return None;
    }
    let msg = "the policy checks no CircleCI project (`oidc.circleci.com/project-id`, or a \
               subject `org/ORG_ID/project/PROJECT_ID/...`): every project of the \
               organisation, including ones created later, could match"
        .to_string();
    Some(Lint::at(
        file,
        super::yaml::Pos::START,
        "circleci-no-project-id",
        msg,
    ))
}

/// Whether `pred` holds for a literal string or glob source the matcher can accept (under
/// `one_of` and `any_of` too; `not` only narrows, so it is not looked into).
pub(super) fn any_literal(m: &Matcher, pred: impl Fn(&str) -> bool + Copy) -> bool {
    match m {
        Matcher::Exact(Scalar::String(s)) => pred(s),
        Matcher::Glob(p) => pred(&p.source),
        Matcher::OneOf(items) => items
            .iter()
            .any(|s| matches!(s, Scalar::String(s) if pred(s))),
        Matcher::AnyOf(ms) => ms.iter().any(|m| any_literal(m, pred)),
        _ => false,
    }
}
