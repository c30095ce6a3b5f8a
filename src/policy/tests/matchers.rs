//! Matcher tests: every matcher word, type strictness and missing claims, table-driven.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::policy::compile;
use crate::policy::matcher::Matcher;
use crate::policy::yaml::{self, Node};

#[derive(serde::Deserialize)]
struct Holder {
    v: Node,
}

fn compile_matcher(expected_yaml: &str) -> Matcher {
    let h: Holder = yaml::parse(Path::new("t"), &format!("v: {expected_yaml}\n")).unwrap();
    compile::matcher(&h.v).unwrap_or_else(|e| panic!("{expected_yaml}: {e:?}"))
}

/// (expected YAML, claim value or None when missing, should match)
fn check_table(cases: &[(&str, Option<Value>, bool)]) {
    for (expected, claim, want) in cases {
        let m = compile_matcher(expected);
        assert_eq!(m.matches(claim.as_ref()), *want, "{expected} vs {claim:?}");
    }
}

#[test]
fn plain_scalars_are_exact_and_type_strict() {
    check_table(&[
        ("main", Some(json!("main")), true),
        ("main", Some(json!("Main")), false),
        ("'true'", Some(json!(true)), false),
        ("true", Some(json!(true)), true),
        ("true", Some(json!("true")), false),
        ("'123'", Some(json!(123)), false),
        ("'123'", Some(json!("123")), true),
        ("123", Some(json!("123")), false),
        ("5", Some(json!(5)), true),
        ("5", Some(json!(5.0)), true),
        ("5.0", Some(json!(5)), true),
        ("5.5", Some(json!(5.5)), true),
        ("-3", Some(json!(-3)), true),
        ("9007199254740993", Some(json!(9007199254740992_u64)), false),
        ("yes", Some(json!("yes")), true),
        ("0755", Some(json!("0755")), true),
        ("x", Some(json!(["x"])), false),
        ("x", Some(Value::Null), false),
    ]);
}

#[test]
fn glob_star_matches_across_slashes_and_colons() {
    check_table(&[
        (
            "{ glob: 'repo:acme/*' }",
            Some(json!("repo:acme/api:ref:refs/heads/main")),
            true,
        ),
        (
            "{ glob: 'repo:acme/*' }",
            Some(json!("repo:acme-evil/api")),
            false,
        ),
        (
            "{ glob: 'refs/heads/?' }",
            Some(json!("refs/heads/a")),
            true,
        ),
        (
            "{ glob: 'refs/heads/?' }",
            Some(json!("refs/heads/ab")),
            false,
        ),
        ("{ glob: 'a.c' }", Some(json!("abc")), false),
        ("{ glob: 'a[b]c' }", Some(json!("a[b]c")), true),
        ("{ glob: 'a[b]c' }", Some(json!("abc")), false),
        ("{ glob: '*' }", Some(json!("line\nbreak")), true),
        ("{ glob: 'x*' }", Some(json!("prefix-x")), false),
        ("{ glob: '*' }", Some(json!(1)), false),
    ]);
}

#[test]
fn regex_is_anchored_and_only_matches_strings() {
    check_table(&[
        ("{ regex: 'v\\d+' }", Some(json!("v12")), true),
        ("{ regex: 'v\\d+' }", Some(json!("xv12")), false),
        ("{ regex: 'v\\d+' }", Some(json!("v12x")), false),
        ("{ regex: 'a|b' }", Some(json!("ab")), false),
        ("{ regex: 'a|b' }", Some(json!("b")), true),
        ("{ regex: '\\d+' }", Some(json!(12)), false),
    ]);
}

#[test]
fn one_of_not_any_of_exists_contains() {
    check_table(&[
        (
            "{ one_of: [push, workflow_dispatch] }",
            Some(json!("push")),
            true,
        ),
        ("{ one_of: [push, 1] }", Some(json!("1")), false),
        ("{ one_of: [push, 1] }", Some(json!(1)), true),
        (
            "{ not: { one_of: ['dependabot[bot]'] } }",
            Some(json!("alice")),
            true,
        ),
        (
            "{ not: { one_of: ['dependabot[bot]'] } }",
            Some(json!("dependabot[bot]")),
            false,
        ),
        ("{ not: x }", Some(json!(1)), true),
        ("{ any_of: [{ glob: 'a*' }, b] }", Some(json!("abc")), true),
        ("{ any_of: [{ glob: 'a*' }, b] }", Some(json!("b")), true),
        ("{ any_of: [{ glob: 'a*' }, b] }", Some(json!("c")), false),
        ("{ exists: true }", Some(Value::Null), true),
        ("{ exists: false }", Some(json!("x")), false),
        ("{ contains: admin }", Some(json!(["dev", "admin"])), true),
        ("{ contains: admin }", Some(json!("admin")), false),
        (
            "{ contains: { glob: 'team-*' } }",
            Some(json!(["x", "team-a"])),
            true,
        ),
        ("{ contains: 3 }", Some(json!(["3"])), false),
    ]);
}

#[test]
fn a_missing_claim_fails_every_matcher_except_exists_false() {
    check_table(&[
        ("x", None, false),
        ("{ glob: '*' }", None, false),
        ("{ regex: '.*' }", None, false),
        ("{ one_of: [a] }", None, false),
        ("{ not: a }", None, false),
        ("{ not: { exists: true } }", None, false),
        ("{ any_of: [a, { glob: '*' }] }", None, false),
        ("{ contains: a }", None, false),
        ("{ exists: true }", None, false),
        ("{ exists: false }", None, true),
    ]);
}

#[test]
fn malformed_matchers_are_refused_with_advice() {
    for (yaml, needle) in [
        ("[a, b]", "one_of"),
        ("~", "exists: false"),
        ("{ glob: 1 }", "takes a string"),
        ("{ one_of: [] }", "at least one"),
        ("{ one_of: [{ glob: a }] }", "use `any_of`"),
        ("{ exists: 'yes' }", "true or false"),
        ("{ glob: a, regex: b }", "exactly one matcher word"),
        ("{ name: a }", "expected a value or a matcher object"),
        ("{ regex: 'a{1000}{1000}' }", "invalid regex"),
    ] {
        let h: Holder = yaml::parse(Path::new("t"), &format!("v: {yaml}\n")).unwrap();
        let err = compile::matcher(&h.v).map(|m| m.to_string()).unwrap_err();
        assert!(err.1.contains(needle), "{yaml}: {}", err.1);
    }
}

#[test]
fn matchers_render_for_people() {
    for (yaml, shown) in [
        ("'123456789'", "\"123456789\""),
        ("{ glob: 'repo:acme/*' }", "glob \"repo:acme/*\""),
        (
            "{ one_of: [push, workflow_dispatch] }",
            "one_of [\"push\", \"workflow_dispatch\"]",
        ),
        ("{ not: { exists: true } }", "not exists true"),
        ("5", "5"),
    ] {
        assert_eq!(compile_matcher(yaml).to_string(), shown);
    }
}

proptest! {
    #[test]
    fn glob_without_wildcards_is_string_equality(lit in "[a-z:/.\\[\\]()+^$|-]{0,12}", other in "[a-z:/.-]{0,12}") {
        let m = compile_matcher(&format!("{{ glob: {} }}", json!(lit)));
        prop_assert!(m.matches(Some(&json!(lit.clone()))));
        prop_assert_eq!(m.matches(Some(&json!(other.clone()))), other == lit);
    }

    #[test]
    fn glob_prefix_star_matches_every_extension(prefix in "[a-z:/]{0,8}", rest in "\\PC{0,12}") {
        let m = compile_matcher(&format!("{{ glob: {} }}", json!(format!("{prefix}*"))));
        let claim = json!(format!("{prefix}{rest}"));
        prop_assert!(m.matches(Some(&claim)));
    }
}
