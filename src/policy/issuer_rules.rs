//! Per-kind rules on an issuer's `url` in `issuers.yaml`, on top of the https rule every issuer
//! obeys: what a preset kind's URL must look like so that it can ever match the `iss` its
//! provider really sends. Pure.

use crate::issuer::IssuerKind;

use super::yaml::Pos;

/// CircleCI's one public OIDC host; its issuers are `https://oidc.circleci.com/org/ORG_ID`.
const CIRCLECI_HOST: &str = "oidc.circleci.com";

/// Adds a problem when `url` cannot be an issuer of `kind`.
pub(super) fn check_kind_url(
    kind: IssuerKind,
    url: &url::Url,
    problems: &mut Vec<(Pos, String)>,
    pos: Pos,
) {
    if kind == IssuerKind::Circleci && url.host_str() == Some(CIRCLECI_HOST) {
        let org = url.path().strip_prefix("/org/").unwrap_or_default();
        if !is_uuid(org) {
            let msg = format!(
                "a `circleci` issuer on {CIRCLECI_HOST} is per organisation: write \
                 `https://{CIRCLECI_HOST}/org/ORG_ID` with the organisation's id (a UUID from \
                 Organization Settings), found `{url}`"
            );
            problems.push((pos, msg));
        }
    }
}

/// `8-4-4-4-12` hex digits, as CircleCI writes organisation ids.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}
