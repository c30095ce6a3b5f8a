//! The `spiffe` issuer kind in `issuers.yaml`: the preset, the bundle sources, and every
//! misconfiguration refused at load with its position.

use std::path::Path;

use super::*;
use crate::domain::Algorithm;
use crate::issuer::{BundleLocation, IssuerKind, KeySourceSpec};

fn issuers_errors(text: &str) -> String {
    PolicySet::from_sources(text, &[], Path::new("tp"))
        .unwrap_err()
        .to_string()
}

#[test]
fn spiffe_preset_binds_the_trust_domain_and_fills_jwt_svid_defaults() {
    let text = "issuers:\n  mesh: { kind: spiffe, trust_domain: prod.example.org, bundle_url: https://spire.prod.example.org/bundle }\n";
    let set = PolicySet::from_sources(text, &[], Path::new("tp")).unwrap();
    let mesh = &set.issuers()[0];
    assert_eq!(mesh.kind, IssuerKind::Spiffe);
    assert_eq!(mesh.issuer_url, "spiffe://prod.example.org");
    assert_eq!(mesh.trust_domain().unwrap().as_str(), "prod.example.org");
    let KeySourceSpec::SpiffeBundle { bundle, .. } = &mesh.keys else {
        panic!("{:?}", mesh.keys)
    };
    assert_eq!(
        bundle,
        &BundleLocation::Url("https://spire.prod.example.org/bundle".parse().unwrap())
    );
    assert_eq!(
        mesh.algorithms,
        [Algorithm::ES256, Algorithm::ES384, Algorithm::RS256]
    );
    assert_eq!(
        mesh.max_token_age,
        Some(std::time::Duration::from_secs(3600))
    );
    assert!(!mesh.require_jti, "SPIRE's JWT-SVIDs carry no jti");
}

#[test]
fn a_pinned_bundle_file_is_resolved_against_the_policy_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::write(dir.path().join("keys/prod.json"), r#"{"keys": []}"#).unwrap();
    let text = "issuers:\n  mesh:\n    kind: spiffe\n    trust_domain: prod.example.org\n    bundle_file: keys/prod.json\n    algorithms: [ES256]\n    require_jti: true\n";
    let set = PolicySet::from_sources(text, &[], dir.path()).unwrap();
    let mesh = &set.issuers()[0];
    let KeySourceSpec::SpiffeBundle { bundle, .. } = &mesh.keys else {
        panic!("{:?}", mesh.keys)
    };
    assert_eq!(
        bundle,
        &BundleLocation::File(dir.path().join("keys/prod.json"))
    );
    assert_eq!(
        mesh.algorithms,
        [Algorithm::ES256],
        "defaults are overridable"
    );
    assert!(mesh.require_jti);
}

#[test]
fn each_spiffe_misconfiguration_is_refused_at_its_position() {
    let td = "kind: spiffe, trust_domain: prod.example.org";
    let url = "bundle_url: https://spire.example/bundle";
    for (entry, expected) in [
        (
            format!("kind: spiffe, {url}"),
            "tp/issuers.yaml:2:6: `trust_domain` is required",
        ),
        (
            format!("kind: spiffe, trust_domain: Prod.example.org, {url}"),
            "tp/issuers.yaml:2:36: `trust_domain`: the trust domain must be lower case",
        ),
        (
            format!("kind: spiffe, trust_domain: 'spiffe://prod.example.org', {url}"),
            "`trust_domain`: a SPIFFE ID has no port and no userinfo",
        ),
        (td.to_string(), "needs `bundle_url` or `bundle_file`"),
        (
            format!("{td}, {url}, bundle_file: b.json"),
            "either `bundle_file` or `bundle_url`",
        ),
        (
            format!("{td}, bundle_file: nope.json"),
            "bundle_file `nope.json` not found",
        ),
        (
            format!("{td}, bundle_url: http://spire.example/bundle"),
            "must use https",
        ),
        (
            format!("{td}, bundle_url: https://spire.example/b, insecure_http: true"),
            "only allowed for loopback",
        ),
        (
            format!("{td}, {url}, url: https://spire.example"),
            "kind `spiffe` takes no `url`",
        ),
        (
            format!("{td}, {url}, jwks_url: https://x/k"),
            "kind `spiffe` takes no `jwks_url`",
        ),
        (
            format!("{td}, {url}, algorithms: [HS256]"),
            "`HS256` is never accepted",
        ),
        (
            "kind: oidc, url: https://idp.example.com, trust_domain: prod.example.org".to_string(),
            "`trust_domain` is only for kind `spiffe`, not `oidc`",
        ),
        (
            format!("kind: github-actions, {url}"),
            "`bundle_url` is only for kind `spiffe`, not `github-actions`",
        ),
    ] {
        let e = issuers_errors(&format!("issuers:\n  a: {{ {entry} }}\n"));
        assert!(e.contains(expected), "{entry}\n{e}");
    }
}

#[test]
fn a_plain_http_bundle_url_is_allowed_only_on_loopback_when_marked() {
    let text = "issuers:\n  mesh: { kind: spiffe, trust_domain: td, bundle_url: 'http://127.0.0.1:9/bundle', insecure_http: true }\n";
    assert!(PolicySet::from_sources(text, &[], Path::new("tp")).is_ok());
}

#[test]
fn a_policy_for_a_spiffe_issuer_matches_spiffe_ids_by_glob() {
    let issuers = "issuers:\n  mesh: { kind: spiffe, trust_domain: prod.example.org, bundle_url: https://spire.example/bundle }\n";
    let policy = "issuer: mesh\naudience: https://ferry.example\nsubject: { glob: \"spiffe://prod.example.org/ns/ci/*\" }\ngrant:\n  audience: https://api.internal\n  scopes: [read]\n  ttl: 5m\n";
    let set = PolicySet::from_sources(
        issuers,
        &[("ci.yaml".to_string(), policy.to_string())],
        Path::new("tp"),
    )
    .unwrap();
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
}

fn spiffe_lints(subject_line: &str) -> Vec<String> {
    let issuers = "issuers:\n  mesh: { kind: spiffe, trust_domain: prod.example.org, bundle_url: https://spire.example/bundle }\n";
    let policy = format!("issuer: mesh\naudience: https://ferry.example\n{subject_line}grant:\n  audience: https://api.internal\n  scopes: [read]\n  ttl: 5m\n");
    let set = PolicySet::from_sources(issuers, &[("ci.yaml".to_string(), policy)], Path::new("tp"))
        .unwrap();
    set.warnings().iter().map(ToString::to_string).collect()
}

#[test]
fn a_spiffe_subject_outside_the_issuers_trust_domain_is_linted() {
    for subject in [
        "subject: spiffe://staging.example.org/ns/ci/sa/deployer\n",
        "subject: { glob: \"spiffe://staging.example.org/ns/*\" }\n",
        "subject: { glob: \"repo:acme/*\" }\n",
        "subject: { glob: \"spiffe://prod.example.org.evil/*\" }\n",
    ] {
        let lints = spiffe_lints(subject);
        assert!(
            lints
                .iter()
                .any(|l| l.contains("warning[spiffe-other-trust-domain]")),
            "{subject}: {lints:?}"
        );
    }
    for subject in [
        "subject: spiffe://prod.example.org/ns/ci/sa/deployer\n",
        "subject: { glob: \"spiffe://prod.example.org/ns/ci/*\" }\n",
        "subject: { glob: \"spiffe://*/ns/ci/*\" }\n",
    ] {
        assert!(spiffe_lints(subject).is_empty(), "{subject}");
    }
}

#[test]
fn a_spiffe_policy_for_every_workload_of_the_trust_domain_is_linted() {
    for subject in ["", "subject: { glob: \"spiffe://prod.example.org/*\" }\n"] {
        let lints = spiffe_lints(subject);
        assert!(
            lints
                .iter()
                .any(|l| l.contains("warning[spiffe-any-workload]")),
            "{subject}: {lints:?}"
        );
    }
}
