//! Lint tests: each code fires on the pattern it is for, at that node, and not on safe ones.

use super::*;

fn lints(issuer: &str, extra: &str) -> Vec<String> {
    let p = format!("issuer: {issuer}\n{extra}grant: {{ audience: a, scopes: [x], ttl: 1m }}\n");
    let s = set(&[("p.yaml", &p)]).unwrap_or_else(|e| panic!("{e}"));
    // Codes every policy of this helper would raise; they have their own tests below.
    let quiet = ["missing-audience", "unused-issuer"];
    s.warnings()
        .iter()
        .filter(|l| !quiet.contains(&l.code))
        .map(ToString::to_string)
        .collect()
}

/// Every warning of a set, as `(code, FILE:LINE)`.
fn codes(s: &PolicySet) -> Vec<(&'static str, String)> {
    s.warnings()
        .iter()
        .map(|l| (l.code, format!("{}:{}", l.file.display(), l.line)))
        .collect()
}

#[test]
fn missing_audience_and_unused_issuer_are_flagged() {
    let s = set(&[("p.yaml", &policy_with(""))]).unwrap();
    assert_eq!(
        codes(&s),
        vec![
            ("missing-audience", "tp/p.yaml:1".to_string()),
            ("unused-issuer", "tp/issuers.yaml:2".to_string()),
        ]
    );
    let pinned = policy_with("audience: https://ferry.internal\n");
    let s = set(&[
        ("p.yaml", &pinned),
        ("q.yaml", &pinned.replace("corp", "github")),
    ])
    .unwrap();
    assert!(
        codes(&s)
            .iter()
            .all(|(c, _)| *c != "missing-audience" && *c != "unused-issuer"),
        "{:?}",
        codes(&s)
    );
}

#[test]
fn regex_crossing_path_segments_is_flagged() {
    let w = lints(
        "corp",
        "claims:\n  workflow: { regex: 'acme/.*/deploy\\.yml' }\n",
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("tp/p.yaml:3:13: warning[regex-crosses-segment]:"),
        "{w:?}"
    );
    assert!(w[0].contains("`[^/]*`"), "{w:?}");
    assert!(lints(
        "corp",
        "claims:\n  workflow: { regex: 'acme/[^/]+/deploy\\.yml' }\n"
    )
    .is_empty());
    assert!(
        lints("corp", "claims:\n  ref: { regex: 'v.*' }\n").is_empty(),
        "no `/`, no segments"
    );
}

#[test]
fn ttl_above_the_guardrail_is_flagged_at_grant_ttl() {
    let p = policy_with("audience: a\n").replace("ttl: 15m", "ttl: 2h");
    let s = PolicySet::from_sources_with_guardrails(
        ISSUERS,
        "max_ttl: 1h\n",
        &[("p.yaml".to_string(), p)],
        Path::new("tp"),
    )
    .unwrap();
    let w: Vec<String> = s
        .warnings()
        .iter()
        .filter(|l| l.code == "ttl-above-guardrail")
        .map(ToString::to_string)
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("tp/p.yaml:6:8: warning[ttl-above-guardrail]: `grant.ttl` is 2h, above"),
        "{w:?}"
    );
}

#[test]
fn a_policy_shadowed_by_an_earlier_one_that_always_wins_is_flagged() {
    let broad = policy_with("audience: a\nsubject: { glob: 'svc-*' }\n");
    let narrow = policy_with("audience: a\nsubject: { glob: 'svc-*' }\nclaims: { ref: main }\n");
    let s = set(&[("a-broad.yaml", &broad), ("b-narrow.yaml", &narrow)]).unwrap();
    let shadowed: Vec<_> = codes(&s)
        .into_iter()
        .filter(|(c, _)| *c == "shadowed-policy")
        .collect();
    assert_eq!(
        shadowed,
        vec![("shadowed-policy", "tp/b-narrow.yaml:1".to_string())]
    );
    // In the other order the narrow one is tried first and the broad one still catches the rest.
    let s = set(&[("a-narrow.yaml", &narrow), ("b-broad.yaml", &broad)]).unwrap();
    assert!(codes(&s).iter().all(|(c, _)| *c != "shadowed-policy"));
    // An earlier audit-mode policy never wins.
    let s = set(&[
        ("a-broad.yaml", &format!("{broad}mode: audit\n")),
        ("b-narrow.yaml", &narrow),
    ])
    .unwrap();
    assert!(codes(&s).iter().all(|(c, _)| *c != "shadowed-policy"));
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
