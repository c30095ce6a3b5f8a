//! What a test asks of its broker: the policy files, and settings changes (config, not code).

use ferry::config::Settings;

/// The audience the standard deploy policy grants.
pub const DEPLOY_AUDIENCE: &str = "https://deploy.acme.internal";

/// The README's `demo-deploy` policy, against the test issuer `local-ci`. No `audience:`, so
/// subject tokens must be for the broker itself.
pub const DEPLOY_POLICY: &str = r#"
description: GitHub Actions on main of acme/api may deploy the API
issuer: local-ci
subject: { glob: "repo:acme/api:*" }
claims:
  repository_id: "123456789"
  ref: refs/heads/main
  actor: { not: { one_of: ["dependabot[bot]"] } }
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api, read:artifacts]
  ttl: 15m
  claims:
    repository: repository
    run_id: run_id
"#;

/// The `issuers.yaml` every test broker gets: one OIDC issuer, the loopback dev issuer.
pub fn issuers_yaml(issuer_url: &str) -> String {
    format!(
        r#"issuers:
  local-ci:
    kind: oidc
    url: {issuer_url}
    insecure_http: true
    algorithms: [RS256, ES256]
    require_jti: true
    max_token_age: 1h
"#
    )
}

type Tweak = Box<dyn FnOnce(&mut Settings) + Send>;

/// The policy directory and settings of one test broker.
pub struct Fixture {
    /// `(file stem, YAML)`: each becomes `<stem>.yaml`, so the stem is the policy name.
    pub(crate) policies: Vec<(String, String)>,
    pub(crate) guardrails: Option<String>,
    pub(crate) tweaks: Vec<Tweak>,
    /// Reuse this data directory instead of a fresh temporary one (restarts, key reuse).
    pub(crate) data_dir: Option<std::path::PathBuf>,
    /// More `issuers.yaml` entries after `local-ci` (YAML indented as under `issuers:`).
    pub(crate) extra_issuers: Vec<String>,
}

impl Fixture {
    /// No policies at all: every exchange is denied.
    pub fn empty() -> Fixture {
        Fixture {
            policies: Vec::new(),
            guardrails: None,
            tweaks: Vec::new(),
            data_dir: None,
            extra_issuers: Vec::new(),
        }
    }

    /// The standard `demo-deploy` policy.
    pub fn deploy() -> Fixture {
        Fixture::empty().policy("demo-deploy", DEPLOY_POLICY)
    }

    pub fn policy(mut self, name: &str, yaml: &str) -> Fixture {
        self.policies.push((name.to_string(), yaml.to_string()));
        self
    }

    pub fn guardrails(mut self, yaml: &str) -> Fixture {
        self.guardrails = Some(yaml.to_string());
        self
    }

    /// Changes settings after `Settings::for_tests`, before the app is built.
    pub fn settings(mut self, tweak: impl FnOnce(&mut Settings) + Send + 'static) -> Fixture {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Adds issuers to `issuers.yaml`, e.g. `"  mesh:\n    kind: oidc\n    url: ...\n"`.
    pub fn issuers(mut self, yaml: &str) -> Fixture {
        self.extra_issuers.push(yaml.to_string());
        self
    }

    pub fn data_dir(mut self, dir: &std::path::Path) -> Fixture {
        self.data_dir = Some(dir.to_path_buf());
        self
    }
}

/// A one-policy fixture for matcher tests: the deploy grant under `conditions` (YAML lines
/// that follow `issuer:` in a policy file, e.g. `claims:` blocks).
pub fn policy_with(conditions: &str) -> String {
    format!(
        r#"issuer: local-ci
{conditions}
grant:
  audience: https://deploy.acme.internal
  scopes: [deploy:api]
  ttl: 10m
"#
    )
}
