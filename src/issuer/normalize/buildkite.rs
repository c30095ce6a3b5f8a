//! Buildkite agent OIDC tokens -> the normalised vocabulary. A Buildkite pipeline stands for the
//! repository (`ORG/PIPELINE`); its ids (`organization_id`, `pipeline_id`) are only in tokens
//! requested with `--claim organization_id --claim pipeline_id`.

use super::{ref_type_of, runner_environment, Normalized, Source};

pub(super) fn map(c: &Source<'_>, out: &mut Normalized) {
    let org = c.text("organization_slug");
    let pipeline = c.text("pipeline_slug");
    let repository = org
        .as_ref()
        .zip(pipeline.as_ref())
        .map(|(o, p)| format!("{o}/{p}"));
    out.set("repository", repository.clone());
    out.set("repository_id", c.text("pipeline_id"));
    out.set("owner", org);
    out.set("owner_id", c.text("organization_id"));
    let git_ref = full_ref(c);
    out.set("ref_type", git_ref.as_deref().and_then(ref_type_of));
    out.set("ref", git_ref);
    out.set("sha", c.text("build_commit"));
    out.set("trigger", c.text("build_source"));
    let build = c.text("build_number");
    let url = repository
        .zip(build.as_ref())
        .map(|(r, b)| format!("https://buildkite.com/{r}/builds/{b}"));
    out.set("run_id", build);
    out.set("run_url", url);
    let runner = runner_environment(c.text("runner_environment"), "buildkite-hosted");
    out.set("runner_environment", runner);
}

/// A tag build is `refs/tags/TAG`; otherwise the branch is `refs/heads/BRANCH`.
fn full_ref(c: &Source<'_>) -> Option<String> {
    if let Some(tag) = c.text("build_tag") {
        return Some(format!("refs/tags/{tag}"));
    }
    c.text("build_branch").map(|b| format!("refs/heads/{b}"))
}
