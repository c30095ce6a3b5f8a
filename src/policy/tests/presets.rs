//! Issuer presets (`gitlab`, `buildkite`, `circleci`, `kubernetes`, GHES by `url`): the defaults
//! each kind fills in, that every default can be overridden, and the per-kind URL rules.

use std::path::Path;
use std::time::Duration;

use crate::domain::Algorithm;
use crate::issuer::{IssuerKind, IssuerSpec, KeySourceSpec};

use super::*;

fn issuers(text: &str) -> Vec<IssuerSpec> {
    PolicySet::from_sources(text, &[], Path::new("tp"))
        .unwrap_or_else(|e| panic!("issuers load: {e}"))
        .issuers()
        .to_vec()
}

fn load_error(text: &str) -> String {
    match PolicySet::from_sources(text, &[], Path::new("tp")) {
        Ok(_) => panic!("expected a load error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const CIRCLECI_ORG: &str = "https://oidc.circleci.com/org/6e8f4a1c-2b3d-4c5e-9f70-8a9b0c1d2e3f";

#[test]
fn gitlab_defaults_to_gitlab_com_and_self_managed_is_chosen_by_url() {
    let specs = issuers(
        "issuers:\n  a-saas: { kind: gitlab }\n  b-own: { kind: gitlab, url: https://gitlab.acme.internal }\n",
    );
    let saas = &specs[0];
    assert_eq!(saas.kind, IssuerKind::Gitlab);
    assert_eq!(saas.issuer_url, "https://gitlab.com");
    assert_eq!(saas.algorithms, vec![Algorithm::RS256]);
    assert_eq!(saas.max_token_age, Some(Duration::from_secs(3600)));
    assert!(saas.require_jti, "GitLab ID tokens always carry a jti");
    assert_eq!(
        saas.keys,
        KeySourceSpec::Discovery("https://gitlab.com".parse().unwrap())
    );
    assert_eq!(specs[1].issuer_url, "https://gitlab.acme.internal");
}

#[test]
fn buildkite_defaults_to_the_agent_issuer() {
    let bk = &issuers("issuers:\n  bk: { kind: buildkite }\n")[0];
    assert_eq!(bk.issuer_url, "https://agent.buildkite.com");
    assert_eq!(bk.algorithms, vec![Algorithm::RS256]);
    assert_eq!(bk.max_token_age, Some(Duration::from_secs(900)));
    assert!(!bk.require_jti);
}

#[test]
fn circleci_needs_its_organisation_url() {
    let e = load_error("issuers:\n  cci: { kind: circleci }\n");
    assert!(e.contains("`url` is required for kind `circleci`"), "{e}");
    assert!(e.contains("https://oidc.circleci.com/org/ORG_ID"), "{e}");
    let e = load_error("issuers:\n  cci: { kind: circleci, url: https://oidc.circleci.com }\n");
    assert!(e.contains("is per organisation"), "{e}");
    let e = load_error(
        "issuers:\n  cci: { kind: circleci, url: https://oidc.circleci.com/org/acme }\n",
    );
    assert!(e.contains("is per organisation"), "{e}");
    let cci = &issuers(&format!(
        "issuers:\n  cci: {{ kind: circleci, url: {CIRCLECI_ORG} }}\n"
    ))[0];
    assert_eq!(cci.issuer_url, CIRCLECI_ORG);
    assert_eq!(cci.max_token_age, Some(Duration::from_secs(3600)));
    assert!(!cci.require_jti);
}

#[test]
fn kubernetes_needs_the_cluster_url_and_may_pin_keys_in_a_file() {
    let e = load_error("issuers:\n  k8s: { kind: kubernetes }\n");
    assert!(e.contains("`url` is required for kind `kubernetes`"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ci.jwks.json"), r#"{"keys":[]}"#).unwrap();
    let text = "issuers:\n  k8s:\n    kind: kubernetes\n    url: https://kubernetes.default.svc.cluster.local\n    jwks_file: ci.jwks.json\n";
    let set = PolicySet::from_sources(text, &[], dir.path()).unwrap();
    let k8s = &set.issuers()[0];
    assert_eq!(k8s.kind, IssuerKind::Kubernetes);
    assert_eq!(
        k8s.keys,
        KeySourceSpec::JwksFile(dir.path().join("ci.jwks.json"))
    );
    assert_eq!(k8s.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(k8s.max_token_age, Some(Duration::from_secs(3600)));
    assert!(!k8s.require_jti, "jti only from Kubernetes 1.29");
}

#[test]
fn every_preset_default_can_be_overridden() {
    for kind in [
        "gitlab",
        "buildkite",
        "circleci",
        "kubernetes",
        "github-actions",
    ] {
        let text = format!(
            "issuers:\n  x: {{ kind: {kind}, url: {CIRCLECI_ORG}, algorithms: [ES384], \
             max_token_age: 2h, require_jti: true }}\n"
        );
        let x = &issuers(&text)[0];
        assert_eq!(x.algorithms, vec![Algorithm::ES384], "{kind}");
        assert_eq!(x.max_token_age, Some(Duration::from_secs(7200)), "{kind}");
        assert!(x.require_jti, "{kind}");
        let text =
            format!("issuers:\n  x: {{ kind: {kind}, url: {CIRCLECI_ORG}, require_jti: false }}\n");
        assert!(!issuers(&text)[0].require_jti, "{kind}");
    }
}

#[test]
fn github_enterprise_server_is_chosen_by_url() {
    let ghes = &issuers(
        "issuers:\n  ghes: { kind: github-actions, url: https://ghe.acme.com/_services/token }\n",
    )[0];
    assert_eq!(ghes.issuer_url, "https://ghe.acme.com/_services/token");
    assert_eq!(ghes.algorithms, vec![Algorithm::RS256]);
    assert!(ghes.require_jti);
}
