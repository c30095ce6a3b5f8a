//! `kubernetes-subject-mismatch`: a Kubernetes policy whose `subject` and nested `kubernetes.io`
//! claims can disagree. A projected token's `sub` is always `system:serviceaccount:NS:NAME`, and
//! its `kubernetes.io.namespace` / `kubernetes.io.serviceaccount.name` are the same NS and NAME,
//! so a policy that pins them to different values can never hold, and a subject that is not of
//! that form matches no projected token at all. Pure.

use std::path::Path;

use super::error::Lint;
use super::lint_provider::any_literal;
use super::matcher::{Matcher, Scalar};
use super::model::{Condition, Policy, Target};

const SUBJECT_PREFIX: &str = "system:serviceaccount:";

/// Warnings for the top-level subject against the top-level nested claims.
pub(crate) fn subject_mismatch(p: &Policy, file: &Path) -> Vec<Lint> {
    let Some(subject) = &p.subject else {
        return Vec::new();
    };
    if !any_literal(&subject.matcher, could_be_service_account) {
        if let Some(source) = literal(&subject.matcher) {
            let msg = format!(
                "`subject` `{source}` can never match a projected service-account token, whose \
                 `sub` is always `{SUBJECT_PREFIX}NAMESPACE:NAME`"
            );
            return vec![Lint::at(
                file,
                subject.pos,
                "kubernetes-subject-mismatch",
                msg,
            )];
        }
        return Vec::new();
    }
    let Some(pinned) = literal(&subject.matcher).and_then(|s| s.strip_prefix(SUBJECT_PREFIX))
    else {
        return Vec::new();
    };
    let mut parts = pinned.splitn(2, ':');
    let (ns, name) = (parts.next(), parts.next());
    let mut out = Vec::new();
    let pairs = [
        (ns, &["kubernetes.io", "namespace"][..], "namespace"),
        (
            name,
            &["kubernetes.io", "serviceaccount", "name"][..],
            "service account",
        ),
    ];
    for (from_subject, path, what) in pairs {
        let Some(from_subject) = from_subject.filter(|s| !s.contains(['*', '?'])) else {
            continue;
        };
        for c in p.claims.iter().filter(|c| is_claim(c, path)) {
            if let Matcher::Exact(Scalar::String(want)) = &c.matcher {
                if want != from_subject {
                    let msg = format!(
                        "`subject` pins {what} `{from_subject}` but `{}` expects `{want}`: a \
                         projected token carries the same {what} in both, so this policy can \
                         never hold",
                        c.path
                    );
                    out.push(Lint::at(file, c.pos, "kubernetes-subject-mismatch", msg));
                }
            }
        }
    }
    out
}

/// The string of an exact subject, or the source of a glob one.
fn literal(m: &Matcher) -> Option<&str> {
    match m {
        Matcher::Exact(Scalar::String(s)) => Some(s),
        Matcher::Glob(p) => Some(&p.source),
        _ => None,
    }
}

/// The literal text before the first wildcard is compatible with `system:serviceaccount:`.
fn could_be_service_account(s: &str) -> bool {
    let head = s.split(['*', '?']).next().unwrap_or_default();
    head.starts_with(SUBJECT_PREFIX) || SUBJECT_PREFIX.starts_with(head)
}

fn is_claim(c: &Condition, path: &[&str]) -> bool {
    matches!(&c.target, Target::Claim(p) if p.iter().map(String::as_str).eq(path.iter().copied()))
}
