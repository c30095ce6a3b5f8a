//! CircleCI OIDC tokens -> the normalised vocabulary. CircleCI names no repository or owner, only
//! ids: the project id stands for the repository, the organisation id (from `sub`) for the owner.

use super::{ref_type_of, Normalized, Source};

const CLAIM_PREFIX: &str = "oidc.circleci.com/";

pub(super) fn map(c: &Source<'_>, out: &mut Normalized) {
    let claim = |name: &str| c.text(&format!("{CLAIM_PREFIX}{name}"));
    out.set("repository", claim("vcs-origin"));
    out.set("repository_id", claim("project-id"));
    out.set("owner_id", organisation(c));
    let git_ref = claim("vcs-ref");
    out.set("ref_type", git_ref.as_deref().and_then(ref_type_of));
    out.set("ref", git_ref);
    out.set("workflow", claim("pipeline-definition-id"));
    out.set("run_id", claim("pipeline-id"));
}

/// `ORG_ID` of `sub` = `org/ORG_ID/project/PROJECT_ID/user/USER_ID`.
fn organisation(c: &Source<'_>) -> Option<String> {
    let sub = c.text("sub")?;
    let mut parts = sub.split('/');
    match (parts.next(), parts.next()) {
        (Some("org"), Some(id)) if !id.is_empty() => Some(id.to_string()),
        _ => None,
    }
}
