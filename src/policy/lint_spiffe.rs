//! Lints for policies of SPIFFE issuers: `spiffe-other-trust-domain` (a subject that can never
//! be in the issuer's trust domain, so the policy can never hold) and `spiffe-any-workload` (no
//! subject, or a glob that takes every workload of the trust domain). Codes are stable.

use std::path::Path;

use crate::issuer::IssuerSpec;

use super::error::Lint;
use super::matcher::{Matcher, Scalar};
use super::model::Policy;
use super::yaml::Pos;

pub(crate) fn check(policies: &[Policy], issuers: &[IssuerSpec], base_dir: &Path) -> Vec<Lint> {
    let mut out = Vec::new();
    for p in policies {
        let spec = issuers.iter().find(|i| i.name == p.issuer);
        let Some(domain) = spec.and_then(|i| i.trust_domain()) else {
            continue;
        };
        let file = base_dir.join(&p.file);
        let root = format!("{}/", domain.id());
        let Some(subject) = &p.subject else {
            let msg = format!(
                "no `subject:`: every workload of trust domain `{domain}` may use this policy; \
                 pin a SPIFFE ID path, e.g. `{{ glob: \"{root}ns/<namespace>/*\" }}`"
            );
            out.push(Lint::at(&file, Pos::START, "spiffe-any-workload", msg));
            continue;
        };
        // (literal prefix, the whole glob when it is one)
        let literal = match &subject.matcher {
            Matcher::Exact(Scalar::String(s)) => Some((s.as_str(), None)),
            Matcher::Glob(g) => g
                .source
                .split(['*', '?'])
                .next()
                .map(|pre| (pre, Some(&g.source))),
            _ => None,
        };
        let Some((prefix, glob)) = literal else {
            continue;
        };
        let is_glob = glob.is_some();
        let inside = prefix.starts_with(&root) || (is_glob && root.starts_with(prefix));
        // Only stars after a literal that does not reach past the trust domain.
        let takes_all = glob.is_some_and(|g| {
            root.starts_with(prefix) && g[prefix.len()..].chars().all(|c| c == '*')
        });
        if !inside {
            let msg = format!(
                "`subject` `{prefix}…` can never be a SPIFFE ID of trust domain `{domain}`, the \
                 only one issuer `{}` vouches for: this policy never holds",
                p.issuer
            );
            out.push(Lint::at(
                &file,
                subject.pos,
                "spiffe-other-trust-domain",
                msg,
            ));
        } else if takes_all {
            let msg = format!(
                "`subject` glob takes every workload of trust domain `{domain}`; pin a path, \
                 e.g. `{root}ns/<namespace>/*`"
            );
            out.push(Lint::at(&file, subject.pos, "spiffe-any-workload", msg));
        }
    }
    out
}
