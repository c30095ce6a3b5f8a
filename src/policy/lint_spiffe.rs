//! Lints for policies of SPIFFE issuers: `spiffe-other-trust-domain` (a subject that can never
//! be in the issuer's trust domain, so the policy can never hold) and `spiffe-any-workload` (no
//! subject, or a glob that takes every workload of the trust domain). Codes are stable.

use std::path::Path;

use crate::domain::TrustDomain;
use crate::issuer::IssuerSpec;

use super::error::Lint;
use super::matcher::{Matcher, Scalar};
use super::model::Policy;
use super::yaml::Pos;

pub(crate) fn check(policies: &[Policy], issuers: &[IssuerSpec], base_dir: &Path) -> Vec<Lint> {
    policies
        .iter()
        .filter_map(|p| {
            let spec = issuers.iter().find(|i| i.name == p.issuer)?;
            check_policy(p, spec.trust_domain()?, &base_dir.join(&p.file))
        })
        .collect()
}

fn check_policy(p: &Policy, domain: &TrustDomain, file: &Path) -> Option<Lint> {
    let root = format!("{}/", domain.id());
    let Some(subject) = &p.subject else {
        let msg = format!(
            "no `subject:`: every workload of trust domain `{domain}` may use this policy; \
             pin a SPIFFE ID path, e.g. `{{ glob: \"{root}ns/<namespace>/*\" }}`"
        );
        return Some(Lint::at(file, Pos::START, "spiffe-any-workload", msg));
    };
    // The literal prefix, and the whole glob when it is one.
    let (prefix, glob) = match &subject.matcher {
        Matcher::Exact(Scalar::String(s)) => (s.as_str(), None),
        Matcher::Glob(g) => (g.source.split(['*', '?']).next()?, Some(&g.source)),
        _ => return None,
    };
    let inside = prefix.starts_with(&root) || (glob.is_some() && root.starts_with(prefix));
    if !inside {
        let msg = format!(
            "`subject` `{prefix}…` can never be a SPIFFE ID of trust domain `{domain}`, the \
             only one issuer `{}` vouches for: this policy never holds",
            p.issuer
        );
        return Some(Lint::at(
            file,
            subject.pos,
            "spiffe-other-trust-domain",
            msg,
        ));
    }
    // Only stars after a literal that does not reach past the trust domain.
    let takes_all = glob
        .is_some_and(|g| root.starts_with(prefix) && g[prefix.len()..].chars().all(|c| c == '*'));
    takes_all.then(|| {
        let msg = format!(
            "`subject` glob takes every workload of trust domain `{domain}`; pin a path, e.g. \
             `{root}ns/<namespace>/*`"
        );
        Lint::at(file, subject.pos, "spiffe-any-workload", msg)
    })
}
