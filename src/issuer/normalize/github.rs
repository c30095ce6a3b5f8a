//! GitHub Actions -> the normalised vocabulary. GitHub sends every custom claim as a string.

use super::{runner_environment, Normalized, Source};

/// GitHub.com's token issuer; any other `iss` is a GitHub Enterprise Server at
/// `https://HOST/_services/token`.
const GITHUB_COM_ISSUER: &str = "https://token.actions.githubusercontent.com";

pub(super) fn map(c: &Source<'_>, out: &mut Normalized) {
    out.set("repository", c.text("repository"));
    out.set("repository_id", c.text("repository_id"));
    out.set("owner", c.text("repository_owner"));
    out.set("owner_id", c.text("repository_owner_id"));
    out.set("ref", c.text("ref"));
    out.set("ref_type", c.text("ref_type"));
    out.set("sha", c.text("sha"));
    out.set("workflow", c.text("workflow_ref"));
    out.set("environment", c.text("environment"));
    out.set("trigger", c.text("event_name"));
    out.set("run_id", c.text("run_id"));
    out.set("run_url", run_url(c));
    let runner = runner_environment(c.text("runner_environment"), "github-hosted");
    out.set("runner_environment", runner);
}

/// `{server}/{repository}/actions/runs/{run_id}/attempts/{run_attempt}`, the server derived
/// from `iss`.
fn run_url(c: &Source<'_>) -> Option<String> {
    let iss = c.text("iss")?;
    let server = if iss == GITHUB_COM_ISSUER {
        "https://github.com".to_string()
    } else {
        iss.strip_suffix("/_services/token")?.to_string()
    };
    let (repository, run_id) = (c.text("repository")?, c.text("run_id")?);
    let attempt = c.text("run_attempt").unwrap_or_else(|| "1".to_string());
    Some(format!(
        "{server}/{repository}/actions/runs/{run_id}/attempts/{attempt}"
    ))
}
