//! Lint tests: each code fires on the pattern it is for, at that node, and not on safe ones.

use super::*;

fn lints(issuer: &str, extra: &str) -> Vec<String> {
    let p = format!("issuer: {issuer}\n{extra}grant: {{ audience: a, scopes: [x], ttl: 1m }}\n");
    let s = set(&[("p.yaml", &p)]).unwrap_or_else(|e| panic!("{e}"));
    s.warnings().iter().map(ToString::to_string).collect()
}

#[test]
fn wide_glob_flags_a_star_right_after_a_name() {
    let w = lints("corp", "subject: { glob: 'repo:acme*' }\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("tp/p.yaml:2:10: warning[wide-glob]:"),
        "{w:?}"
    );
    assert!(w[0].contains("did you mean `repo:acme/*`"), "{w:?}");
    let w = lints(
        "corp",
        "claims:\n  ref: { any_of: [{ glob: 'refs/heads/rel*' }] }\n",
    );
    assert!(
        w[0].contains("warning[wide-glob]") && w[0].contains("claims.ref"),
        "{w:?}"
    );
}

#[test]
fn wide_glob_is_quiet_after_a_delimiter_or_under_not() {
    for extra in [
        "subject: { glob: 'repo:acme/*' }\n",
        "subject: { glob: 'repo:acme/api:*' }\n",
        "claims:\n  actor: { not: { glob: 'bot*' } }\n",
        "claims:\n  actor: { glob: '*[bot]' }\n",
    ] {
        assert!(lints("corp", extra).is_empty(), "{extra}");
    }
}

#[test]
fn subject_any_flags_match_all_subjects() {
    for extra in [
        "subject: { glob: '*' }\n",
        "subject: { regex: '.*' }\n",
        "subject: { regex: '.+' }\n",
    ] {
        let w = lints("corp", extra);
        assert_eq!(w.len(), 1, "{extra}: {w:?}");
        assert!(
            w[0].starts_with("tp/p.yaml:2:10: warning[subject-any]:"),
            "{w:?}"
        );
    }
}

#[test]
fn github_policy_pinning_names_without_numeric_ids_is_flagged() {
    let w = lints("github", "subject: { glob: 'repo:acme/api:*' }\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("tp/p.yaml:2:10: warning[github-no-numeric-id]:"),
        "{w:?}"
    );
    let w = lints("github", "claims:\n  repository_owner: acme\n");
    assert!(
        w[0].contains("github-no-numeric-id") && w[0].contains("claims.repository_owner"),
        "{w:?}"
    );
    let with_id = "subject: { glob: 'repo:acme/api:*' }\nclaims: { repository_owner_id: '42' }\n";
    assert!(lints("github", with_id).is_empty());
    assert!(
        lints("corp", "subject: repo:acme/api:ref:refs/heads/main\n").is_empty(),
        "only GitHub issuers"
    );
}
