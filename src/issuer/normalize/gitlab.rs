//! GitLab CI ID tokens -> the normalised vocabulary. GitLab's `ref` is the short name (`main`);
//! the normalised `ref` is the full one (`refs/heads/main`), from `ref_path` when present.

use super::{runner_environment, Normalized, Source};

pub(super) fn map(c: &Source<'_>, out: &mut Normalized) {
    out.set("repository", c.text("project_path"));
    out.set("repository_id", c.text("project_id"));
    out.set("owner", c.text("namespace_path"));
    out.set("owner_id", c.text("namespace_id"));
    out.set("ref", full_ref(c));
    out.set("ref_type", c.text("ref_type"));
    out.set("sha", c.text("sha"));
    out.set("workflow", c.text("ci_config_ref_uri"));
    out.set("environment", c.text("environment"));
    out.set("trigger", c.text("pipeline_source"));
    out.set("run_id", c.text("pipeline_id"));
    out.set("run_url", run_url(c));
    let runner = runner_environment(c.text("runner_environment"), "gitlab-hosted");
    out.set("runner_environment", runner);
}

/// `ref_path`, or `refs/heads/REF` / `refs/tags/REF` from `ref_type` on older GitLab versions.
fn full_ref(c: &Source<'_>) -> Option<String> {
    if let Some(path) = c.text("ref_path") {
        return Some(path);
    }
    let name = c.text("ref")?;
    match c.text("ref_type")?.as_str() {
        "branch" => Some(format!("refs/heads/{name}")),
        "tag" => Some(format!("refs/tags/{name}")),
        _ => None,
    }
}

/// `{iss}/{project_path}/-/pipelines/{pipeline_id}`: the issuer is the GitLab instance.
fn run_url(c: &Source<'_>) -> Option<String> {
    let iss = c.text("iss")?;
    let (project, pipeline) = (c.text("project_path")?, c.text("pipeline_id")?);
    Some(format!(
        "{}/{project}/-/pipelines/{pipeline}",
        iss.trim_end_matches('/')
    ))
}
