//! Issuer presets: what each [`IssuerKind`] fills in when `issuers.yaml` leaves it out (POLICY.md
//! "issuers.yaml"): the public URL where one exists, the algorithm allowlist, the max token age
//! and whether `jti` is required. Every value can be overridden in the entry.
//!
//! Pure data. The numbers follow what each provider really issues (see README "Issuers"): a
//! token that is requested on demand (GitHub, Buildkite) is used within minutes; a token minted
//! at job start (GitLab, CircleCI) or refreshed by the kubelet (Kubernetes) can be up to an hour
//! old when it is exchanged.

use std::time::Duration;

use crate::domain::Algorithm;

use super::IssuerKind;

const MINUTES_15: Duration = Duration::from_secs(15 * 60);
const HOUR: Duration = Duration::from_secs(60 * 60);

/// The defaults of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// The issuer URL when the provider has one public issuer (`None`: `url` is required).
    pub url: Option<&'static str>,
    pub algorithms: &'static [Algorithm],
    pub max_token_age: Option<Duration>,
    pub require_jti: bool,
}

impl IssuerKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [IssuerKind; 8] = [
        IssuerKind::Oidc,
        IssuerKind::GithubActions,
        IssuerKind::Gitlab,
        IssuerKind::Buildkite,
        IssuerKind::Circleci,
        IssuerKind::Kubernetes,
        IssuerKind::Spiffe,
        IssuerKind::Ferry,
    ];

    /// The kind named `s` in `issuers.yaml`.
    pub fn parse(s: &str) -> Option<IssuerKind> {
        IssuerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The defaults this kind fills in.
    pub fn preset(self) -> Preset {
        match self {
            IssuerKind::Oidc => Preset {
                url: None,
                algorithms: &[Algorithm::RS256, Algorithm::ES256],
                max_token_age: None,
                require_jti: false,
            },
            IssuerKind::GithubActions => Preset {
                url: Some("https://token.actions.githubusercontent.com"),
                algorithms: &[Algorithm::RS256],
                max_token_age: Some(MINUTES_15),
                require_jti: true,
            },
            // ID tokens are minted when the job starts and live for the job's timeout (1 h by
            // default); every one carries a `jti`.
            IssuerKind::Gitlab => Preset {
                url: Some("https://gitlab.com"),
                algorithms: &[Algorithm::RS256],
                max_token_age: Some(HOUR),
                require_jti: true,
            },
            // `buildkite-agent oidc request-token` mints on demand (5 min by default); Buildkite
            // does not document a `jti`, so none is required.
            IssuerKind::Buildkite => Preset {
                url: Some("https://agent.buildkite.com"),
                algorithms: &[Algorithm::RS256],
                max_token_age: Some(MINUTES_15),
                require_jti: false,
            },
            // `$CIRCLE_OIDC_TOKEN` is minted at job start and valid for one hour; CircleCI does
            // not document a `jti`. The issuer is per organisation, so there is no default URL.
            IssuerKind::Circleci => Preset {
                url: None,
                algorithms: &[Algorithm::RS256],
                max_token_age: Some(HOUR),
                require_jti: false,
            },
            // Projected tokens default to 1 h and are refreshed by the kubelet at 80 % of
            // their life; `jti` only from Kubernetes 1.29. The issuer is the cluster's own.
            IssuerKind::Kubernetes => Preset {
                url: None,
                algorithms: &[Algorithm::RS256, Algorithm::ES256],
                max_token_age: Some(HOUR),
                require_jti: false,
            },
            // What SPIRE signs JWT-SVIDs with (key types `ec-p256`, `ec-p384`, `rsa-2048`).
            // JWT-SVIDs are short-lived (SPIRE's default TTL is 5 minutes). No URL: the issuer
            // is the trust domain, and the keys come from its bundle (`policy::issuers::spiffe`).
            IssuerKind::Spiffe => Preset {
                url: None,
                algorithms: &[Algorithm::ES256, Algorithm::ES384, Algorithm::RS256],
                max_token_age: Some(HOUR),
                require_jti: false,
            },
            // This broker (`policy::issuers::ferry`): what it signs with (`credential.algorithm`);
            // its credentials always carry a `jti`, so each is exchanged at most once.
            IssuerKind::Ferry => Preset {
                url: None,
                algorithms: &[Algorithm::ES256, Algorithm::EdDSA],
                max_token_age: None,
                require_jti: true,
            },
        }
    }

    /// What `url` must look like when the kind has no default, for the error message.
    pub fn url_hint(self) -> &'static str {
        match self {
            IssuerKind::Circleci => {
                "the organisation's issuer, `https://oidc.circleci.com/org/ORG_ID`"
            }
            IssuerKind::Kubernetes => {
                "the cluster's service-account issuer (`kubectl get --raw /.well-known/openid-configuration`)"
            }
            _ => "the issuer URL tokens carry in `iss`",
        }
    }
}
