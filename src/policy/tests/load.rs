//! Loading: the example directory, strictness, and errors that point at file:line:col.

use std::path::Path;

use super::*;

fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("trust-policies")
}

#[test]
fn example_trust_policies_load_without_errors_or_lints() {
    let set = PolicySet::load(&example_dir()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = set.policy_names().map(|n| n.as_str()).collect();
    assert_eq!(
        names[..7],
        [
            "agent-tickets-hop",
            "agent-tickets",
            "demo-deploy",
            "demo-read-artifacts",
            "deploy-api",
            "mesh-ci-deploy",
            "providers-buildkite"
        ]
    );
    assert_eq!(names[11], "resource-server-introspect");
    let providers = ["buildkite", "circleci", "github", "gitlab", "kubernetes"];
    let expected: Vec<String> = providers.iter().map(|p| format!("providers-{p}")).collect();
    assert_eq!(names[6..11], expected);
    assert_eq!(set.len(), 12);
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    assert_eq!(set.version().len(), 64);
    let local = set
        .issuers()
        .iter()
        .find(|i| i.name.as_str() == "local-ci")
        .unwrap();
    assert_eq!(local.issuer_url, "http://127.0.0.1:8090");
    assert!(local.require_jti && local.insecure_http);
}

#[test]
fn unknown_field_names_file_line_column_and_the_expected_fields() {
    let errs = errors_of(&policy_with("subjekt: x\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("tp/p.yaml:2:1: unknown field `subjekt`"),
        "{}",
        errs[0]
    );
    assert!(
        errs[0].contains("description") && !errs[0].contains('\n'),
        "{}",
        errs[0]
    );
}

#[test]
fn duplicate_keys_are_errors() {
    let errs = errors_of(&policy_with("claims:\n  ref: a\n  ref: b\n"));
    assert!(
        errs[0].starts_with("tp/p.yaml:4:3: duplicate key `ref`"),
        "{errs:?}"
    );
}

#[test]
fn unknown_issuer_lists_the_declared_ones() {
    let errs = errors_of("issuer: gitlab\ngrant: { audience: a, scopes: [x], ttl: 1m }\n");
    assert!(
        errs[0].starts_with("tp/p.yaml:1:9: unknown issuer `gitlab`"),
        "{errs:?}"
    );
    assert!(errs[0].contains("`corp`, `github`"), "{errs:?}");
}

#[test]
fn every_problem_in_every_file_is_reported() {
    let bad1 = policy_with("claims:\n  a: [x]\n  b: { glob: x, regex: y }\n");
    let bad2 = "issuer: corp\nwhen: 'claims.x =='\ngrant: { audience: a, scopes: [], ttl: 48h, credential: paper }\n";
    let err = set(&[("a.yaml", &bad1), ("b.yaml", bad2)]).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.0.len(), 6, "{text}");
    for needle in [
        "tp/a.yaml:3:6: a list is not an expected value",
        "tp/a.yaml:4:6: a matcher object takes exactly one matcher word",
        "tp/b.yaml:2:7: invalid CEL in `when`",
        "`grant.scopes` must list at least one scope",
        "`grant.ttl` must be between 1s and 24h",
        "unknown credential `paper`, expected `jwt` or `opaque`",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn reserved_credential_claims_are_refused() {
    let p = "issuer: corp\ngrant:\n  audience: a\n  scopes: [x]\n  ttl: 1m\n  claims: { sub: repository, repo: repository }\n";
    let errs = errors_of(p);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("`sub` is a reserved claim"), "{errs:?}");
}

#[test]
fn mixing_a_matcher_word_with_claim_names_says_what_to_write() {
    let errs = errors_of(&policy_with("claims:\n  ref: { glob: x, branch: y }\n"));
    assert!(
        errs[0].contains("cannot be mixed with the claim name `branch`"),
        "{errs:?}"
    );
}

#[test]
fn invalid_regex_is_a_load_error() {
    let errs = errors_of(&policy_with("subject: { regex: '(' }\n"));
    assert!(
        errs[0].starts_with("tp/p.yaml:2:19: invalid regex"),
        "{errs:?}"
    );
}

fn issuers_errors(text: &str) -> String {
    PolicySet::from_sources(text, &[], Path::new("tp"))
        .unwrap_err()
        .to_string()
}

#[test]
fn issuer_urls_must_be_https_unless_loopback_and_marked_insecure() {
    let e = issuers_errors("issuers:\n  a: { kind: oidc, url: http://idp.example.com }\n");
    assert!(e.contains("must use https"), "{e}");
    let e = issuers_errors(
        "issuers:\n  a: { kind: oidc, url: https://idp.example.com, insecure_http: true }\n",
    );
    assert!(e.contains("only allowed for loopback"), "{e}");
    let ok = "issuers:\n  a: { kind: oidc, url: 'http://[::1]:8080', insecure_http: true }\n  b: { kind: oidc, url: http://localhost, insecure_http: true }\n";
    let set = PolicySet::from_sources(ok, &[], Path::new("tp")).unwrap();
    assert_eq!(
        set.issuers()[1].issuer_url,
        "http://localhost",
        "kept exactly as written"
    );
}

#[test]
fn issuer_kinds_algorithms_and_key_sources_are_validated() {
    let e = issuers_errors("issuers:\n  a: { kind: gitlub, url: https://x }\n");
    assert!(
        e.contains(
            "unsupported issuer kind `gitlub`, expected one of `oidc`, `github-actions`, \
             `gitlab`, `buildkite`, `circleci`, `kubernetes`"
        ),
        "{e}"
    );
    let e = issuers_errors("issuers:\n  a: { kind: github-actions, algorithms: [HS256] }\n");
    assert!(
        e.contains("tp/issuers.yaml:2:43: algorithm `HS256` is never accepted"),
        "{e}"
    );
    let e = issuers_errors("issuers:\n  a: { kind: github-actions, algorithms: [] }\n");
    assert!(e.contains("at least one algorithm"), "{e}");
    let e = issuers_errors("issuers:\n  a: { kind: oidc }\n");
    assert!(e.contains("`url` is required"), "{e}");
    let e = issuers_errors(
        "issuers:\n  a: { kind: oidc, url: https://x, jwks_url: https://x/k, jwks_file: k.json }\n",
    );
    assert!(e.contains("not both"), "{e}");
    let e = issuers_errors("issuers:\n  a: { kind: oidc, url: https://x, jwks_file: nope.json }\n");
    assert!(e.contains("jwks_file `nope.json` not found"), "{e}");
}

#[test]
fn github_preset_fills_defaults_and_every_default_is_overridable() {
    use crate::issuer::KeySourceSpec;
    let text = "issuers:\n  gh: { kind: github-actions }\n  ghes: { kind: github-actions, url: https://ghe.acme.com/_services/token, require_jti: false, max_token_age: 5m }\n";
    let set = PolicySet::from_sources(text, &[], Path::new("tp")).unwrap();
    let gh = &set.issuers()[0];
    assert_eq!(gh.issuer_url, "https://token.actions.githubusercontent.com");
    assert!(matches!(gh.keys, KeySourceSpec::Discovery(_)));
    assert_eq!(gh.max_token_age, Some(std::time::Duration::from_secs(900)));
    assert!(gh.require_jti);
    let ghes = &set.issuers()[1];
    assert!(!ghes.require_jti);
    assert_eq!(
        ghes.max_token_age,
        Some(std::time::Duration::from_secs(300))
    );
}

#[test]
fn guardrails_file_loads_strictly_and_tests_dir_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("issuers.yaml"), ISSUERS).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/x.test.yaml"), "not: [a policy").unwrap();
    let before = PolicySet::load(dir.path()).unwrap();
    std::fs::write(dir.path().join("guardrails.yaml"), "max_ttl: 1h\n").unwrap();
    let after = PolicySet::load(dir.path()).unwrap();
    assert_ne!(
        before.version(),
        after.version(),
        "guardrails are part of the version"
    );
    std::fs::write(
        dir.path().join("guardrails.yaml"),
        "max_ttl: 1h\nissuers_allowed: [github, nope]\ndeny:\n  - description: x\n",
    )
    .unwrap();
    let e = PolicySet::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("guardrails.yaml:2:27: unknown issuer `nope`"),
        "{e}"
    );
    assert!(e.contains("guardrails.yaml:4:5: a deny rule needs"), "{e}");
    std::fs::write(dir.path().join("guardrails.yaml"), "max_tll: 1h\n").unwrap();
    let e = PolicySet::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("guardrails.yaml:1:1: unknown field `max_tll`"),
        "{e}"
    );
}

#[test]
fn version_changes_with_any_byte_and_not_with_order() {
    let p = policy_with("");
    let a = set(&[("a.yaml", &p), ("b.yaml", &p)]).unwrap();
    let b = set(&[("b.yaml", &p), ("a.yaml", &p)]).unwrap();
    let c = set(&[("a.yaml", &p), ("b.yaml", &format!("{p}\n"))]).unwrap();
    assert_eq!(a.version(), b.version());
    assert_ne!(a.version(), c.version());
}

#[test]
fn policy_set_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<PolicySet>();
}
